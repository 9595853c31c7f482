/* metrics.c — the last run as Prometheus text exposition format (version
 * 0.0.4), for node_exporter's textfile collector; see metrics.h.
 *
 * Every figure describes one invocation of `bloomsync sync`, so every metric
 * is a gauge: the file is replaced whole after each run, and after a sync
 * that could not start (a usage or configuration error once the file was
 * known: status "config", exit code 2, every count 0). The one value that
 * outlives a run is bloomsync_last_success_timestamp_seconds: a run that did
 * not succeed copies it from the file it replaces, so "no success for two
 * hours" stays visible however many runs fail in between.
 *
 * The file is written to a temporary file in the same directory (named
 * PATH.tmp.XXXXXX, which the collector ignores because it does not end in
 * .prom), fsynced, given mode 0644 and renamed over PATH, so a scrape sees
 * either the old file or the new one, never half of one. */
#include "metrics.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define METRICS_LAST_SUCCESS "bloomsync_last_success_timestamp_seconds"
#define METRICS_LINE_MAX 1024

typedef struct metrics_status_name {
	pipeline_status status;
	const char *name;
} metrics_status_name;

/* The label values of bloomsync_last_run_status, one per pipeline_status. */
static const metrics_status_name metrics_statuses[] = {
    {PIPELINE_SUCCEEDED, "succeeded"}, {PIPELINE_FAILED, "failed"}, {PIPELINE_CANCELLED, "cancelled"},
    {PIPELINE_LOCKED, "locked"},       {PIPELINE_AUTH, "auth"},
};

#define METRICS_STATUS_COUNT (sizeof(metrics_statuses) / sizeof(metrics_statuses[0]))

/* The label value of a sync that could not start (no summary). */
#define METRICS_STATUS_CONFIG "config"

/* The figures of a sync that could not start: all zero. */
static const pipeline_summary metrics_no_run;

typedef struct metrics_outcome {
	const char *name;
	size_t offset; /* of the count in load_counts */
} metrics_outcome;

/* The label values of bloomsync_last_run_rows, and where each count lives. */
static const metrics_outcome metrics_outcomes[] = {
    {"inserted", offsetof(load_counts, inserted)}, {"updated", offsetof(load_counts, updated)},
    {"unchanged", offsetof(load_counts, unchanged)}, {"skipped", offsetof(load_counts, skipped)},
    {"rejected", offsetof(load_counts, rejected)},   {"deleted", offsetof(load_counts, deleted)},
};

#define METRICS_OUTCOME_COUNT (sizeof(metrics_outcomes) / sizeof(metrics_outcomes[0]))

