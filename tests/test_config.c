/* test_config.c — config.c through config.h: defaults, a full file, every
 * kind of error with its exact "FILE:LINE: " prefix, the API key sources
 * (api.key, api.key_file, BG_API_KEY), the secret files read only by
 * cfg_read_secrets, and the permission warning.
 *
 * Each test writes its config files into a fresh temporary directory. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config.h"
#include "log.h"
#include "scratch.h"

typedef struct fixture {
	char dir[64];
	char path[128]; /* dir/bloomsync.conf */
} fixture;

static void write_file(const char *path, const char *text, mode_t mode)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, mode);
	assert_true(fd >= 0);
	size_t len = strlen(text);
	assert_int_equal(write(fd, text, len), (ssize_t)len);
	assert_int_equal(fchmod(fd, mode), 0);
	close(fd);
}

static void write_conf(fixture *fx, const char *text)
{
	write_file(fx->path, text, 0600);
}

static int setup(void **state)
{
	fixture *fx = calloc(1, sizeof *fx);
	if (!fx)
		return -1;
	if (scratch_dir_make(fx->dir, sizeof fx->dir, "test_config") != 0)
		return -1;
	snprintf(fx->path, sizeof fx->path, "%s/bloomsync.conf", fx->dir);
	unsetenv("BG_API_KEY");
	unsetenv("BG_USERNAME");
	unsetenv("BG_PASSWORD");
	log_init(LOG_INFO, LOG_FORMAT_TEXT);
	*state = fx;
	return 0;
}

static int teardown(void **state)
{
	fixture *fx = *state;
	int rc = scratch_dir_remove(fx->dir);
	free(fx);
	unsetenv("BG_API_KEY");
	unsetenv("BG_USERNAME");
	unsetenv("BG_PASSWORD");
	log_shutdown();
	return rc == 0 ? 0 : -1;
}

/* Runs fn with stderr redirected to a temporary file; returns what was
 * written (malloc'd). */
static char *capture_stderr(void (*fn)(void *), void *arg)
{
	char tmpl[] = "/tmp/test_config_err.XXXXXX";
	int fd = mkstemp(tmpl);
	assert_true(fd >= 0);
	unlink(tmpl);
	int saved = dup(STDERR_FILENO);
	assert_true(saved >= 0);
	assert_true(dup2(fd, STDERR_FILENO) >= 0);
	fn(arg);
	assert_true(dup2(saved, STDERR_FILENO) >= 0);
	close(saved);
	char *out = scratch_read_fd(fd);
	close(fd);
	return out;
}

/* Loads fx->path expecting failure; checks the message is exactly
 * "<path>:<expected>" (expected carries the line and what is wrong). */
static void expect_error(fixture *fx, const char *text, const char *expected)
{
	cfg c;
	cfg_error err;
	char want[600];
	write_conf(fx, text);
	assert_int_equal(cfg_load(fx->path, &c, &err), -1);
	snprintf(want, sizeof want, "%s:%s", fx->path, expected);
	assert_string_equal(err.msg, want);
	/* On error *out is left freed. */
	assert_null(c.base_url);
	assert_null(c.key);
	assert_null(c.path);
	cfg_free(&c);
}

/* Loads fx->path, which must succeed (a secret file is not read yet), then
 * expects cfg_read_secrets to fail with exactly "<path>:<expected>". */
static void expect_secret_error(fixture *fx, const char *text, const char *expected)
{
	cfg c;
	cfg_error err;
	char want[600];
	write_conf(fx, text);
	assert_int_equal(cfg_load(fx->path, &c, &err), 0);
	assert_int_equal(cfg_read_secrets(&c, &err), -1);
	snprintf(want, sizeof want, "%s:%s", fx->path, expected);
	assert_string_equal(err.msg, want);
	assert_null(c.key);
	cfg_free(&c);
}

static void test_defaults_for_empty_file(void **state)
{
	fixture *fx = *state;
	cfg c;
	cfg_error err;
	write_conf(fx, "");
	assert_int_equal(cfg_load(fx->path, &c, &err), 0);
	assert_string_equal(c.base_url, "https://app.bloomgrowth.com/api/v1");
	assert_null(c.key);
	assert_null(c.key_source);
	assert_int_equal(c.concurrency, 8);
	assert_true(c.rate_limit == 10.0);
	assert_int_equal(c.timeout_ms, 30000);
	assert_int_equal(c.max_retries, 6);
	assert_string_equal(c.conninfo, "dbname=bloom");
	assert_string_equal(c.schema, "bloom");
	assert_int_equal(c.batch_size, 500);
	assert_int_equal(c.log_level, LOG_INFO);
	assert_int_equal(c.log_format, LOG_FORMAT_TEXT);
	assert_null(c.metrics_file);
	assert_string_equal(c.path, fx->path);
	cfg_free(&c);
}

static void test_cfg_defaults_matches_empty_file(void **state)
{
	(void)state;
	cfg c;
	cfg_defaults(&c);
	assert_string_equal(c.base_url, "https://app.bloomgrowth.com/api/v1");
	assert_string_equal(c.schema, "bloom");
	assert_int_equal(c.concurrency, 8);
	assert_null(c.path);
	cfg_free(&c);
}

static void test_full_valid_file(void **state)
{
	fixture *fx = *state;
	cfg c;
	cfg_error err;
	write_conf(fx,
		   "# every setting\n"
		   "api = {\n"
		   "  base_url    = \"http://127.0.0.1:8080/api/v1//\";\n"
		   "  key         = \"k-12345-secret\";\n"
		   "  concurrency = 16;\n"
		   "  rate_limit  = 25;\n"
		   "  timeout_ms  = 5000;\n"
		   "  max_retries = 0;\n"
		   "};\n"
		   "postgres = {\n"
		   "  conninfo   = \"host=/tmp port=5544 dbname=mirror\";\n"
		   "  schema     = \"bg_mirror\";\n"
		   "  batch_size = 100000;\n"
		   "};\n"
		   "log = { level = \"debug\"; format = \"json\"; };\n"
		   "metrics_file = \"/var/lib/node_exporter/textfile/bloomsync.prom\";\n");
	assert_int_equal(cfg_load(fx->path, &c, &err), 0);
	assert_string_equal(c.base_url, "http://127.0.0.1:8080/api/v1");
	assert_string_equal(c.key, "k-12345-secret");
	assert_string_equal(c.key_source, "api.key");
	assert_int_equal(c.concurrency, 16);
	assert_true(c.rate_limit == 25.0);
	assert_int_equal(c.timeout_ms, 5000);
	assert_int_equal(c.max_retries, 0);
	assert_string_equal(c.conninfo, "host=/tmp port=5544 dbname=mirror");
	assert_string_equal(c.schema, "bg_mirror");
	assert_int_equal(c.batch_size, 100000);
	assert_int_equal(c.log_level, LOG_DEBUG);
	assert_int_equal(c.log_format, LOG_FORMAT_JSON);
	assert_string_equal(c.metrics_file, "/var/lib/node_exporter/textfile/bloomsync.prom");
	cfg_free(&c);
}

