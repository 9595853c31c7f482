/* test_log.c — log.c through log.h: line shapes (text and JSON), level
 * filtering, redaction of secrets and Authorization values in every field,
 * escaping, invalid UTF-8, truncation, and concurrent writers.
 *
 * Output is captured by pointing fd 2 at a temporary file; JSON lines are
 * checked by parsing them with jansson. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <ctype.h>
#include <errno.h>
#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "scratch.h"

static int saved_stderr = -1;
static int capture_fd = -1;

static void capture_begin(void)
{
	char tmpl[] = "/tmp/test_log.XXXXXX";
	capture_fd = mkstemp(tmpl);
	assert_true(capture_fd >= 0);
	unlink(tmpl);
	saved_stderr = dup(STDERR_FILENO);
	assert_true(saved_stderr >= 0);
	assert_true(dup2(capture_fd, STDERR_FILENO) >= 0);
}

/* Restores stderr and returns everything written meanwhile (malloc'd). */
static char *capture_end(void)
{
	assert_true(dup2(saved_stderr, STDERR_FILENO) >= 0);
	close(saved_stderr);
	char *out = scratch_read_fd(capture_fd);
	close(capture_fd);
	return out;
}

static int count_lines(const char *text)
{
	int n = 0;
	for (; *text; text++)
		n += *text == '\n';
	return n;
}

/* Parses a single JSON line (without its newline). */
static json_t *parse_line(const char *line, size_t len)
{
	json_error_t jerr;
	json_t *obj = json_loadb(line, len, 0, &jerr);
	if (!obj)
		print_error("invalid JSON line: %s: %.*s\n", jerr.text, (int)len, line);
	assert_non_null(obj);
	assert_true(json_is_object(obj));
	return obj;
}

static int setup(void **state)
{
	(void)state;
	log_init(LOG_INFO, LOG_FORMAT_TEXT);
	log_set_run_id(0);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	log_shutdown();
	log_set_run_id(0);
	return 0;
}

static void test_parse_names(void **state)
{
	(void)state;
	log_level level;
	log_format format;
	assert_int_equal(log_level_parse("debug", &level), 0);
	assert_int_equal(level, LOG_DEBUG);
	assert_int_equal(log_level_parse("error", &level), 0);
	assert_int_equal(level, LOG_ERROR);
	assert_int_equal(log_level_parse("verbose", &level), -1);
	assert_int_equal(log_level_parse("INFO", &level), -1);
	assert_int_equal(log_format_parse("json", &format), 0);
	assert_int_equal(format, LOG_FORMAT_JSON);
	assert_int_equal(log_format_parse("text", &format), 0);
	assert_int_equal(format, LOG_FORMAT_TEXT);
	assert_int_equal(log_format_parse("xml", &format), -1);
	assert_string_equal(log_level_name(LOG_WARN), "warn");
	assert_string_equal(log_level_name(LOG_INFO), "info");
}

static void test_text_line_shape(void **state)
{
	(void)state;
	log_set_run_id(12);
	capture_begin();
	log_emit(LOG_INFO, "todos", "meeting:42", "fetched %d rows", 7);
	log_set_run_id(0);
	log_info("plain %s", "line");
	char *out = capture_end();
	/* 2026-11-21T20:00:00.123Z info run=12 stream=todos unit=meeting:42 fetched 7 rows */
	const char *p = out;
	assert_true(strlen(p) > 25);
	assert_true(isdigit((unsigned char)p[0]) && p[4] == '-' && p[7] == '-' && p[10] == 'T' &&
		    p[13] == ':' && p[16] == ':' && p[19] == '.' && p[23] == 'Z' && p[24] == ' ');
	char *eol = strchr(p, '\n');
	assert_non_null(eol);
	*eol = '\0';
	assert_string_equal(p + 25, "info run=12 stream=todos unit=meeting:42 fetched 7 rows");
	p = eol + 1;
	eol = strchr(p, '\n');
	assert_non_null(eol);
	*eol = '\0';
	assert_string_equal(p + 25, "info plain line");
	free(out);
}