static void metrics_fail(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static void metrics_fail(char *err, size_t errlen, const char *fmt, ...)
{
	if (!err || errlen == 0)
		return;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

/* The uint64_t count at offset in c. */
static uint64_t metrics_count(const load_counts *c, size_t offset)
{
	uint64_t v;
	memcpy(&v, (const char *)c + offset, sizeof(v));
	return v;
}

static void metrics_family(FILE *f, const char *name, const char *help)
{
	fprintf(f, "# HELP %s %s\n# TYPE %s gauge\n", name, help, name);
}

/* Writes a label value quoted, escaping backslash, double quote and newline
 * as the exposition format requires. */
static void metrics_label_value(FILE *f, const char *value)
{
	fputc('"', f);
	for (const char *p = value; *p; p++) {
		if (*p == '\\')
			fputs("\\\\", f);
		else if (*p == '"')
			fputs("\\\"", f);
		else if (*p == '\n')
			fputs("\\n", f);
		else
			fputc(*p, f);
	}
	fputc('"', f);
}

/* s is NULL for a sync that could not start. */
static void metrics_status(FILE *f, const pipeline_summary *s, int exit_code)
{
	metrics_family(f, "bloomsync_last_run_status",
		       "Outcome of the last sync: 1 for the status that applies, 0 for the others.");
	for (size_t i = 0; i < METRICS_STATUS_COUNT; i++) {
		fputs("bloomsync_last_run_status{status=", f);
		metrics_label_value(f, metrics_statuses[i].name);
		fprintf(f, "} %d\n", s && metrics_statuses[i].status == s->status);
	}
	fputs("bloomsync_last_run_status{status=", f);
	metrics_label_value(f, METRICS_STATUS_CONFIG);
	fprintf(f, "} %d\n", !s);
	metrics_family(f, "bloomsync_last_run_success", "1 when the last sync succeeded, else 0.");
	fprintf(f, "bloomsync_last_run_success %d\n", s && s->status == PIPELINE_SUCCEEDED);
	metrics_family(f, "bloomsync_last_run_exit_code",
		       "Exit status of the last sync: 0 succeeded, 1 failed, 2 usage or configuration error, "
		       "3 locked, 4 key rejected, 5 cancelled.");
	fprintf(f, "bloomsync_last_run_exit_code %d\n", exit_code);
}

static void metrics_run(FILE *f, const pipeline_summary *s, time_t started, time_t finished)
{
	double duration = s->seconds > 0 ? s->seconds : difftime(finished, started);
	if (duration < 0)
		duration = 0;
	metrics_family(f, "bloomsync_last_run_id", "Id of the last run in sync_runs (0 when no run was opened).");
	fprintf(f, "bloomsync_last_run_id %" PRId64 "\n", s->run_id);
	metrics_family(f, "bloomsync_last_run_start_timestamp_seconds",
		       "When the last sync started, in seconds since the Unix epoch.");
	fprintf(f, "bloomsync_last_run_start_timestamp_seconds %lld\n", (long long)started);
	metrics_family(f, "bloomsync_last_run_end_timestamp_seconds",
		       "When the last sync ended, in seconds since the Unix epoch.");
	fprintf(f, "bloomsync_last_run_end_timestamp_seconds %lld\n", (long long)finished);
	metrics_family(f, "bloomsync_last_run_duration_seconds", "Wall time of the last sync, in seconds.");
	fprintf(f, "bloomsync_last_run_duration_seconds %.3f\n", duration);
	metrics_family(f, "bloomsync_last_run_resumed", "1 when the last sync continued an interrupted run, else 0.");
	fprintf(f, "bloomsync_last_run_resumed %d\n", s->resumed ? 1 : 0);
}

/* One sample per stream of the count at `offset` in load_counts. */
static void metrics_per_stream(FILE *f, const pipeline_summary *s, const char *name, size_t offset)
{
	for (int i = 0; i < MIRROR_TABLE_COUNT; i++) {
		fprintf(f, "%s{stream=", name);
		metrics_label_value(f, mirror_tables[i]);
		fprintf(f, "} %" PRIu64 "\n", metrics_count(&s->streams[i], offset));
	}
}

static void metrics_streams(FILE *f, const pipeline_summary *s)
{
	metrics_family(f, "bloomsync_last_run_requests",
		       "HTTP requests of the last run per stream, over all its sessions, retries included.");
	metrics_per_stream(f, s, "bloomsync_last_run_requests", offsetof(load_counts, requests));
	metrics_family(f, "bloomsync_last_run_retries",
		       "HTTP requests of the last run per stream that were retries.");
	metrics_per_stream(f, s, "bloomsync_last_run_retries", offsetof(load_counts, retries));
	metrics_family(f, "bloomsync_last_run_rows", "Rows of the last run per stream and outcome.");
	for (int i = 0; i < MIRROR_TABLE_COUNT; i++)
		for (size_t o = 0; o < METRICS_OUTCOME_COUNT; o++) {
			fputs("bloomsync_last_run_rows{stream=", f);
			metrics_label_value(f, mirror_tables[i]);
			fputs(",outcome=", f);
			metrics_label_value(f, metrics_outcomes[o].name);
			fprintf(f, "} %" PRIu64 "\n", metrics_count(&s->streams[i], metrics_outcomes[o].offset));
		}
}

static void metrics_totals(FILE *f, const pipeline_summary *s, int64_t last_success)
{
	uint64_t rejected = 0;
	for (int i = 0; i < MIRROR_TABLE_COUNT; i++)
		rejected += s->streams[i].rejected;
	metrics_family(f, "bloomsync_last_run_rejected_records",
		       "Records of the last run that could not be stored (see the rejected_records table).");
	fprintf(f, "bloomsync_last_run_rejected_records %" PRIu64 "\n", rejected);
	metrics_family(f, "bloomsync_last_run_http_peak_inflight",
		       "Most HTTP requests in flight at once during the last sync.");
	fprintf(f, "bloomsync_last_run_http_peak_inflight %d\n", s->http.peak_inflight);
	metrics_family(f, METRICS_LAST_SUCCESS,
		       "When a sync last succeeded, in seconds since the Unix epoch (0: none recorded).");
	fprintf(f, METRICS_LAST_SUCCESS " %" PRId64 "\n", last_success);
}

/* The value of bloomsync_last_success_timestamp_seconds in the file at path,
 * or 0 when the file is missing, unreadable or holds no valid value. */
static int64_t metrics_previous_success(const char *path)
{
	FILE *f = fopen(path, "r");
	if (!f)
		return 0;
	int64_t found = 0;
	char line[METRICS_LINE_MAX];
	size_t name_len = strlen(METRICS_LAST_SUCCESS);
	while (fgets(line, sizeof(line), f)) {
		if (strncmp(line, METRICS_LAST_SUCCESS, name_len) != 0 || line[name_len] != ' ')
			continue;
		char *end = NULL;
		errno = 0;
		double v = strtod(line + name_len + 1, &end);
		if (errno == 0 && end != line + name_len + 1 && (*end == '\n' || *end == '\0') && isfinite(v) &&
		    v >= 0 && v < 9e15)
			found = (int64_t)v;
	}
	fclose(f);
	return found;
}

/* Makes the rename durable. Failing to is not worth failing the write: the
 * new file is complete either way, and a crash now loses only this update. */
static void metrics_sync_dir(const char *path)
{
	const char *slash = strrchr(path, '/');
	char *dir = slash ? strndup(path, slash == path ? 1 : (size_t)(slash - path)) : strdup(".");
	if (!dir)
		return;
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd >= 0) {
		(void)fsync(fd);
		close(fd);
	}
	free(dir);
}

/* Writes every metric to f and flushes it to disk; 0, or -1 with errno set.
 * s is NULL for a sync that could not start. */
static int metrics_emit(FILE *f, const pipeline_summary *s, int exit_code, time_t started, time_t finished,
			int64_t last_success)
{
	const pipeline_summary *figures = s ? s : &metrics_no_run;
	metrics_status(f, s, exit_code);
	metrics_run(f, figures, started, finished);
	metrics_streams(f, figures);
	metrics_totals(f, figures, last_success);
	if (fflush(f) != 0 || ferror(f))
		return -1;
	return fsync(fileno(f));
}

int metrics_write(const char *path, const pipeline_summary *s, int exit_code, time_t started, time_t finished,
		  char *err, size_t errlen)
{
	int rc = -1;
	char *tmp = NULL;
	FILE *f = NULL;
	int fd = -1;
	int64_t last_success = 0;
	if (!path || !*path) { /* nothing acquired yet: no cleanup to share */
		metrics_fail(err, errlen, "no metrics file given");
		return -1;
	}
	last_success = s && s->status == PIPELINE_SUCCEEDED ? (int64_t)finished : metrics_previous_success(path);
	if (asprintf(&tmp, "%s.tmp.XXXXXX", path) < 0) {
		tmp = NULL;
		metrics_fail(err, errlen, "%s: out of memory", path);
		goto done;
	}
	fd = mkstemp(tmp);
	if (fd < 0) {
		metrics_fail(err, errlen, "cannot create a temporary file next to %s: %s", path, strerror(errno));
		free(tmp);
		tmp = NULL; /* nothing to remove */
		goto done;
	}
	f = fdopen(fd, "w");
	if (!f) {
		metrics_fail(err, errlen, "%s: %s", tmp, strerror(errno));
		close(fd);
		goto done;
	}
	if (fchmod(fd, 0644) != 0 || metrics_emit(f, s, exit_code, started, finished, last_success) != 0) {
		metrics_fail(err, errlen, "cannot write %s: %s", tmp, strerror(errno));
		goto done;
	}
	FILE *written = f;
	f = NULL; /* fclose frees it whatever it returns */
	if (fclose(written) != 0) {
		metrics_fail(err, errlen, "cannot write %s: %s", tmp, strerror(errno));
		goto done;
	}
	if (rename(tmp, path) != 0) {
		metrics_fail(err, errlen, "cannot replace %s: %s", path, strerror(errno));
		goto done;
	}
	free(tmp);
	tmp = NULL; /* renamed: nothing to remove */
	metrics_sync_dir(path);
	rc = 0;
done:
	if (f)
		fclose(f);
	if (tmp) {
		unlink(tmp);
		free(tmp);
	}
	return rc;
}