static void test_float_rate_limit_and_zero(void **state)
{
	fixture *fx = *state;
	cfg c;
	cfg_error err;
	write_conf(fx, "api = { rate_limit = 2.5; };\n");
	assert_int_equal(cfg_load(fx->path, &c, &err), 0);
	assert_true(c.rate_limit == 2.5);
	cfg_free(&c);
	write_conf(fx, "api = { rate_limit = 0; };\n");
	assert_int_equal(cfg_load(fx->path, &c, &err), 0);
	assert_true(c.rate_limit == 0.0);
	cfg_free(&c);
}

/* A rate so small its wait would pass any timer is refused (it once had
 * a sync spin at full CPU for ever). */
static void test_tiny_rate_limit_is_refused(void **state)
{
	fixture *fx = *state;
	expect_error(fx, "api = { rate_limit = 1e-17; };\n",
		     "1: api.rate_limit: must be 0 (no limit) or at least 0.001 (got 1e-17)");
	cfg c;
	cfg_error err;
	write_conf(fx, "api = { rate_limit = 0.001; };\n");
	assert_int_equal(cfg_load(fx->path, &c, &err), 0);
	cfg_free(&c);
}

/* A key file that is a FIFO no one writes to reads as empty, at once,
 * rather than holding the sync for ever; one with a byte-order mark gives
 * the key after it; a key that is not ASCII is refused where it is set. */
static void test_key_file_fifo_bom_and_ascii(void **state)
{
	fixture *fx = *state;
	cfg c;
	cfg_error err;
	char key_path[200], text[300];
	snprintf(key_path, sizeof key_path, "%s/fifo.key", fx->dir);
	assert_int_equal(mkfifo(key_path, 0600), 0);
	snprintf(text, sizeof text, "api = { key_file = \"%s\"; };\n", key_path);
	char want[400];
	snprintf(want, sizeof want, "1: api.key_file: the key in %s must not be empty", key_path);
	expect_secret_error(fx, text, want);
	unlink(key_path);

	snprintf(key_path, sizeof key_path, "%s/bom.key", fx->dir);
	write_file(key_path, "\xef\xbb\xbfGOODKEY123\r\n", 0600);
	snprintf(text, sizeof text, "api = { key_file = \"%s\"; };\n", key_path);
	write_conf(fx, text);
	assert_int_equal(cfg_load(fx->path, &c, &err), 0);
	assert_int_equal(cfg_read_secrets(&c, &err), 0);
	assert_string_equal(c.key, "GOODKEY123");
	cfg_free(&c);

	expect_error(fx, "api = { key = \"K\xc3\xa9Y\"; };\n",
		     "1: api.key: must hold ASCII characters only (is it the right file or text?)");
}

static void test_missing_file(void **state)
{
	fixture *fx = *state;
	cfg c;
	cfg_error err;
	char want[300];
	assert_int_equal(cfg_load(fx->path, &c, &err), -1);
	snprintf(want, sizeof want, "%s: cannot read: No such file or directory", fx->path);
	assert_string_equal(err.msg, want);
	assert_null(c.base_url);
	cfg_free(&c);
}

static void test_directory_is_not_a_file(void **state)
{
	fixture *fx = *state;
	cfg c;
	cfg_error err;
	char want[300];
	assert_int_equal(cfg_load(fx->dir, &c, &err), -1);
	snprintf(want, sizeof want, "%s: cannot read: Is a directory", fx->dir);
	assert_string_equal(err.msg, want);
}

static void test_syntax_error(void **state)
{
	expect_error(*state, "api = {\n  concurrency = 8;\n  timeout_ms = 100;\n  max_retries = = 1;\n};\n",
		     "4: syntax error");
}

/* A UTF-8 byte order mark (as editors on Windows write) is skipped, and
 * line numbers stay right. */
#define BOM "\xEF\xBB\xBF"

static void test_utf8_bom_is_skipped(void **state)
{
	fixture *fx = *state;
	cfg c;
	cfg_error err;
	write_conf(fx, BOM "# written on Windows\napi = {\n  concurrency = 5;\n};\n");
	if (cfg_load(fx->path, &c, &err) != 0)
		fail_msg("%s", err.msg);
	assert_int_equal(c.concurrency, 5);
	cfg_free(&c);
	expect_error(fx, BOM "api = {\n  concurrency = 5;\n  timeout_ms = 1;\n};\n",
		     "3: api.timeout_ms: must be between 100 and 600000 (got 1)");
	expect_error(fx, BOM "\napi = {\n  concurrency = 4294967297;\n};\n",
		     "3: api.concurrency: must be between 1 and 1024 (got a number too large)");
	/* Only at the start: anywhere else it is not libconfig syntax. */
	expect_error(fx, "api = {\n" BOM "  concurrency = 5;\n};\n", "2: syntax error");
}

/* @include would read a file none of the checks here see (file names and
 * lines of messages, the 32-bit check, who may read a secret): refused,
 * even when the file it names exists. */
static void test_include_is_refused(void **state)
{
	fixture *fx = *state;
	char inc[200];
	snprintf(inc, sizeof inc, "%s/more.conf", fx->dir);
	write_file(inc, "metrics_file = \"/tmp/m.prom\";\n", 0644);
	expect_error(fx, "api = {\n  concurrency = 2;\n};\n@include \"more.conf\"\n",
		     "4: @include is not supported; put the settings in this file, and a secret in api.key_file "
		     "or api.password_file");
	expect_error(fx, "# x\n  @include \"/nonexistent/more.conf\"\n",
		     "2: @include is not supported; put the settings in this file, and a secret in api.key_file "
		     "or api.password_file");
	/* In a comment or a string it is text. */
	cfg c;
	cfg_error err;
	write_conf(fx, "# @include \"more.conf\"\n/* @include \"more.conf\" */\nmetrics_file = \"/x/@include\";\n");
	if (cfg_load(fx->path, &c, &err) != 0)
		fail_msg("%s", err.msg);
	assert_string_equal(c.metrics_file, "/x/@include");
	cfg_free(&c);
}

static void test_unknown_setting(void **state)
{
	expect_error(*state, "# typo\napi = {\n  concurreny = 8;\n};\n",
		     "3: unknown setting 'api.concurreny'");
}