static void test_level_filtering(void **state)
{
	(void)state;
	capture_begin();
	log_debug("hidden debug line");
	log_info("shown info line");
	log_warn("shown warn line");
	log_init(LOG_ERROR, LOG_FORMAT_TEXT);
	log_info("hidden info line");
	log_warn("hidden warn line");
	log_error("shown error line");
	log_init(LOG_DEBUG, LOG_FORMAT_TEXT);
	log_debug("shown debug line");
	char *out = capture_end();
	assert_null(strstr(out, "hidden"));
	assert_non_null(strstr(out, " info shown info line\n"));
	assert_non_null(strstr(out, " warn shown warn line\n"));
	assert_non_null(strstr(out, " error shown error line\n"));
	assert_non_null(strstr(out, " debug shown debug line\n"));
	assert_int_equal(count_lines(out), 4);
	assert_false(log_enabled(LOG_DEBUG + 1));
	free(out);
}

static int count_calls;

static const char *counted(void)
{
	count_calls++;
	return "x";
}

static void test_macros_skip_formatting_when_off(void **state)
{
	(void)state;
	count_calls = 0;
	log_debug("%s", counted());
	assert_int_equal(count_calls, 0);
	capture_begin();
	log_info("%s", counted());
	free(capture_end());
	assert_int_equal(count_calls, 1);
}

static void test_secret_redacted_everywhere(void **state)
{
	(void)state;
	log_add_secret("s3cr3t-token-xyz");
	capture_begin();
	log_emit(LOG_WARN, "todos-s3cr3t-token-xyz", "unit=s3cr3t-token-xyz",
		 "request with key s3cr3t-token-xyz failed twice: s3cr3t-token-xyz");
	log_init(LOG_INFO, LOG_FORMAT_JSON);
	log_emit(LOG_WARN, "s3cr3t-token-xyz", "s3cr3t-token-xyz", "key=s3cr3t-token-xyz");
	char *out = capture_end();
	assert_null(strstr(out, "s3cr3t"));
	assert_non_null(strstr(out, "stream=todos-[redacted] unit=unit=[redacted] request with key "
				    "[redacted] failed twice: [redacted]\n"));
	assert_non_null(strstr(out, "\"stream\":\"[redacted]\",\"unit\":\"[redacted]\","
				    "\"msg\":\"key=[redacted]\""));
	free(out);
}

static void test_redact_function(void **state)
{
	(void)state;
	char out[256];
	log_add_secret("abc"); /* too short: ignored */
	log_add_secret("tok-1234");
	log_add_secret("tok-1234-long"); /* longest match wins */
	log_add_secret("tok-1234");      /* duplicate: harmless */
	log_redact("abc tok-1234 tok-1234-long tok-123", out, sizeof out);
	assert_string_equal(out, "abc [redacted] [redacted] tok-123");
	log_redact(NULL, out, sizeof out);
	assert_string_equal(out, "");
	/* A short buffer never holds part of a secret. */
	char small[8];
	log_redact("xx tok-1234-long", small, sizeof small);
	assert_string_equal(small, "xx [red");
	log_shutdown();
	log_redact("tok-1234", out, sizeof out);
	assert_string_equal(out, "tok-1234");
}

static void test_authorization_redacted(void **state)
{
	(void)state;
	char out[512];
	log_redact("> GET /api/v1/users HTTP/1.1\r\nAuthorization: Bearer abc.def.ghi\r\nHost: x\r\n",
		   out, sizeof out);
	assert_string_equal(out,
			    "> GET /api/v1/users HTTP/1.1\r\nAuthorization: [redacted]\r\nHost: x\r\n");
	log_redact("authorization:Basic dXNlcjpwYXNz", out, sizeof out);
	assert_string_equal(out, "authorization:[redacted]");
	log_redact("{\"Authorization\": \"Bearer abc\", \"x\": 1}", out, sizeof out);
	assert_string_equal(out, "{\"Authorization\": \"[redacted]\", \"x\": 1}");
	log_redact("Proxy-AUTHORIZATION: token zzz\nnext line", out, sizeof out);
	assert_string_equal(out, "Proxy-AUTHORIZATION: [redacted]\nnext line");
	log_redact("no authorization here", out, sizeof out);
	assert_string_equal(out, "no authorization here");

	capture_begin();
	log_error("curl said: Authorization: Bearer top-secret-value");
	char *text = capture_end();
	assert_null(strstr(text, "top-secret"));
	assert_non_null(strstr(text, "curl said: Authorization: [redacted]\n"));
	free(text);
}

