/* test_metrics.c — metrics.c through metrics.h: the exact lines written for
 * a known summary, the Prometheus text format of every line (and no gauge
 * named like a counter), the carry-over of the last success across failed
 * runs, the exit status, a sync that could not start (a configuration
 * error: no summary), the atomic replace (no temporary file left, a reader
 * of the old file keeps the old content) and the errors of an unwritable
 * destination.
 *
 * Each test works in a fresh directory under /tmp, removed afterwards. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <fcntl.h>
#include <regex.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "metrics.h"
#include "scratch.h"

#define T_STARTED ((time_t)1700000000)
#define T_FINISHED ((time_t)1700000013)

typedef struct fixture {
	char dir[64];
	char path[128];
} fixture;

static int setup(void **state)
{
	fixture *fx = calloc(1, sizeof(*fx));
	assert_non_null(fx);
	assert_int_equal(scratch_dir_make(fx->dir, sizeof(fx->dir), "test_metrics"), 0);
	snprintf(fx->path, sizeof(fx->path), "%s/bloomsync.prom", fx->dir);
	*state = fx;
	return 0;
}

static int teardown(void **state)
{
	fixture *fx = *state;
	int rc = scratch_dir_remove(fx->dir);
	free(fx);
	return rc == 0 ? 0 : -1;
}

static void fake_summary(pipeline_summary *s, pipeline_status status, int64_t run_id)
{
	memset(s, 0, sizeof(*s));
	s->status = status;
	s->run_id = run_id;
	s->seconds = 12.5;
	s->resumed = true;
	s->http.peak_inflight = 6;
	s->http.requests = 99;
	int users = mirror_table_index("users");
	int todos = mirror_table_index("todos");
	assert_true(users >= 0 && todos >= 0);
	s->streams[users] = (load_counts){.requests = 3, .retries = 1, .inserted = 10, .updated = 2, .unchanged = 5,
					  .skipped = 0, .rejected = 1, .deleted = 4};
	s->streams[todos] = (load_counts){.requests = 40, .retries = 7, .inserted = 300, .updated = 20,
					  .unchanged = 1000, .skipped = 2, .rejected = 3, .deleted = 9};
}

/* The whole file (malloc'd, NUL-terminated). */
static char *slurp(const char *path)
{
	FILE *f = fopen(path, "r");
	assert_non_null(f);
	char *buf = NULL;
	size_t len = 0;
	FILE *mem = open_memstream(&buf, &len);
	assert_non_null(mem);
	char chunk[4096];
	size_t n;
	while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
		fwrite(chunk, 1, n, mem);
	fclose(f);
	fclose(mem);
	return buf;
}

static bool has_line(const char *text, const char *line)
{
	size_t len = strlen(line);
	for (const char *p = text; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL)
		if (strncmp(p, line, len) == 0 && (p[len] == '\n' || p[len] == '\0'))
			return true;
	return false;
}

static void assert_line(const char *text, const char *line)
{
	if (!has_line(text, line))
		fail_msg("missing line '%s' in:\n%s", line, text);
}

/* How many files the directory holds besides . and .. */
static int dir_entries(const char *dir)
{
	DIR *d = opendir(dir);
	assert_non_null(d);
	int n = 0;
	struct dirent *e;
	while ((e = readdir(d)) != NULL)
		n += strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0;
	closedir(d);
	return n;
}

/* The exit status main gives each pipeline_status. */
static int exit_of(const pipeline_summary *s)
{
	if (!s)
		return 2;
	switch (s->status) {
	case PIPELINE_SUCCEEDED: return 0;
	case PIPELINE_LOCKED: return 3;
	case PIPELINE_AUTH: return 4;
	case PIPELINE_CANCELLED: return 5;
	default: return 1;
	}
}

static void write_ok(const char *path, const pipeline_summary *s, time_t started, time_t finished)
{
	char err[256] = "";
	int rc = metrics_write(path, s, exit_of(s), started, finished, err, sizeof(err));
	if (rc != 0)
		fail_msg("metrics_write failed: %s", err);
}