static void test_streams(void **state)
{
	fixture *fx = *state;
	cfg c;
	cfg_error err;

	cfg_defaults(&c);
	assert_int_equal(c.streams, CFG_STREAMS_ALL);
	cfg_free(&c);
	write_conf(fx, "sync = {\n  streams = [\"todos\", \"goals\"];\n};\n");
	assert_int_equal(cfg_load(fx->path, &c, &err), 0);
	/* users and meetings are always on */
	assert_int_equal(c.streams, CFG_STREAM_USERS | CFG_STREAM_MEETINGS | CFG_STREAM_TODOS | CFG_STREAM_GOALS);
	cfg_free(&c);
	write_conf(fx, "sync = { streams = ( \"issues\", \"headlines\", \"scorecard\", \"users\", \"meetings\" ); };\n");
	assert_int_equal(cfg_load(fx->path, &c, &err), 0);
	assert_int_equal(c.streams, CFG_STREAMS_ALL & ~(unsigned)(CFG_STREAM_TODOS | CFG_STREAM_GOALS));
	cfg_free(&c);
	write_conf(fx, "sync = { streams = []; };\n");
	assert_int_equal(cfg_load(fx->path, &c, &err), 0);
	assert_int_equal(c.streams, CFG_STREAMS_ALWAYS);
	cfg_free(&c);
	assert_int_equal(cfg_stream_parse("scorecard"), CFG_STREAM_SCORECARD);
	assert_int_equal(cfg_stream_parse("Goals"), 0);
	assert_int_equal(cfg_stream_parse(""), 0);
}

static void test_streams_errors(void **state)
{
	expect_error(*state, "api = { };\nsync = {\n  streams = [\"users\", \"rocks\"];\n};\n",
		     "3: sync.streams: unknown stream \"rocks\" (known: users, meetings, todos, scorecard, goals, "
		     "issues, headlines)");
	expect_error(*state, "sync = {\n  streams = \"todos\";\n};\n",
		     "2: sync.streams: expected a list of strings, got a string");
	expect_error(*state, "sync = {\n  streams = [1, 2];\n};\n",
		     "2: sync.streams: expected a list of strings, got an integer in it");
	expect_error(*state, "sync = {\n  stream = [\"todos\"];\n};\n", "2: unknown setting 'sync.stream'");
}

static void test_unknown_top_level_setting(void **state)
{
	expect_error(*state, "metrics_file = \"/x\";\nverbose = true;\n",
		     "2: unknown setting 'verbose'");
}

static void test_unknown_group(void **state)
{
	expect_error(*state, "api = { };\nmysql = {\n  host = \"x\";\n};\n",
		     "2: unknown group 'mysql'");
}

static void test_out_of_range(void **state)
{
	fixture *fx = *state;
	expect_error(fx,
		     "api = {\n\n\n\n\n\n  concurrency = 0;\n};\n",
		     "7: api.concurrency: must be between 1 and 1024 (got 0)");
	expect_error(fx, "api = { timeout_ms = 99; };\n",
		     "1: api.timeout_ms: must be between 100 and 600000 (got 99)");
	expect_error(fx, "api = {\n max_retries = 101;\n};\n",
		     "2: api.max_retries: must be between 0 and 100 (got 101)");
	expect_error(fx, "postgres = {\n batch_size = -1;\n};\n",
		     "2: postgres.batch_size: must be between 1 and 100000 (got -1)");
	expect_error(fx, "api = {\n rate_limit = -0.5;\n};\n",
		     "2: api.rate_limit: must be between 0 and 100000 (got -0.5)");
}

static void test_integer_too_large_is_not_wrapped(void **state)
{
	/* 4294967304 = 2^32 + 8: a silent 32-bit wrap would give 8. */
	expect_error(*state, "api = {\n concurrency = 4294967304;\n};\n",
		     "2: api.concurrency: must be between 1 and 1024 (got a number too large)");
}

/* Comments and line breaks between the name and the value hide nothing:
 * 4294967297 = 2^32 + 1 and 4294997296 = 2^32 + 30000 would wrap to values
 * in range and load silently. */
static void test_integer_too_large_behind_comments(void **state)
{
	fixture *fx = *state;
	expect_error(fx, "api = {\n concurrency = /* x */ 4294967297;\n};\n",
		     "2: api.concurrency: must be between 1 and 1024 (got a number too large)");
	expect_error(fx, "api = {\n concurrency = # c\n 4294967297;\n};\n",
		     "2: api.concurrency: must be between 1 and 1024 (got a number too large)");
	expect_error(fx, "api = {\n concurrency // c\n =\n\n 4294967297;\n};\n",
		     "2: api.concurrency: must be between 1 and 1024 (got a number too large)");
	expect_error(fx, "api : {\n timeout_ms : /* a\n b */ 4294997296\n}\n",
		     "2: api.timeout_ms: must be between 100 and 600000 (got a number too large)");
}

/* The name inside a comment or a string is not the setting. */
static void test_integer_check_skips_comments_and_strings(void **state)
{
	fixture *fx = *state;
	cfg c;
	cfg_error err;
	write_conf(fx, "api = { /* concurrency = 99999999999; */ concurrency = 4;\n"
		       " base_url = \"http://h/timeout_ms=99999999999\"; timeout_ms = 700; };\n");
	if (cfg_load(fx->path, &c, &err) != 0)
		fail_msg("%s", err.msg);
	assert_int_equal(c.concurrency, 4);
	assert_int_equal(c.timeout_ms, 700);
	cfg_free(&c);
	expect_error(fx, "api = { base_url = \"http://h/concurrency=4\"; concurrency = 4294967297; };\n",
		     "1: api.concurrency: must be between 1 and 1024 (got a number too large)");
}

static void test_wrong_types(void **state)
{
	fixture *fx = *state;
	expect_error(fx, "api = {\n\n\n\n\n rate_limit = \"10\";\n};\n",
		     "6: api.rate_limit: expected a number, got a string");
	expect_error(fx, "api = {\n concurrency = 8.5;\n};\n",
		     "2: api.concurrency: expected an integer, got a number");
	expect_error(fx, "api = {\n base_url = 42;\n};\n",
		     "2: api.base_url: expected a string, got an integer");
	expect_error(fx, "log = {\n level = true;\n};\n",
		     "2: log.level: expected a string, got a boolean");
	expect_error(fx, "postgres = {\n schema = [\"a\"];\n};\n",
		     "2: postgres.schema: expected a string, got an array");
}

static void test_group_where_scalar_belongs(void **state)
{
	expect_error(*state, "api = {\n concurrency = { n = 8; };\n};\n",
		     "2: api.concurrency: expected an integer, got a group");
}

static void test_scalar_where_group_belongs(void **state)
{
	fixture *fx = *state;
	expect_error(fx, "\napi = \"https://example.com\";\n", "2: api: expected a group, got a string");
	expect_error(fx, "log = (\"info\");\n", "1: log: expected a group, got a list");
}