static void test_json_lines(void **state)
{
	(void)state;
	log_init(LOG_DEBUG, LOG_FORMAT_JSON);
	log_set_run_id(12);
	capture_begin();
	log_emit(LOG_INFO, "todos", "meeting:42", "upserted %d rows", 3);
	log_debug("no fields");
	log_set_run_id(0);
	log_emit(LOG_ERROR, NULL, "user:7", "bad \"quote\" and back\\slash");
	char *out = capture_end();
	assert_int_equal(count_lines(out), 3);

	char *line = out;
	char *eol = strchr(line, '\n');
	json_t *obj = parse_line(line, (size_t)(eol - line));
	assert_string_equal(json_string_value(json_object_get(obj, "level")), "info");
	assert_int_equal(json_integer_value(json_object_get(obj, "run_id")), 12);
	assert_string_equal(json_string_value(json_object_get(obj, "stream")), "todos");
	assert_string_equal(json_string_value(json_object_get(obj, "unit")), "meeting:42");
	assert_string_equal(json_string_value(json_object_get(obj, "msg")), "upserted 3 rows");
	const char *time = json_string_value(json_object_get(obj, "time"));
	assert_non_null(time);
	assert_int_equal(strlen(time), 24);
	assert_int_equal(time[23], 'Z');
	assert_int_equal(json_object_size(obj), 6);
	json_decref(obj);

	line = eol + 1;
	eol = strchr(line, '\n');
	obj = parse_line(line, (size_t)(eol - line));
	assert_string_equal(json_string_value(json_object_get(obj, "level")), "debug");
	assert_null(json_object_get(obj, "stream"));
	assert_null(json_object_get(obj, "unit"));
	assert_int_equal(json_object_size(obj), 4);
	json_decref(obj);

	line = eol + 1;
	eol = strchr(line, '\n');
	obj = parse_line(line, (size_t)(eol - line));
	assert_null(json_object_get(obj, "run_id"));
	assert_null(json_object_get(obj, "stream"));
	assert_string_equal(json_string_value(json_object_get(obj, "unit")), "user:7");
	assert_string_equal(json_string_value(json_object_get(obj, "msg")),
			    "bad \"quote\" and back\\slash");
	json_decref(obj);
	free(out);
}

static void test_control_chars_escaped(void **state)
{
	(void)state;
	const char *nasty = "line1\nline2\r\ttab\x01\x1f\x7f end";
	log_init(LOG_INFO, LOG_FORMAT_JSON);
	capture_begin();
	log_emit(LOG_INFO, "a\nb", NULL, "%s", nasty);
	char *out = capture_end();
	assert_int_equal(count_lines(out), 1);
	json_t *obj = parse_line(out, strlen(out) - 1);
	assert_string_equal(json_string_value(json_object_get(obj, "msg")), nasty);
	assert_string_equal(json_string_value(json_object_get(obj, "stream")), "a\nb");
	assert_non_null(strstr(out, "\\u0001"));
	json_decref(obj);
	free(out);

	log_init(LOG_INFO, LOG_FORMAT_TEXT);
	capture_begin();
	log_emit(LOG_INFO, "a\nb", NULL, "%s", nasty);
	out = capture_end();
	assert_int_equal(count_lines(out), 1);
	assert_non_null(strstr(out, "stream=a\\nb line1\\nline2\\r\ttab\\x01\\x1f\\x7f end\n"));
	free(out);
}

static void test_invalid_utf8_replaced(void **state)
{
	(void)state;
	log_init(LOG_INFO, LOG_FORMAT_JSON);
	capture_begin();
	/* stray continuation, overlong '/', surrogate, truncated 3-byte, valid é and € */
	log_info("a\x80 b\xc0\xaf c\xed\xa0\x80 d\xe2\x82 \xc3\xa9\xe2\x82\xac");
	char *out = capture_end();
	json_t *obj = parse_line(out, strlen(out) - 1);
	const char *msg = json_string_value(json_object_get(obj, "msg"));
	assert_non_null(msg);
	assert_non_null(strstr(msg, "a\xef\xbf\xbd b"));
	assert_non_null(strstr(msg, "\xc3\xa9\xe2\x82\xac"));
	json_decref(obj);
	free(out);
}