static void test_exact_lines(void **state)
{
	fixture *fx = *state;
	pipeline_summary s;
	fake_summary(&s, PIPELINE_SUCCEEDED, 42);
	write_ok(fx->path, &s, T_STARTED, T_FINISHED);
	char *text = slurp(fx->path);
	static const char *const want[] = {
	    "# HELP bloomsync_last_run_status Outcome of the last sync: 1 for the status that applies, 0 for the others.",
	    "# TYPE bloomsync_last_run_status gauge",
	    "bloomsync_last_run_status{status=\"succeeded\"} 1",
	    "bloomsync_last_run_status{status=\"failed\"} 0",
	    "bloomsync_last_run_status{status=\"cancelled\"} 0",
	    "bloomsync_last_run_status{status=\"locked\"} 0",
	    "bloomsync_last_run_status{status=\"auth\"} 0",
	    "bloomsync_last_run_status{status=\"config\"} 0",
	    "bloomsync_last_run_success 1",
	    "# TYPE bloomsync_last_run_exit_code gauge",
	    "bloomsync_last_run_exit_code 0",
	    "bloomsync_last_run_id 42",
	    "bloomsync_last_run_start_timestamp_seconds 1700000000",
	    "bloomsync_last_run_end_timestamp_seconds 1700000013",
	    "bloomsync_last_run_duration_seconds 12.500",
	    "bloomsync_last_run_resumed 1",
	    "bloomsync_last_run_requests{stream=\"users\"} 3",
	    "bloomsync_last_run_requests{stream=\"todos\"} 40",
	    "bloomsync_last_run_requests{stream=\"scores\"} 0",
	    "bloomsync_last_run_retries{stream=\"users\"} 1",
	    "bloomsync_last_run_retries{stream=\"todos\"} 7",
	    "bloomsync_last_run_rows{stream=\"users\",outcome=\"inserted\"} 10",
	    "bloomsync_last_run_rows{stream=\"users\",outcome=\"updated\"} 2",
	    "bloomsync_last_run_rows{stream=\"users\",outcome=\"unchanged\"} 5",
	    "bloomsync_last_run_rows{stream=\"users\",outcome=\"skipped\"} 0",
	    "bloomsync_last_run_rows{stream=\"users\",outcome=\"rejected\"} 1",
	    "bloomsync_last_run_rows{stream=\"users\",outcome=\"deleted\"} 4",
	    "bloomsync_last_run_rows{stream=\"todos\",outcome=\"unchanged\"} 1000",
	    "bloomsync_last_run_rows{stream=\"todos\",outcome=\"skipped\"} 2",
	    "bloomsync_last_run_rows{stream=\"meeting_attendees\",outcome=\"inserted\"} 0",
	    "# TYPE bloomsync_last_run_rejected_records gauge",
	    "bloomsync_last_run_rejected_records 4",
	    "bloomsync_last_run_http_peak_inflight 6",
	    "# TYPE bloomsync_last_success_timestamp_seconds gauge",
	    "bloomsync_last_success_timestamp_seconds 1700000013",
	};
	for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++)
		assert_line(text, want[i]);
	free(text);
	struct stat st;
	assert_int_equal(stat(fx->path, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0644);
}

/* Every line is a HELP or TYPE comment or a sample in the text exposition
 * format; every sampled metric has its HELP and TYPE before its samples;
 * and there are exactly as many samples as documented. */
static void test_format(void **state)
{
	fixture *fx = *state;
	pipeline_summary s;
	fake_summary(&s, PIPELINE_CANCELLED, 7);
	write_ok(fx->path, &s, T_STARTED, T_FINISHED);
	char *text = slurp(fx->path);
	regex_t sample, comment;
	assert_int_equal(regcomp(&sample,
				 "^([a-zA-Z_:][a-zA-Z0-9_:]*)"
				 "(\\{[a-zA-Z_][a-zA-Z0-9_]*=\"([^\"\\\\]|\\\\[\\\\\"n])*\""
				 "(,[a-zA-Z_][a-zA-Z0-9_]*=\"([^\"\\\\]|\\\\[\\\\\"n])*\")*\\})?"
				 " [-+]?([0-9]+(\\.[0-9]+)?([eE][-+]?[0-9]+)?|NaN|Inf)$",
				 REG_EXTENDED),
			 0);
	assert_int_equal(regcomp(&comment, "^# (HELP [a-zA-Z_:][a-zA-Z0-9_:]* .+|TYPE [a-zA-Z_:][a-zA-Z0-9_:]* gauge)$",
				 REG_EXTENDED),
			 0);
	int samples = 0;
	char typed[128] = "";
	char *save = NULL;
	for (char *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		regmatch_t m[2];
		if (regexec(&comment, line, 0, NULL, 0) == 0) {
			if (strncmp(line, "# TYPE ", 7) == 0)
				snprintf(typed, sizeof(typed), "%.*s", (int)strcspn(line + 7, " "), line + 7);
			continue;
		}
		if (regexec(&sample, line, 2, m, 0) != 0)
			fail_msg("not in the text format: '%s'", line);
		int len = (int)(m[1].rm_eo - m[1].rm_so);
		if ((int)strlen(typed) != len || strncmp(typed, line, (size_t)len) != 0)
			fail_msg("sample before its # TYPE line: '%s'", line);
		/* Prometheus reserves _total for counters; every metric here is a gauge */
		if (len >= 6 && strncmp(line + len - 6, "_total", 6) == 0)
			fail_msg("a gauge named like a counter: '%s'", line);
		samples++;
	}
	/* status 6, success, exit code, id, start, end, duration, resumed; per
	 * stream: requests, retries and 6 row outcomes; rejected, peak, last success */
	assert_int_equal(samples, 6 + 7 + MIRROR_TABLE_COUNT * (2 + 6) + 3);
	regfree(&sample);
	regfree(&comment);
	free(text);
}