/* The message names the setting given twice and where it was given first. */
static void test_duplicate_setting(void **state)
{
	fixture *fx = *state;
	expect_error(fx, "api = {\n  concurrency = 8;\n  concurrency = 9;\n};\n",
		     "3: api.concurrency: duplicate setting (first set on line 2)");
	expect_error(fx, "log = { level = \"info\"; };\nlog = { format = \"json\"; };\n",
		     "2: log: duplicate setting (first set on line 1)");
	/* Same name in other groups, or in a comment or a string, is no duplicate. */
	expect_error(fx,
		     "api = { key_file = \"f\"; };\npostgres = { schema = \"s\"; };\n"
		     "# schema = \"x\";\nlog = { level = \"schema = 1\"; };\n"
		     "postgres = { schema = \"t\"; };\n",
		     "5: postgres: duplicate setting (first set on line 2)");
	expect_error(fx, "api = {\n  timeout_ms = 100;\n  concurrency = 8; timeout_ms = 200;\n};\n",
		     "3: api.timeout_ms: duplicate setting (first set on line 2)");
	expect_error(fx, "api = {\n  concurrency = 1; key = \"k1234567\";\n  max_retries = 2; /* */ key\n = \"k2\";\n};\n",
		     "3: api.key: duplicate setting (first set on line 2)");
	/* Two groups of a list are two groups. */
	expect_error(fx, "sync = { streams = (\n { x = 1; },\n { x = 2;\n x = 3; }\n);\n};\n",
		     "4: sync.streams.x: duplicate setting (first set on line 3)");
}

static void test_bad_values(void **state)
{
	fixture *fx = *state;
	expect_error(fx, "api = {\n base_url = \"ftp://example.com\";\n};\n",
		     "2: api.base_url: must be an http:// or https:// URL (got \"ftp://example.com\")");
	expect_error(fx, "api = {\n base_url = \"https:///\";\n};\n",
		     "2: api.base_url: must be an http:// or https:// URL (got \"https:///\")");
	expect_error(fx, "postgres = {\n schema = \"Bloom\";\n};\n",
		     "2: postgres.schema: must be a plain identifier: a-z, 0-9 and _, not starting "
		     "with a digit, at most 63 bytes (got \"Bloom\")");
	expect_error(fx, "postgres = {\n schema = \"9x\";\n};\n",
		     "2: postgres.schema: must be a plain identifier: a-z, 0-9 and _, not starting "
		     "with a digit, at most 63 bytes (got \"9x\")");
	expect_error(fx, "postgres = {\n schema = \"pg_mirror\";\n};\n",
		     "2: postgres.schema: names starting with pg_ are reserved by PostgreSQL "
		     "(got \"pg_mirror\")");
	expect_error(fx, "log = {\n level = \"verbose\";\n};\n",
		     "2: log.level: must be one of error | warn | info | debug (got \"verbose\")");
	expect_error(fx, "log = {\n format = \"xml\";\n};\n",
		     "2: log.format: must be one of text | json (got \"xml\")");
	expect_error(fx, "metrics_file = \"\";\n",
		     "1: metrics_file: must not be empty (leave the setting out instead)");
	expect_error(fx, "api = {\n key = \"\";\n};\n", "2: api.key: must not be empty");
}

static void test_schema_length_limit(void **state)
{
	fixture *fx = *state;
	char text[200];
	char name[70];
	cfg c;
	cfg_error err;
	memset(name, 'a', 63);
	name[63] = '\0';
	snprintf(text, sizeof text, "postgres = { schema = \"%s\"; };\n", name);
	write_conf(fx, text);
	assert_int_equal(cfg_load(fx->path, &c, &err), 0);
	assert_int_equal(strlen(c.schema), 63);
	cfg_free(&c);
	name[63] = 'a';
	name[64] = '\0';
	snprintf(text, sizeof text, "postgres = { schema = \"%s\"; };\n", name);
	write_conf(fx, text);
	assert_int_equal(cfg_load(fx->path, &c, &err), -1);
	assert_non_null(strstr(err.msg, ":1: postgres.schema: must be a plain identifier"));
}

static void test_key_file(void **state)
{
	fixture *fx = *state;
	cfg c;
	cfg_error err;
	char key_path[200], text[300];
	/* Relative to the config file's directory, trimmed of whitespace. */
	snprintf(key_path, sizeof key_path, "%s/api.key", fx->dir);
	write_file(key_path, "  file-key-0123456789\n\n", 0600);
	write_conf(fx, "api = {\n key_file = \"api.key\";\n};\n");
	assert_int_equal(cfg_load(fx->path, &c, &err), 0);
	/* Read by cfg_read_secrets only, which says where the key is meanwhile. */
	assert_null(c.key);
	assert_string_equal(c.key_source, "api.key_file");
	assert_string_equal(c.key_file, key_path);
	assert_int_equal(cfg_read_secrets(&c, &err), 0);
	assert_string_equal(c.key, "file-key-0123456789");
	assert_string_equal(c.key_source, "api.key_file");
	assert_int_equal(cfg_read_secrets(&c, &err), 0); /* again: nothing to do */
	assert_string_equal(c.key, "file-key-0123456789");
	cfg_free(&c);
	/* Absolute path. */
	snprintf(text, sizeof text, "api = { key_file = \"%s\"; };\n", key_path);
	write_conf(fx, text);
	assert_int_equal(cfg_load(fx->path, &c, &err), 0);
	assert_int_equal(cfg_read_secrets(&c, &err), 0);
	assert_string_equal(c.key, "file-key-0123456789");
	cfg_free(&c);
}

/* token_cache and metrics_file, like key_file, are taken from the config
 * file's directory when relative, not from the working directory (which
 * is $HOME or / under cron). */
static void test_relative_paths_are_from_the_config_directory(void **state)
{
	fixture *fx = *state;
	cfg c;
	cfg_error err;
	char want_cache[200], want_metrics[200];
	write_conf(fx, "api = { token_cache = \"state/token\"; };\nmetrics_file = \"bloomsync.prom\";\n");
	assert_int_equal(cfg_load(fx->path, &c, &err), 0);
	snprintf(want_cache, sizeof want_cache, "%s/state/token", fx->dir);
	snprintf(want_metrics, sizeof want_metrics, "%s/bloomsync.prom", fx->dir);
	assert_string_equal(c.token_cache, want_cache);
	assert_string_equal(c.metrics_file, want_metrics);
	cfg_free(&c);
	/* Absolute paths stay as they are. */
	write_conf(fx, "api = { token_cache = \"/var/tmp/token\"; };\nmetrics_file = \"/var/tmp/b.prom\";\n");
	assert_int_equal(cfg_load(fx->path, &c, &err), 0);
	assert_string_equal(c.token_cache, "/var/tmp/token");
	assert_string_equal(c.metrics_file, "/var/tmp/b.prom");
	cfg_free(&c);
}

/* A key file that does not exist (a systemd credential, outside the
 * service) does not stop cfg_load: migrate and status need no key. The
 * command that needs it gets the error from cfg_read_secrets. */