static void test_long_message_truncated(void **state)
{
	(void)state;
	size_t big = 20000;
	char *msg = malloc(big + 1);
	assert_non_null(msg);
	/* Two-byte characters, so a byte cut would split one; the secret sits
	 * across the 8 KiB cut and must not leak a prefix. */
	for (size_t i = 0; i + 1 < big; i += 2)
		memcpy(msg + i, "\xc3\xa9", 2);
	memcpy(msg + 8186, "zz-long-secret-value", 20);
	msg[big] = '\0';
	log_add_secret("zz-long-secret-value");
	log_init(LOG_INFO, LOG_FORMAT_JSON);
	capture_begin();
	log_info("%s", msg);
	char *out = capture_end();
	assert_int_equal(count_lines(out), 1);
	assert_true(strlen(out) < 8192 + 200);
	assert_null(strstr(out, "zz-"));
	json_t *obj = parse_line(out, strlen(out) - 1);
	const char *logged = json_string_value(json_object_get(obj, "msg"));
	assert_non_null(logged);
	size_t len = strlen(logged);
	assert_true(len > 8000 && len <= 8192 + 20);
	assert_string_equal(logged + len - strlen(" [truncated]"), " [truncated]");
	json_decref(obj);
	free(out);
	free(msg);
}

static void test_empty_strings(void **state)
{
	(void)state;
	log_init(LOG_INFO, LOG_FORMAT_JSON);
	capture_begin();
	log_emit(LOG_INFO, "", "", "%s", "");
	char *out = capture_end();
	json_t *obj = parse_line(out, strlen(out) - 1);
	assert_string_equal(json_string_value(json_object_get(obj, "stream")), "");
	assert_string_equal(json_string_value(json_object_get(obj, "unit")), "");
	assert_string_equal(json_string_value(json_object_get(obj, "msg")), "");
	json_decref(obj);
	free(out);
	char dst[4] = "xyz";
	log_redact("", dst, sizeof dst);
	assert_string_equal(dst, "");
}

static void test_errno_preserved(void **state)
{
	(void)state;
	capture_begin();
	errno = ENOENT;
	log_info("something");
	int after = errno;
	free(capture_end());
	assert_int_equal(after, ENOENT);
}

#define THREADS 8
#define LINES_PER_THREAD 200

static void *writer(void *arg)
{
	long id = (long)(intptr_t)arg;
	char secret[32];
	snprintf(secret, sizeof secret, "thread-secret-%ld", id);
	log_add_secret(secret);
	for (int i = 0; i < LINES_PER_THREAD; i++)
		log_emit(LOG_INFO, "stream", NULL, "writer %ld line %d %s", id, i, secret);
	return NULL;
}

static void test_concurrent_writers(void **state)
{
	(void)state;
	pthread_t threads[THREADS];
	log_init(LOG_INFO, LOG_FORMAT_JSON);
	capture_begin();
	for (long i = 0; i < THREADS; i++)
		assert_int_equal(pthread_create(&threads[i], NULL, writer, (void *)(intptr_t)i), 0);
	for (int i = 0; i < THREADS; i++)
		assert_int_equal(pthread_join(threads[i], NULL), 0);
	char *out = capture_end();
	assert_int_equal(count_lines(out), THREADS * LINES_PER_THREAD);
	assert_null(strstr(out, "thread-secret"));
	for (char *line = out, *eol; (eol = strchr(line, '\n')); line = eol + 1) {
		json_t *obj = parse_line(line, (size_t)(eol - line));
		assert_non_null(strstr(json_string_value(json_object_get(obj, "msg")), "[redacted]"));
		json_decref(obj);
	}
	free(out);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_parse_names, setup, teardown),
		cmocka_unit_test_setup_teardown(test_text_line_shape, setup, teardown),
		cmocka_unit_test_setup_teardown(test_level_filtering, setup, teardown),
		cmocka_unit_test_setup_teardown(test_macros_skip_formatting_when_off, setup, teardown),
		cmocka_unit_test_setup_teardown(test_secret_redacted_everywhere, setup, teardown),
		cmocka_unit_test_setup_teardown(test_redact_function, setup, teardown),
		cmocka_unit_test_setup_teardown(test_authorization_redacted, setup, teardown),
		cmocka_unit_test_setup_teardown(test_json_lines, setup, teardown),
		cmocka_unit_test_setup_teardown(test_control_chars_escaped, setup, teardown),
		cmocka_unit_test_setup_teardown(test_invalid_utf8_replaced, setup, teardown),
		cmocka_unit_test_setup_teardown(test_long_message_truncated, setup, teardown),
		cmocka_unit_test_setup_teardown(test_empty_strings, setup, teardown),
		cmocka_unit_test_setup_teardown(test_errno_preserved, setup, teardown),
		cmocka_unit_test_setup_teardown(test_concurrent_writers, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