static void test_failed_run_carries_last_success(void **state)
{
	fixture *fx = *state;
	pipeline_summary s;
	fake_summary(&s, PIPELINE_SUCCEEDED, 1);
	write_ok(fx->path, &s, 1700000090, 1700000100);

	fake_summary(&s, PIPELINE_FAILED, 2);
	write_ok(fx->path, &s, 1700000800, 1700000900);
	char *text = slurp(fx->path);
	assert_line(text, "bloomsync_last_success_timestamp_seconds 1700000100");
	assert_line(text, "bloomsync_last_run_success 0");
	assert_line(text, "bloomsync_last_run_status{status=\"failed\"} 1");
	assert_line(text, "bloomsync_last_run_status{status=\"succeeded\"} 0");
	assert_line(text, "bloomsync_last_run_end_timestamp_seconds 1700000900");
	assert_line(text, "bloomsync_last_run_exit_code 1");
	free(text);

	/* a second failure in a row (here: the lock was held) still carries it */
	fake_summary(&s, PIPELINE_LOCKED, 0);
	write_ok(fx->path, &s, 1700001000, 1700001000);
	text = slurp(fx->path);
	assert_line(text, "bloomsync_last_success_timestamp_seconds 1700000100");
	assert_line(text, "bloomsync_last_run_status{status=\"locked\"} 1");
	assert_line(text, "bloomsync_last_run_id 0");
	assert_line(text, "bloomsync_last_run_exit_code 3");
	free(text);

	/* the next success moves it */
	fake_summary(&s, PIPELINE_SUCCEEDED, 3);
	write_ok(fx->path, &s, 1700002000, 1700002050);
	text = slurp(fx->path);
	assert_line(text, "bloomsync_last_success_timestamp_seconds 1700002050");
	free(text);
}

static void test_no_success_known(void **state)
{
	fixture *fx = *state;
	pipeline_summary s;
	fake_summary(&s, PIPELINE_AUTH, 0);
	write_ok(fx->path, &s, T_STARTED, T_FINISHED);
	char *text = slurp(fx->path);
	assert_line(text, "bloomsync_last_success_timestamp_seconds 0");
	assert_line(text, "bloomsync_last_run_status{status=\"auth\"} 1");
	assert_line(text, "bloomsync_last_run_exit_code 4");
	free(text);

	/* a previous file with a mangled value gives no carry-over, and is replaced */
	FILE *f = fopen(fx->path, "w");
	assert_non_null(f);
	fputs("bloomsync_last_success_timestamp_seconds 12abc\nbloomsync_last_success_timestamp_secondsX 5\n", f);
	fclose(f);
	write_ok(fx->path, &s, T_STARTED, T_FINISHED);
	text = slurp(fx->path);
	assert_line(text, "bloomsync_last_success_timestamp_seconds 0");
	assert_false(has_line(text, "bloomsync_last_success_timestamp_secondsX 5"));
	free(text);
}

/* A sync that could not start (a usage or configuration error, exit 2, after
 * the metrics file became known) is recorded too: an alert on the last run
 * must not keep reporting the success before it. */
static void test_sync_that_could_not_start(void **state)
{
	fixture *fx = *state;
	pipeline_summary s;
	fake_summary(&s, PIPELINE_SUCCEEDED, 9);
	write_ok(fx->path, &s, 1700000090, 1700000100);

	write_ok(fx->path, NULL, 1700000500, 1700000501);
	char *text = slurp(fx->path);
	assert_line(text, "bloomsync_last_run_status{status=\"config\"} 1");
	assert_line(text, "bloomsync_last_run_status{status=\"succeeded\"} 0");
	assert_line(text, "bloomsync_last_run_status{status=\"failed\"} 0");
	assert_line(text, "bloomsync_last_run_success 0");
	assert_line(text, "bloomsync_last_run_exit_code 2");
	assert_line(text, "bloomsync_last_run_id 0");
	assert_line(text, "bloomsync_last_run_resumed 0");
	assert_line(text, "bloomsync_last_run_start_timestamp_seconds 1700000500");
	assert_line(text, "bloomsync_last_run_end_timestamp_seconds 1700000501");
	assert_line(text, "bloomsync_last_run_duration_seconds 1.000");
	assert_line(text, "bloomsync_last_run_requests{stream=\"users\"} 0");
	assert_line(text, "bloomsync_last_run_rows{stream=\"todos\",outcome=\"inserted\"} 0");
	assert_line(text, "bloomsync_last_run_http_peak_inflight 0");
	/* the success before it is kept */
	assert_line(text, "bloomsync_last_success_timestamp_seconds 1700000100");
	free(text);
}