static void test_key_file_unreadable(void **state)
{
	fixture *fx = *state;
	cfg c;
	cfg_error err;
	char want[400];
	write_conf(fx, "api = {\n concurrency = 4;\n key_file = \"/nonexistent/bloom.key\";\n};\n");
	assert_int_equal(cfg_load(fx->path, &c, &err), 0);
	assert_null(c.key);
	assert_string_equal(c.key_source, "api.key_file");
	assert_int_equal(cfg_read_secrets(&c, &err), -1);
	snprintf(want, sizeof want,
		 "%s:3: api.key_file: cannot read /nonexistent/bloom.key: No such file or directory",
		 fx->path);
	assert_string_equal(err.msg, want);
	assert_null(c.key);
	cfg_free(&c);
}

static void test_key_file_with_two_words(void **state)
{
	fixture *fx = *state;
	char key_path[200];
	snprintf(key_path, sizeof key_path, "%s/api.key", fx->dir);
	write_file(key_path, "first-key\nsecond-key\n", 0600);
	char want[300];
	snprintf(want, sizeof want,
		 "2: api.key_file: the key in %s must not contain spaces or control characters",
		 key_path);
	expect_secret_error(fx, "api = {\n key_file = \"api.key\";\n};\n", want);
}

static void test_key_and_key_file_conflict(void **state)
{
	expect_error(*state, "api = {\n key = \"abcdefgh\";\n key_file = \"/etc/bloom.key\";\n};\n",
		     "3: api.key and api.key_file are both set; keep one of them");
}

static void test_env_key_wins(void **state)
{
	fixture *fx = *state;
	cfg c;
	cfg_error err;
	setenv("BG_API_KEY", "env-key-abcdef", 1);
	write_conf(fx, "api = { key = \"file-key-123456\"; };\n");
	assert_int_equal(cfg_load(fx->path, &c, &err), 0);
	assert_string_equal(c.key, "env-key-abcdef");
	assert_string_equal(c.key_source, "environment BG_API_KEY");
	cfg_free(&c);
	/* Wins over an (unreadable) key_file too: the file is not needed. */
	write_conf(fx, "api = { key_file = \"/nonexistent/bloom.key\"; };\n");
	assert_int_equal(cfg_load(fx->path, &c, &err), 0);
	assert_string_equal(c.key, "env-key-abcdef");
	assert_int_equal(cfg_read_secrets(&c, &err), 0);
	assert_string_equal(c.key, "env-key-abcdef");
	assert_string_equal(c.key_source, "environment BG_API_KEY");
	cfg_free(&c);
	/* An empty variable is ignored. */
	setenv("BG_API_KEY", "", 1);
	write_conf(fx, "api = { key = \"file-key-123456\"; };\n");
	assert_int_equal(cfg_load(fx->path, &c, &err), 0);
	assert_string_equal(c.key, "file-key-123456");
	assert_string_equal(c.key_source, "api.key");
	cfg_free(&c);
	/* And with no key in the file at all. */
	setenv("BG_API_KEY", "env-key-abcdef", 1);
	write_conf(fx, "");
	assert_int_equal(cfg_load(fx->path, &c, &err), 0);
	assert_string_equal(c.key, "env-key-abcdef");
	cfg_free(&c);
}

static void test_env_key_with_newline_rejected(void **state)
{
	fixture *fx = *state;
	cfg c;
	cfg_error err;
	setenv("BG_API_KEY", "abc\r\nX-Injected: 1", 1);
	write_conf(fx, "");
	assert_int_equal(cfg_load(fx->path, &c, &err), -1);
	assert_string_equal(err.msg,
			    "BG_API_KEY (environment): must not contain spaces or control characters");
	assert_null(strstr(err.msg, "Injected"));
}

static void test_key_is_registered_as_secret(void **state)
{
	fixture *fx = *state;
	cfg c;
	cfg_error err;
	char out[200];
	write_conf(fx, "api = { key = \"sekrit-key-42\"; };\n");
	assert_int_equal(cfg_load(fx->path, &c, &err), 0);
	log_redact("GET /users?key=sekrit-key-42 failed", out, sizeof out);
	assert_string_equal(out, "GET /users?key=[redacted] failed");
	cfg_free(&c);
}

/* A conninfo libpq cannot parse is refused with file, line and setting,
 * and none of it (the password least of all) is echoed. */
static void test_bad_conninfo_is_refused_unechoed(void **state)
{
	fixture *fx = *state;
	static const char *const bad[] = {
		"postgresql://bob:p%zzword@127.0.0.1/db", /* bad percent-encoding */
		"postgresql://bob:p%zzword@[::1/db",       /* unterminated IPv6 host */
		"host=h password=p%zzword p%zzword",       /* a word without = */
		"host=h nosuchoption=p%zzword",
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		char text[200];
		snprintf(text, sizeof text, "api = { key = \"abcd1234\"; };\npostgres = {\n conninfo = \"%s\"; };\n",
			 bad[i]);
		expect_error(fx, text,
			     "3: postgres.conninfo: not a libpq connection string or URI (key=value pairs, or "
			     "postgresql://...); the value is not shown, it may hold a password");
	}
}

/* The password of a conninfo, as key=value or inside a URI, is redacted
 * from every log line and message. */
static void test_conninfo_password_is_registered_as_secret(void **state)
{
	fixture *fx = *state;
	cfg c;
	cfg_error err;
	char out[200];
	write_conf(fx, "postgres = { conninfo = \"host=db password='kv pass 42' dbname=x\"; };\n");
	assert_int_equal(cfg_load(fx->path, &c, &err), 0);
	cfg_free(&c);
	write_conf(fx, "postgres = { conninfo = \"postgresql://bob:uri%40pass@db/x\"; };\n");
	assert_int_equal(cfg_load(fx->path, &c, &err), 0);
	cfg_free(&c);
	log_redact("auth with kv pass 42 and uri@pass failed", out, sizeof out);
	assert_string_equal(out, "auth with [redacted] and [redacted] failed");
}

/* Loads fx->path and logs its warnings, as main does once the log is set up. */
static void load_quietly(void *arg)
{
	fixture *fx = arg;
	cfg c;
	cfg_error err;
	assert_int_equal(cfg_load(fx->path, &c, &err), 0);
	cfg_log_warnings(&c);
	cfg_free(&c);
}

static void test_warns_when_config_with_key_is_readable(void **state)
{
	fixture *fx = *state;
	write_file(fx->path, "api = { key = \"visible-key-777\"; };\n", 0644);
	char *out = capture_stderr(load_quietly, fx);
	assert_non_null(strstr(out, " warn "));
	assert_non_null(strstr(out, fx->path));
	assert_non_null(strstr(out, "readable by group or others"));
	assert_null(strstr(out, "visible-key-777"));
	free(out);
	/* 0600: no warning. */
	write_file(fx->path, "api = { key = \"visible-key-777\"; };\n", 0600);
	out = capture_stderr(load_quietly, fx);
	assert_string_equal(out, "");
	free(out);
	/* 0644 without a key: no warning either. */
	write_file(fx->path, "api = { concurrency = 2; };\n", 0644);
	out = capture_stderr(load_quietly, fx);
	assert_string_equal(out, "");
	free(out);
}

static void load_and_read_secrets(void *arg)
{
	fixture *fx = arg;
	cfg c;
	cfg_error err;
	assert_int_equal(cfg_load(fx->path, &c, &err), 0);
	cfg_log_warnings(&c);
	assert_int_equal(c.warning_count, 0); /* the key file is not read yet */
	assert_int_equal(cfg_read_secrets(&c, &err), 0);
	assert_int_equal(c.warning_count, 1);
	cfg_free(&c);
}

/* A key file others may read is found out when it is read, after the log
 * was set up: cfg_read_secrets logs the warning itself. */
static void test_warns_when_key_file_is_readable(void **state)
{
	fixture *fx = *state;
	char key_path[200];
	snprintf(key_path, sizeof key_path, "%s/api.key", fx->dir);
	write_file(key_path, "visible-key-888\n", 0644);
	write_conf(fx, "api = { key_file = \"api.key\"; };\n");
	char *out = capture_stderr(load_and_read_secrets, fx);
	assert_non_null(strstr(out, " warn "));
	assert_non_null(strstr(out, key_path));
	assert_non_null(strstr(out, "readable by group or others"));
	assert_null(strstr(out, "visible-key-888"));
	free(out);
}

typedef struct load_result {
	fixture *fx;
	cfg c;
	int rc;
} load_result;

static void load_into(void *arg)
{
	load_result *r = arg;
	cfg_error err;
	r->rc = cfg_load(r->fx->path, &r->c, &err);
}

static void log_warnings_of(void *arg)
{
	cfg_log_warnings(arg);
}

/* The log's level and format come from the file being read, so cfg_load
 * keeps its warnings and cfg_log_warnings writes them once log_init has
 * applied the file's log.format and level (or -q / --log-format). */
static void test_warnings_are_kept_until_the_log_is_set_up(void **state)
{
	fixture *fx = *state;
	load_result r = { .fx = fx };
	write_file(fx->path,
		   "api = { key = \"visible-key-777\"; username = \"bot@example.com\"; };\n"
		   "log = { format = \"json\"; level = \"warn\"; };\n",
		   0644);
	char *out = capture_stderr(load_into, &r);
	assert_int_equal(r.rc, 0);
	assert_string_equal(out, ""); /* nothing logged while reading */
	free(out);
	assert_int_equal(r.c.warning_count, 2);
	assert_non_null(strstr(r.c.warnings[0], "readable by group or others"));
	assert_non_null(strstr(r.c.warnings[1], "the key is used and the username is ignored"));
	/* As main does: the log set up from the file, then the warnings. */
	log_init(r.c.log_level, r.c.log_format);
	out = capture_stderr(log_warnings_of, &r.c);
	assert_non_null(strstr(out, "{\"time\":\""));
	assert_non_null(strstr(out, "\"level\":\"warn\",\"msg\":\""));
	assert_non_null(strstr(out, "readable by group or others"));
	assert_null(strstr(out, "visible-key-777"));
	free(out);
	/* A level that leaves warnings out leaves these out too. */
	log_init(LOG_ERROR, LOG_FORMAT_TEXT);
	out = capture_stderr(log_warnings_of, &r.c);
	assert_string_equal(out, "");
	free(out);
	cfg_free(&r.c);
	assert_int_equal(r.c.warning_count, 0);
	assert_null(r.c.warnings[0]);
}

/* ---- username and password ---- */

static void test_credentials_in_file(void **state)
{
	fixture *fx = *state;
	cfg c;
	cfg_error err;
	write_conf(fx, "api = {\n username = \"bot@example.com\";\n password = \"pa ss-w0rd\";\n"
		       " token_url = \"http://127.0.0.1:9/Token/\";\n token_cache = \"/tmp/x/token\";\n};\n");
	assert_int_equal(cfg_load(fx->path, &c, &err), 0);
	assert_null(c.key);
	assert_string_equal(c.username, "bot@example.com");
	assert_string_equal(c.password, "pa ss-w0rd");
	assert_string_equal(c.password_source, "api.password");
	assert_string_equal(c.token_url, "http://127.0.0.1:9/Token");
	assert_string_equal(c.token_cache, "/tmp/x/token");
	cfg_free(&c);
	assert_null(c.password);
	assert_null(c.password_source);
	/* Defaults of the endpoint and the cache. */
	write_conf(fx, "api = { username = \"bot@example.com\"; password = \"pw-1234\"; };\n");
	assert_int_equal(cfg_load(fx->path, &c, &err), 0);
	assert_string_equal(c.token_url, "https://app.bloomgrowth.com/token");
	assert_string_equal(c.token_cache, "/var/lib/bloomsync/token");
	cfg_free(&c);
}

static void test_password_file(void **state)
{
	fixture *fx = *state;
	cfg c;
	cfg_error err;
	char pw_path[200];
	snprintf(pw_path, sizeof pw_path, "%s/api.password", fx->dir);
	write_file(pw_path, " spaced pw \n", 0600);
	write_conf(fx, "api = {\n username = \"bot@example.com\";\n password_file = \"api.password\";\n};\n");
	assert_int_equal(cfg_load(fx->path, &c, &err), 0);
	assert_null(c.password); /* read by cfg_read_secrets only */
	assert_string_equal(c.password_source, "api.password_file");
	assert_int_equal(cfg_read_secrets(&c, &err), 0);
	assert_string_equal(c.password, " spaced pw ");
	assert_string_equal(c.password_source, "api.password_file");
	cfg_free(&c);
	char want[300];
	snprintf(want, sizeof want, "3: api.password_file: cannot read %s/nope: No such file or directory", fx->dir);
	expect_secret_error(fx, "api = {\n username = \"bot@example.com\";\n password_file = \"nope\";\n};\n",
			    want);
	expect_error(fx, "api = {\n username = \"u@x\";\n password = \"a\";\n password_file = \"p\";\n};\n",
		     "4: api.password and api.password_file are both set; keep one of them");
}

static void test_environment_credentials_win(void **state)
{
	fixture *fx = *state;
	cfg c;
	cfg_error err;
	setenv("BG_USERNAME", "env@example.com", 1);
	setenv("BG_PASSWORD", "env-pw-9876", 1);
	write_conf(fx, "api = { username = \"file@example.com\"; password_file = \"/nonexistent/pw\"; };\n");
	assert_int_equal(cfg_load(fx->path, &c, &err), 0);
	assert_string_equal(c.username, "env@example.com");
	assert_string_equal(c.password, "env-pw-9876");
	assert_string_equal(c.password_source, "environment BG_PASSWORD");
	assert_int_equal(cfg_read_secrets(&c, &err), 0); /* the file is not needed */
	assert_string_equal(c.password, "env-pw-9876");
	cfg_free(&c);
	/* The environment alone is enough. */
	write_conf(fx, "");
	assert_int_equal(cfg_load(fx->path, &c, &err), 0);
	assert_string_equal(c.username, "env@example.com");
	cfg_free(&c);
	setenv("BG_PASSWORD", "bad\npw", 1);
	assert_int_equal(cfg_load(fx->path, &c, &err), -1);
	assert_string_equal(err.msg, "BG_PASSWORD (environment): must not contain control characters");
}