static void test_duration_from_wall_clock(void **state)
{
	fixture *fx = *state;
	pipeline_summary s;
	fake_summary(&s, PIPELINE_LOCKED, 0);
	s.seconds = 0; /* no run started: the wall clock from started to finished */
	write_ok(fx->path, &s, T_STARTED, T_STARTED + 7);
	char *text = slurp(fx->path);
	assert_line(text, "bloomsync_last_run_duration_seconds 7.000");
	free(text);
}

static void test_atomic_replace(void **state)
{
	fixture *fx = *state;
	pipeline_summary s;
	fake_summary(&s, PIPELINE_SUCCEEDED, 100);
	write_ok(fx->path, &s, T_STARTED, T_FINISHED);
	int old_fd = open(fx->path, O_RDONLY);
	assert_true(old_fd >= 0);

	fake_summary(&s, PIPELINE_SUCCEEDED, 101);
	write_ok(fx->path, &s, T_STARTED, T_FINISHED);
	assert_int_equal(dir_entries(fx->dir), 1); /* no temporary file left behind */

	/* the old file was replaced, not rewritten in place: its reader still sees it whole */
	char old[16384];
	ssize_t n = pread(old_fd, old, sizeof(old) - 1, 0);
	close(old_fd);
	assert_true(n > 0);
	old[n] = '\0';
	assert_true(has_line(old, "bloomsync_last_run_id 100"));
	char *text = slurp(fx->path);
	assert_line(text, "bloomsync_last_run_id 101");
	free(text);
}

static void test_unwritable_destination(void **state)
{
	fixture *fx = *state;
	pipeline_summary s;
	fake_summary(&s, PIPELINE_SUCCEEDED, 5);
	char path[256];
	char err[256] = "";

	/* a directory that does not exist */
	snprintf(path, sizeof(path), "%s/missing/bloomsync.prom", fx->dir);
	assert_int_equal(metrics_write(path, &s, 0, T_STARTED, T_FINISHED, err, sizeof(err)), -1);
	assert_non_null(strstr(err, path));
	assert_non_null(strstr(err, "No such file or directory"));

	/* a "directory" that is a regular file */
	snprintf(path, sizeof(path), "%s/plain", fx->dir);
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	fclose(f);
	snprintf(path, sizeof(path), "%s/plain/bloomsync.prom", fx->dir);
	err[0] = '\0';
	assert_int_equal(metrics_write(path, &s, 0, T_STARTED, T_FINISHED, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "cannot create a temporary file next to"));
	assert_int_equal(dir_entries(fx->dir), 1);

	/* a read-only directory (root writes anyway, so only as another user) */
	if (geteuid() != 0) {
		char ro[128];
		snprintf(ro, sizeof(ro), "%s/ro", fx->dir);
		assert_int_equal(mkdir(ro, 0555), 0);
		snprintf(path, sizeof(path), "%s/bloomsync.prom", ro);
		err[0] = '\0';
		assert_int_equal(metrics_write(path, &s, 0, T_STARTED, T_FINISHED, err, sizeof(err)), -1);
		assert_non_null(strstr(err, "Permission denied"));
		assert_int_equal(dir_entries(ro), 0);
	}
}

static void test_bad_arguments(void **state)
{
	fixture *fx = *state;
	pipeline_summary s;
	fake_summary(&s, PIPELINE_SUCCEEDED, 5);
	char err[256] = "";
	assert_int_equal(metrics_write(NULL, &s, 0, T_STARTED, T_FINISHED, err, sizeof(err)), -1);
	assert_true(err[0] != '\0');
	err[0] = '\0';
	assert_int_equal(metrics_write("", &s, 0, T_STARTED, T_FINISHED, NULL, 0), -1);
	assert_int_equal(dir_entries(fx->dir), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_exact_lines, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_format, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_failed_run_carries_last_success, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_no_success_known, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_sync_that_could_not_start, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_duration_from_wall_clock, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_atomic_replace, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_unwritable_destination, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_bad_arguments, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