static void test_password_without_username(void **state)
{
	fixture *fx = *state;
	cfg c;
	cfg_error err;
	expect_error(fx, "api = {\n concurrency = 2;\n password = \"pw-1234\";\n};\n",
		     "3: api.password: a password without a username; set api.username or BG_USERNAME");
	expect_error(fx, "api = {\n username = \"bot@example.com\";\n};\n",
		     "2: api.username: a username without a password; set api.password, "
		     "api.password_file or BG_PASSWORD");
	setenv("BG_PASSWORD", "env-pw-9876", 1);
	write_conf(fx, "");
	assert_int_equal(cfg_load(fx->path, &c, &err), -1);
	assert_string_equal(err.msg,
			    "BG_PASSWORD (environment): a password without a username; set api.username or BG_USERNAME");
	assert_null(strstr(err.msg, "env-pw-9876"));
}

static void load_key_and_credentials(void *arg)
{
	fixture *fx = arg;
	cfg c;
	cfg_error err;
	assert_int_equal(cfg_load(fx->path, &c, &err), 0);
	assert_string_equal(c.key, "fixed-key-1234");
	assert_null(c.username);
	assert_null(c.password);
	cfg_log_warnings(&c);
	cfg_free(&c);
}

static void test_key_wins_over_credentials(void **state)
{
	fixture *fx = *state;
	write_conf(fx, "api = { key = \"fixed-key-1234\"; username = \"bot@example.com\"; "
		       "password = \"hidden-pw-5555\"; };\n");
	char *out = capture_stderr(load_key_and_credentials, fx);
	assert_non_null(strstr(out, " warn "));
	assert_non_null(strstr(out, "the key is used and the username and password are ignored"));
	assert_null(strstr(out, "hidden-pw-5555"));
	assert_null(strstr(out, "fixed-key-1234"));
	free(out);
}

/* Loads fx->path expecting the key to win, and returns what was logged
 * (malloc'd). */
static char *load_expecting_key(fixture *fx, const char *text)
{
	write_conf(fx, text);
	return capture_stderr(load_key_and_credentials, fx);
}

/* Loads text, where a key wins over an api.password_file naming a missing
 * file: cfg_read_secrets, which reads the secret files, does not read the
 * password file (the credentials were dropped), so the missing file is no
 * error, no password appears, and the key is kept. */
static void expect_password_file_unread(fixture *fx, const char *text)
{
	cfg c;
	cfg_error err;
	write_conf(fx, text);
	assert_int_equal(cfg_load(fx->path, &c, &err), 0);
	assert_null(c.username);
	assert_null(c.password_source);
	if (cfg_read_secrets(&c, &err) != 0)
		fail_msg("cfg_read_secrets: %s", err.msg);
	assert_string_equal(err.msg, "");
	assert_null(c.username);
	assert_null(c.password);
	assert_null(c.password_source);
	assert_string_equal(c.key, "fixed-key-1234");
	assert_string_equal(c.key_source, "api.key");
	cfg_free(&c);
}

/* A key wins over half a pair of credentials too, as over a whole pair: the
 * docs promise it, and failing would stop a run that has what it needs. */
static void test_key_wins_over_incomplete_credentials(void **state)
{
	fixture *fx = *state;
	char *out = load_expecting_key(fx, "api = { key = \"fixed-key-1234\"; username = \"bot@example.com\"; };\n");
	assert_non_null(strstr(out, " warn "));
	assert_non_null(strstr(out, "both an API key (from api.key) and a username (from api.username, without a "
				    "password) are set; the key is used and the username is ignored"));
	free(out);
	out = load_expecting_key(fx, "api = { key = \"fixed-key-1234\"; password = \"hidden-pw-5555\"; };\n");
	assert_non_null(strstr(out, "a password (from api.password, without a username) are set; the key is used "
				    "and the password is ignored"));
	assert_null(strstr(out, "hidden-pw-5555"));
	free(out);
	out = load_expecting_key(fx, "api = { key = \"fixed-key-1234\"; password_file = \"/nonexistent/pw\"; };\n");
	assert_non_null(strstr(out, "a password (from api.password_file, without a username)"));
	free(out);
	expect_password_file_unread(fx, "api = { key = \"fixed-key-1234\"; password_file = \"/nonexistent/pw\"; };\n");
	/* with a whole pair too, where the file would be read without the key */
	expect_password_file_unread(fx, "api = { key = \"fixed-key-1234\"; username = \"bot@example.com\"; "
					"password_file = \"/nonexistent/pw\"; };\n");
	setenv("BG_USERNAME", "env@example.com", 1);
	out = load_expecting_key(fx, "api = { key = \"fixed-key-1234\"; };\n");
	assert_non_null(strstr(out, "a username (from environment BG_USERNAME, without a password)"));
	free(out);
	unsetenv("BG_USERNAME");
	setenv("BG_API_KEY", "fixed-key-1234", 1);
	setenv("BG_PASSWORD", "env-pw-9876", 1);
	out = load_expecting_key(fx, "");
	assert_non_null(strstr(out, "both an API key (from environment BG_API_KEY) and a password (from environment "
				    "BG_PASSWORD, without a username)"));
	free(out);
}

static void test_password_is_registered_as_secret(void **state)
{
	fixture *fx = *state;
	cfg c;
	cfg_error err;
	char out[200];
	write_conf(fx, "api = { username = \"bot@example.com\"; password = \"hush-pw-2024\"; };\n");
	assert_int_equal(cfg_load(fx->path, &c, &err), 0);
	log_redact("login with hush-pw-2024 failed", out, sizeof out);
	assert_string_equal(out, "login with [redacted] failed");
	cfg_free(&c);
}

/* A password in a URL's userinfo is a secret too (check prints the URL
 * through log_redact); the user name and a URL without one are left alone. */
static void test_url_password_is_registered_as_secret(void **state)
{
	fixture *fx = *state;
	cfg c;
	cfg_error err;
	char out[200];
	write_conf(fx, "api = { key = \"k-12345-secret\";\n"
		       " base_url = \"http://proxyuser:url-pw@9@proxy.example:8080/api/v1\";\n"
		       " token_url = \"https://tok-user:tok-pw-77@login.example/token\"; };\n");
	assert_int_equal(cfg_load(fx->path, &c, &err), 0);
	log_redact(c.base_url, out, sizeof out);
	assert_string_equal(out, "http://proxyuser:[redacted]@proxy.example:8080/api/v1");
	log_redact(c.token_url, out, sizeof out);
	assert_string_equal(out, "https://tok-user:[redacted]@login.example/token");
	cfg_free(&c);
}

/* The shipped example must load and say exactly the defaults. */
static void test_example_config_is_the_defaults(void **state)
{
	(void)state;
	char path[512];
	const char *slash = strrchr(__FILE__, '/');
	snprintf(path, sizeof path, "%.*s/../config/bloomsync.conf.example",
		 slash ? (int)(slash - __FILE__) : 1, slash ? __FILE__ : ".");
	if (access(path, R_OK) != 0)
		skip(); /* built away from the source tree */
	cfg c, d;
	cfg_error err;
	if (cfg_load(path, &c, &err) != 0)
		fail_msg("%s", err.msg);
	cfg_defaults(&d);
	assert_string_equal(c.base_url, d.base_url);
	assert_string_equal(c.conninfo, d.conninfo);
	assert_string_equal(c.schema, d.schema);
	assert_null(c.key);
	assert_null(c.metrics_file);
	assert_null(c.username);
	assert_null(c.password);
	assert_string_equal(c.token_url, d.token_url);
	assert_string_equal(c.token_cache, d.token_cache);
	assert_int_equal(c.concurrency, d.concurrency);
	assert_true(c.rate_limit == d.rate_limit);
	assert_int_equal(c.timeout_ms, d.timeout_ms);
	assert_int_equal(c.max_retries, d.max_retries);
	assert_int_equal(c.batch_size, d.batch_size);
	assert_int_equal(c.log_level, d.log_level);
	assert_int_equal(c.log_format, d.log_format);
	assert_int_equal(c.streams, d.streams);
	cfg_free(&c);
	cfg_free(&d);
}

static void test_free_twice_is_safe(void **state)
{
	fixture *fx = *state;
	cfg c;
	cfg_error err;
	write_conf(fx, "api = { key = \"abcdefgh\"; };\nmetrics_file = \"/tmp/m.prom\";\n");
	assert_int_equal(cfg_load(fx->path, &c, &err), 0);
	cfg_free(&c);
	assert_null(c.base_url);
	assert_null(c.key);
	assert_null(c.metrics_file);
	assert_null(c.path);
	cfg_free(&c);
	cfg_free(NULL);
	cfg zeroed = { 0 };
	cfg_free(&zeroed);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_defaults_for_empty_file, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bad_conninfo_is_refused_unechoed, setup, teardown),
		cmocka_unit_test_setup_teardown(test_conninfo_password_is_registered_as_secret, setup, teardown),
		cmocka_unit_test_setup_teardown(test_cfg_defaults_matches_empty_file, setup, teardown),
		cmocka_unit_test_setup_teardown(test_full_valid_file, setup, teardown),
		cmocka_unit_test_setup_teardown(test_float_rate_limit_and_zero, setup, teardown),
		cmocka_unit_test_setup_teardown(test_tiny_rate_limit_is_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_key_file_fifo_bom_and_ascii, setup, teardown),
		cmocka_unit_test_setup_teardown(test_missing_file, setup, teardown),
		cmocka_unit_test_setup_teardown(test_directory_is_not_a_file, setup, teardown),
		cmocka_unit_test_setup_teardown(test_syntax_error, setup, teardown),
		cmocka_unit_test_setup_teardown(test_unknown_setting, setup, teardown),
		cmocka_unit_test_setup_teardown(test_include_is_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_utf8_bom_is_skipped, setup, teardown),
		cmocka_unit_test_setup_teardown(test_streams, setup, teardown),
		cmocka_unit_test_setup_teardown(test_streams_errors, setup, teardown),
		cmocka_unit_test_setup_teardown(test_unknown_top_level_setting, setup, teardown),
		cmocka_unit_test_setup_teardown(test_unknown_group, setup, teardown),
		cmocka_unit_test_setup_teardown(test_out_of_range, setup, teardown),
		cmocka_unit_test_setup_teardown(test_integer_too_large_is_not_wrapped, setup, teardown),
		cmocka_unit_test_setup_teardown(test_integer_too_large_behind_comments, setup, teardown),
		cmocka_unit_test_setup_teardown(test_integer_check_skips_comments_and_strings, setup, teardown),
		cmocka_unit_test_setup_teardown(test_wrong_types, setup, teardown),
		cmocka_unit_test_setup_teardown(test_group_where_scalar_belongs, setup, teardown),
		cmocka_unit_test_setup_teardown(test_scalar_where_group_belongs, setup, teardown),
		cmocka_unit_test_setup_teardown(test_duplicate_setting, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bad_values, setup, teardown),
		cmocka_unit_test_setup_teardown(test_schema_length_limit, setup, teardown),
		cmocka_unit_test_setup_teardown(test_key_file, setup, teardown),
		cmocka_unit_test_setup_teardown(test_key_file_unreadable, setup, teardown),
		cmocka_unit_test_setup_teardown(test_relative_paths_are_from_the_config_directory, setup, teardown),
		cmocka_unit_test_setup_teardown(test_key_file_with_two_words, setup, teardown),
		cmocka_unit_test_setup_teardown(test_warns_when_key_file_is_readable, setup, teardown),
		cmocka_unit_test_setup_teardown(test_key_and_key_file_conflict, setup, teardown),
		cmocka_unit_test_setup_teardown(test_env_key_wins, setup, teardown),
		cmocka_unit_test_setup_teardown(test_env_key_with_newline_rejected, setup, teardown),
		cmocka_unit_test_setup_teardown(test_key_is_registered_as_secret, setup, teardown),
		cmocka_unit_test_setup_teardown(test_warns_when_config_with_key_is_readable, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_warnings_are_kept_until_the_log_is_set_up, setup, teardown),
		cmocka_unit_test_setup_teardown(test_example_config_is_the_defaults, setup, teardown),
		cmocka_unit_test_setup_teardown(test_free_twice_is_safe, setup, teardown),
		cmocka_unit_test_setup_teardown(test_credentials_in_file, setup, teardown),
		cmocka_unit_test_setup_teardown(test_password_file, setup, teardown),
		cmocka_unit_test_setup_teardown(test_environment_credentials_win, setup, teardown),
		cmocka_unit_test_setup_teardown(test_password_without_username, setup, teardown),
		cmocka_unit_test_setup_teardown(test_key_wins_over_credentials, setup, teardown),
		cmocka_unit_test_setup_teardown(test_key_wins_over_incomplete_credentials, setup, teardown),
		cmocka_unit_test_setup_teardown(test_password_is_registered_as_secret, setup, teardown),
		cmocka_unit_test_setup_teardown(test_url_password_is_registered_as_secret, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
