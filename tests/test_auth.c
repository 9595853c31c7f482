/* test_auth.c — src/auth.c through auth.h, against a real token endpoint
 * (libmicrohttpd inside the test process on 127.0.0.1): login and the form
 * it posts, the cache file (reuse, mode 0600, directory 0700, another
 * user's cache), renewal near and after expiry, forced renewal, a rejected
 * password, malformed answers, retries (honouring Retry-After), timeout_ms
 * as the longest silence (a slow but steady answer passes; one that never
 * ends is still cut off), a login cut short by a signal and an unreachable
 * endpoint.
 * Not covered: allocation failures (not producible by a real server). */
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <fcntl.h>
#include <microhttpd.h>
#include <signal.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>

#include "auth.h"
#include "log.h"
#include "scratch.h"

#define GOOD_USER "bot+sync@example.com"
#define GOOD_PASSWORD "p&ss w=rd%1"

/* ---- the token endpoint ---------------------------------------------- */

typedef struct server {
	struct MHD_Daemon *daemon;
	int port;
	pthread_mutex_t mu;
	int logins;         /* answered POST /token requests */
	int flaky_hits;
	int64_t hit_at_ms[3]; /* when /throttled was hit first and second */
	long ttl;           /* expires_in of issued tokens */
	char last_form[512];
} server;

static server srv = { .mu = PTHREAD_MUTEX_INITIALIZER };

typedef struct upload {
	char data[1024];
	size_t len;
} upload;

static int64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Answers status with body and, when header is not NULL, that header. */
static enum MHD_Result reply_with(struct MHD_Connection *conn, unsigned status, const char *body,
				  const char *header, const char *value)
{
	struct MHD_Response *resp =
	    MHD_create_response_from_buffer(strlen(body), (void *)(uintptr_t)body, MHD_RESPMEM_MUST_COPY);
	enum MHD_Result ret;

	if (!resp)
		return MHD_NO;
	MHD_add_response_header(resp, "Content-Type", "application/json");
	if (header)
		MHD_add_response_header(resp, header, value);
	ret = MHD_queue_response(conn, status, resp);
	MHD_destroy_response(resp);
	return ret;
}

static enum MHD_Result reply(struct MHD_Connection *conn, unsigned status, const char *body)
{
	return reply_with(conn, status, body, NULL, NULL);
}

/* Decodes one form field of the body into out ("" when absent). */
static void form_field(const char *form, const char *name, char *out, size_t outlen)
{
	size_t nlen = strlen(name);
	out[0] = '\0';
	for (const char *p = form; p && *p; p = strchr(p, '&') ? strchr(p, '&') + 1 : NULL) {
		if (strncmp(p, name, nlen) != 0 || p[nlen] != '=')
			continue;
		const char *v = p + nlen + 1;
		size_t vlen = strcspn(v, "&");
		char enc[512];
		snprintf(enc, sizeof enc, "%.*s", (int)vlen, v);
		int n = 0;
		char *dec = curl_easy_unescape(NULL, enc, 0, &n);
		snprintf(out, outlen, "%s", dec ? dec : "");
		curl_free(dec);
		return;
	}
}

static enum MHD_Result token(struct MHD_Connection *conn, const char *form)
{
	char grant[64], user[128], pass[128], body[256];

	form_field(form, "grant_type", grant, sizeof grant);
	form_field(form, "userName", user, sizeof user);
	form_field(form, "password", pass, sizeof pass);
	pthread_mutex_lock(&srv.mu);
	snprintf(srv.last_form, sizeof srv.last_form, "%s", form);
	int n = ++srv.logins;
	long ttl = srv.ttl;
	pthread_mutex_unlock(&srv.mu);
	if (strcmp(grant, "password") != 0)
		return reply(conn, 400, "{\"error\":\"unsupported_grant_type\"}");
	if (strcmp(user, GOOD_USER) != 0 || strcmp(pass, GOOD_PASSWORD) != 0)
		return reply(conn, 400, "{\"error\":\"invalid_grant\",\"error_description\":"
					"\"The user name or password is incorrect.\"}");
	snprintf(body, sizeof body, "{\"access_token\":\"tok-%d-abcdef\",\"token_type\":\"bearer\",\"expires_in\":%ld}",
		 n, ttl);
	return reply(conn, 200, body);
}

/* A token answer sent in DRIP_PIECES pieces DRIP_GAP_MS apart: over 2 s
 * in all, never quiet for long. */
#define DRIP_PIECES 10
#define DRIP_GAP_MS 250
#define DRIP_BODY "{\"access_token\":\"tok-drip-abcdef\",\"token_type\":\"bearer\",\"expires_in\":1209599}"

static ssize_t drip_piece(void *cls, uint64_t pos, char *buf, size_t max)
{
	static const char body[] = DRIP_BODY;
	const size_t piece = (sizeof body - 1 + DRIP_PIECES - 1) / DRIP_PIECES;
	size_t n;

	(void)cls;
	if (pos >= sizeof body - 1)
		return MHD_CONTENT_READER_END_OF_STREAM;
	if (pos > 0)
		usleep(DRIP_GAP_MS * 1000); /* thread per connection: only this one waits */
	n = sizeof body - 1 - pos < piece ? sizeof body - 1 - pos : piece;
	n = n < max ? n : max;
	memcpy(buf, body + pos, n);
	return (ssize_t)n;
}

/* A space every TRICKLE_GAP_MS for TRICKLE_MS: an answer that never ends
 * as far as a login is concerned, and is no token when it does. */
#define TRICKLE_GAP_MS 200
#define TRICKLE_MS 30000

static ssize_t trickle_piece(void *cls, uint64_t pos, char *buf, size_t max)
{
	(void)cls;
	if (pos >= TRICKLE_MS / TRICKLE_GAP_MS)
		return MHD_CONTENT_READER_END_OF_STREAM;
	if (pos > 0)
		usleep(TRICKLE_GAP_MS * 1000);
	if (max < 1)
		return 0;
	buf[0] = ' ';
	return 1;
}

static enum MHD_Result reply_slowly(struct MHD_Connection *conn, uint64_t size, MHD_ContentReaderCallback piece)
{
	struct MHD_Response *resp = MHD_create_response_from_callback(size, 64, piece, NULL, NULL);
	enum MHD_Result ret;

	if (!resp)
		return MHD_NO;
	MHD_add_response_header(resp, "Content-Type", "application/json");
	ret = MHD_queue_response(conn, 200, resp);
	MHD_destroy_response(resp);
	return ret;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url, const char *method,
				  const char *version, const char *upload_data, size_t *upload_data_size, void **con_cls)
{
	upload *u = *con_cls;

	(void)cls;
	(void)version;
	(void)method;
	if (!u) {
		u = calloc(1, sizeof *u);
		*con_cls = u;
		return u ? MHD_YES : MHD_NO;
	}
	if (*upload_data_size > 0) {
		size_t n = *upload_data_size;
		if (u->len + n < sizeof u->data) {
			memcpy(u->data + u->len, upload_data, n);
			u->len += n;
		}
		*upload_data_size = 0;
		return MHD_YES;
	}
	if (strcmp(url, "/token") == 0)
		return token(conn, u->data);
	if (strcmp(url, "/flaky") == 0) {
		pthread_mutex_lock(&srv.mu);
		int hit = ++srv.flaky_hits;
		pthread_mutex_unlock(&srv.mu);
		if (hit == 1)
			return reply(conn, 503, "{}");
		return token(conn, u->data);
	}
	if (strcmp(url, "/throttled") == 0) {
		pthread_mutex_lock(&srv.mu);
		int hit = ++srv.flaky_hits;
		srv.hit_at_ms[hit < 3 ? hit : 2] = now_ms();
		pthread_mutex_unlock(&srv.mu);
		if (hit == 1)
			return reply_with(conn, 429, "{}", "Retry-After", "2");
		return token(conn, u->data);
	}
	if (strcmp(url, "/drip") == 0)
		return reply_slowly(conn, sizeof DRIP_BODY - 1, drip_piece);
	if (strcmp(url, "/trickle") == 0)
		return reply_slowly(conn, TRICKLE_MS / TRICKLE_GAP_MS, trickle_piece);
	if (strcmp(url, "/not-json") == 0)
		return reply(conn, 200, "<html>hello</html>");
	if (strcmp(url, "/no-token") == 0)
		return reply(conn, 200, "{\"token_type\":\"bearer\",\"expires_in\":1209599}");
	if (strcmp(url, "/no-expiry") == 0)
		return reply(conn, 200, "{\"access_token\":\"abc-123\",\"token_type\":\"bearer\"}");
	if (strcmp(url, "/spaced-token") == 0)
		return reply(conn, 200, "{\"access_token\":\"abc 123\",\"expires_in\":100000}");
	if (strcmp(url, "/string-expiry") == 0)
		return reply(conn, 200, "{\"access_token\":\"abc-123\",\"expires_in\":\"1209599\"}");
	if (strcmp(url, "/forbidden") == 0)
		return reply(conn, 401, "{\"Message\":\"no\"}");
	return reply(conn, 404, "{}");
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls, enum MHD_RequestTerminationCode toe)
{
	(void)cls;
	(void)conn;
	(void)toe;
	free(*con_cls);
	*con_cls = NULL;
}

static int server_start(void)
{
	srv.daemon = MHD_start_daemon(MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD, 0, NULL, NULL,
				      on_request, NULL,
				      MHD_OPTION_NOTIFY_COMPLETED, on_completed, NULL, MHD_OPTION_END);
	if (!srv.daemon)
		return -1;
	const union MHD_DaemonInfo *info = MHD_get_daemon_info(srv.daemon, MHD_DAEMON_INFO_BIND_PORT);
	srv.port = info ? info->port : 0;
	return srv.port > 0 ? 0 : -1;
}

/* ---- fixture ----------------------------------------------------------- */

typedef struct fixture {
	char dir[64];
	char cache[160]; /* dir/state/token: the state directory does not exist yet */
	char url[128];
	auth_opts opts;
} fixture;

static int group_setup(void **state)
{
	(void)state;
	curl_global_init(CURL_GLOBAL_DEFAULT);
	return server_start();
}

static int group_teardown(void **state)
{
	(void)state;
	MHD_stop_daemon(srv.daemon);
	curl_global_cleanup();
	return 0;
}

static void use_path(fixture *fx, const char *path)
{
	snprintf(fx->url, sizeof fx->url, "http://127.0.0.1:%d%s", srv.port, path);
}

static int setup(void **state)
{
	fixture *fx = calloc(1, sizeof *fx);
	if (!fx)
		return -1;
	if (scratch_dir_make(fx->dir, sizeof fx->dir, "test_auth") != 0)
		return -1;
	snprintf(fx->cache, sizeof fx->cache, "%s/state/token", fx->dir);
	use_path(fx, "/token");
	fx->opts = (auth_opts){ .token_url = fx->url, .username = GOOD_USER, .password = GOOD_PASSWORD,
				.cache_path = fx->cache, .timeout_ms = 5000, .max_retries = 0 };
	pthread_mutex_lock(&srv.mu);
	srv.logins = 0;
	srv.flaky_hits = 0;
	srv.ttl = 1209599;
	srv.last_form[0] = '\0';
	pthread_mutex_unlock(&srv.mu);
	log_init(LOG_ERROR, LOG_FORMAT_TEXT);
	*state = fx;
	return 0;
}

static int teardown(void **state)
{
	fixture *fx = *state;
	int rc = scratch_dir_remove(fx->dir);
	free(fx);
	log_shutdown();
	return rc == 0 ? 0 : -1;
}

static int logins(void)
{
	pthread_mutex_lock(&srv.mu);
	int n = srv.logins;
	pthread_mutex_unlock(&srv.mu);
	return n;
}

static void write_cache(const fixture *fx, const char *user, const char *token, long long expires_at)
{
	char dir[128], text[512];
	snprintf(dir, sizeof dir, "%s/state", fx->dir);
	mkdir(dir, 0700);
	snprintf(text, sizeof text,
		 "{\"token_url\":\"%s\",\"username\":\"%s\",\"access_token\":\"%s\",\"expires_at\":%lld}\n", fx->url,
		 user, token, expires_at);
	int fd = open(fx->cache, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	close(fd);
}

/* Calls auth_get_token expecting success; returns the token (caller frees). */
static char *get_ok(const fixture *fx, bool force, auth_origin want_origin, time_t *expires)
{
	char *token = NULL;
	char err[256];
	auth_origin origin;
	auth_status st = auth_get_token(&fx->opts, force, &token, expires, &origin, err, sizeof err);
	if (st != AUTH_OK)
		fail_msg("auth_get_token: %s", err);
	assert_non_null(token);
	assert_int_equal(origin, want_origin);
	return token;
}

/* ---- tests ------------------------------------------------------------- */

static void test_login_posts_the_encoded_form(void **state)
{
	fixture *fx = *state;
	time_t expires;
	time_t before = time(NULL);
	char *token = get_ok(fx, false, AUTH_FROM_LOGIN, &expires);
	assert_string_equal(token, "tok-1-abcdef");
	assert_true(expires >= before + 1209599 && expires <= time(NULL) + 1209599);
	assert_int_equal(logins(), 1);
	pthread_mutex_lock(&srv.mu);
	assert_string_equal(srv.last_form,
			    "grant_type=password&userName=bot%2Bsync%40example.com&password=p%26ss%20w%3Drd%251");
	pthread_mutex_unlock(&srv.mu);
	/* the token is a registered secret from now on */
	char out[128];
	log_redact("bearer tok-1-abcdef here", out, sizeof out);
	assert_string_equal(out, "bearer [redacted] here");
	auth_token_free(token);
	auth_token_free(NULL);
}

static void test_cache_file_mode_and_contents(void **state)
{
	fixture *fx = *state;
	time_t expires;
	char *token = get_ok(fx, false, AUTH_FROM_LOGIN, &expires);
	struct stat st;
	assert_int_equal(stat(fx->cache, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0600);
	char dir[128];
	snprintf(dir, sizeof dir, "%s/state", fx->dir);
	assert_int_equal(stat(dir, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0700);
	char *text = scratch_read_file(fx->cache);
	assert_non_null(text);
	assert_non_null(strstr(text, "tok-1-abcdef"));
	assert_non_null(strstr(text, GOOD_USER));
	assert_null(strstr(text, "p&ss"));
	free(text);
	/* no temporary file left behind */
	char tmp[200];
	snprintf(tmp, sizeof tmp, "%s.tmp.%ld", fx->cache, (long)getpid());
	assert_int_equal(access(tmp, F_OK), -1);
	auth_token_free(token);
}

static void test_cached_token_is_reused(void **state)
{
	fixture *fx = *state;
	time_t e1, e2;
	char *t1 = get_ok(fx, false, AUTH_FROM_LOGIN, &e1);
	char *t2 = get_ok(fx, false, AUTH_FROM_CACHE, &e2);
	assert_string_equal(t1, t2);
	assert_int_equal((long long)e1, (long long)e2);
	assert_int_equal(logins(), 1);
	auth_token_free(t1);
	auth_token_free(t2);
}

static void test_renews_within_a_day_of_expiry(void **state)
{
	fixture *fx = *state;
	time_t expires;
	/* a token living an hour is due for renewal as soon as it is cached */
	srv.ttl = 3600;
	char *t1 = get_ok(fx, false, AUTH_FROM_LOGIN, &expires);
	char *t2 = get_ok(fx, false, AUTH_FROM_LOGIN, &expires);
	assert_string_not_equal(t1, t2);
	assert_int_equal(logins(), 2);
	auth_token_free(t1);
	auth_token_free(t2);
	/* a cached token a day and a minute from expiry is still used */
	write_cache(fx, GOOD_USER, "cached-tok-777", (long long)time(NULL) + 86400 + 60);
	char *t3 = get_ok(fx, false, AUTH_FROM_CACHE, &expires);
	assert_string_equal(t3, "cached-tok-777");
	auth_token_free(t3);
	/* and one a minute short of a day is not */
	write_cache(fx, GOOD_USER, "cached-tok-778", (long long)time(NULL) + 86400 - 60);
	char *t4 = get_ok(fx, false, AUTH_FROM_LOGIN, &expires);
	assert_string_equal(t4, "tok-3-abcdef");
	auth_token_free(t4);
}

static void test_expired_cache_is_renewed(void **state)
{
	fixture *fx = *state;
	time_t expires;
	write_cache(fx, GOOD_USER, "old-tok-1", (long long)time(NULL) - 10);
	char *token = get_ok(fx, false, AUTH_FROM_LOGIN, &expires);
	assert_string_equal(token, "tok-1-abcdef");
	auth_token_free(token);
	/* the renewed token replaced the expired one in the cache */
	char *text = scratch_read_file(fx->cache);
	assert_non_null(strstr(text, "tok-1-abcdef"));
	assert_null(strstr(text, "old-tok-1"));
	free(text);
}

static void test_force_renew_ignores_a_good_cache(void **state)
{
	fixture *fx = *state;
	time_t expires;
	write_cache(fx, GOOD_USER, "good-but-rejected", (long long)time(NULL) + 1000000);
	char *token = get_ok(fx, true, AUTH_FROM_LOGIN, &expires);
	assert_string_equal(token, "tok-1-abcdef");
	auth_token_free(token);
}

static void test_cache_of_another_user_is_ignored(void **state)
{
	fixture *fx = *state;
	time_t expires;
	write_cache(fx, "someone@else.com", "their-tok", (long long)time(NULL) + 1000000);
	char *token = get_ok(fx, false, AUTH_FROM_LOGIN, &expires);
	assert_string_equal(token, "tok-1-abcdef");
	auth_token_free(token);
	/* a garbled cache is ignored too */
	int fd = open(fx->cache, O_WRONLY | O_TRUNC);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, "{\"access_tok", 12), 12);
	close(fd);
	token = get_ok(fx, false, AUTH_FROM_LOGIN, &expires);
	assert_string_equal(token, "tok-2-abcdef");
	auth_token_free(token);
}

static void test_wrong_password_is_rejected(void **state)
{
	fixture *fx = *state;
	char *token = (char *)"sentinel";
	time_t expires;
	char err[256];
	fx->opts.password = "wrong-pw-31337";
	assert_int_equal(auth_get_token(&fx->opts, false, &token, &expires, NULL, err, sizeof err), AUTH_REJECTED);
	assert_null(token);
	assert_non_null(strstr(err, "the API rejected the username or password"));
	assert_non_null(strstr(err, GOOD_USER));
	assert_null(strstr(err, "wrong-pw-31337"));
	assert_int_equal(access(fx->cache, F_OK), -1);
	/* a 401 from the token endpoint means the same */
	use_path(fx, "/forbidden");
	assert_int_equal(auth_get_token(&fx->opts, false, &token, &expires, NULL, err, sizeof err), AUTH_REJECTED);
}

static void expect_failure(fixture *fx, const char *path, const char *want)
{
	char *token = NULL;
	time_t expires;
	char err[256];
	use_path(fx, path);
	assert_int_equal(auth_get_token(&fx->opts, false, &token, &expires, NULL, err, sizeof err), AUTH_FAILED);
	assert_null(token);
	if (!strstr(err, want))
		fail_msg("%s: got \"%s\", want it to contain \"%s\"", path, err, want);
	assert_int_equal(access(fx->cache, F_OK), -1);
}

static void test_malformed_answers(void **state)
{
	fixture *fx = *state;
	expect_failure(fx, "/not-json", "not a JSON object");
	expect_failure(fx, "/no-token", "without a usable access_token");
	expect_failure(fx, "/no-expiry", "without a usable expires_in");
	expect_failure(fx, "/spaced-token", "without a usable access_token");
	expect_failure(fx, "/nowhere", "answered HTTP 404");
	/* expires_in as a string of digits is accepted */
	time_t expires;
	use_path(fx, "/string-expiry");
	char *token = get_ok(fx, false, AUTH_FROM_LOGIN, &expires);
	assert_string_equal(token, "abc-123");
	assert_true(expires >= time(NULL) + 1209500);
	auth_token_free(token);
}

static void test_retries_a_server_error(void **state)
{
	fixture *fx = *state;
	time_t expires;
	use_path(fx, "/flaky");
	fx->opts.max_retries = 1;
	char *token = get_ok(fx, false, AUTH_FROM_LOGIN, &expires);
	assert_string_equal(token, "tok-1-abcdef");
	assert_int_equal(srv.flaky_hits, 2);
	auth_token_free(token);
}

/* A 429's Retry-After is honoured (2 s, where the backoff alone would
 * wait 0.5 s). */
static void test_login_honours_retry_after(void **state)
{
	fixture *fx = *state;
	time_t expires;
	use_path(fx, "/throttled");
	fx->opts.max_retries = 1;
	char *token = get_ok(fx, false, AUTH_FROM_LOGIN, &expires);
	assert_string_equal(token, "tok-1-abcdef");
	pthread_mutex_lock(&srv.mu);
	int hits = srv.flaky_hits;
	int64_t gap = srv.hit_at_ms[2] - srv.hit_at_ms[1];
	pthread_mutex_unlock(&srv.mu);
	assert_int_equal(hits, 2);
	if (gap < 1900)
		fail_msg("the second login came %lld ms after the 429, before its Retry-After of 2 s", (long long)gap);
	auth_token_free(token);
}

/* timeout_ms is the longest silence of the login, not its longest
 * duration: a token answer that keeps coming for over 2 s passes a 1 s
 * timeout (which, as a limit on the whole login, it failed before). */
static void test_timeout_allows_a_slow_steady_answer(void **state)
{
	fixture *fx = *state;
	time_t expires;
	use_path(fx, "/drip");
	fx->opts.timeout_ms = 1000;
	char *token = get_ok(fx, false, AUTH_FROM_LOGIN, &expires);
	assert_string_equal(token, "tok-drip-abcdef");
	auth_token_free(token);
}

/* An answer that trickles on without a pause long enough for the silence
 * timeout still ends the login, at 10 x timeout_ms (3 s here), long before
 * the server would finish it (30 s, with no token in it). */
static void test_a_trickling_answer_still_times_out(void **state)
{
	fixture *fx = *state;
	char *token = NULL;
	time_t expires;
	char err[256];
	use_path(fx, "/trickle");
	fx->opts.timeout_ms = 300;
	assert_int_equal(auth_get_token(&fx->opts, false, &token, &expires, NULL, err, sizeof err), AUTH_FAILED);
	assert_null(token);
	if (!strstr(err, "cannot reach the token endpoint") || !strstr(err, "timed out"))
		fail_msg("want a timeout, got \"%s\"", err);
}

static atomic_int cancel_flag;
static atomic_bool stop_flag;

static void *set_flags_soon(void *arg)
{
	(void)arg;
	usleep(300 * 1000);
	atomic_store(&cancel_flag, 1);
	atomic_store(&stop_flag, true);
	return NULL;
}

/* A login against an endpoint that never answers, with a 20 s timeout and
 * three retries, while both flags are set 300 ms in: it must end at the
 * flag fx->opts watches (cancel, stop) with AUTH_CANCELLED and want_err. */
static void check_flag_ends_a_login(fixture *fx, const char *want_err)
{
	char *token = NULL;
	time_t expires;
	char err[256];
	int port;
	int fd = scratch_port(&port, true); /* never answers */
	pthread_t setter;
	snprintf(fx->url, sizeof fx->url, "http://127.0.0.1:%d/token", port);
	fx->opts.timeout_ms = 20000;
	fx->opts.max_retries = 3;
	atomic_store(&cancel_flag, 0);
	atomic_store(&stop_flag, false);
	assert_int_equal(pthread_create(&setter, NULL, set_flags_soon, NULL), 0);
	int64_t start = now_ms();
	auth_status st = auth_get_token(&fx->opts, false, &token, &expires, NULL, err, sizeof err);
	int64_t took = now_ms() - start;
	pthread_join(setter, NULL);
	close(fd);
	assert_int_equal(st, AUTH_CANCELLED);
	/* not a speed figure: without the flag it takes the whole 20 s
	 * timeout (times four attempts) */
	if (took >= 10000)
		fail_msg("the login gave up %lld ms after it began, not at the flag", (long long)took);
	assert_null(token);
	assert_string_equal(err, want_err);
	assert_int_equal(access(fx->cache, F_OK), -1);
}

/* A signal during a login (the flag a handler sets) ends it with
 * AUTH_CANCELLED instead of waiting out its timeout and retries. */
static void test_signal_cancels_a_login(void **state)
{
	fixture *fx = *state;
	fx->opts.cancel = &cancel_flag;
	check_flag_ends_a_login(fx, "cancelled by a signal while logging in");
}

/* So does the run's own stop (a failed batch, no signal): a renewal login
 * gives up then too. */
static void test_run_stop_ends_a_login(void **state)
{
	fixture *fx = *state;
	fx->opts.stop = &stop_flag;
	check_flag_ends_a_login(fx, "the run stopped while logging in");
}

static void test_unreachable_endpoint(void **state)
{
	fixture *fx = *state;
	char *token = NULL;
	time_t expires;
	char err[256];
	snprintf(fx->url, sizeof fx->url, "http://127.0.0.1:1/token");
	assert_int_equal(auth_get_token(&fx->opts, false, &token, &expires, NULL, err, sizeof err), AUTH_FAILED);
	assert_non_null(strstr(err, "cannot reach the token endpoint"));
	assert_null(token);
}

static void test_unwritable_cache_still_gives_a_token(void **state)
{
	fixture *fx = *state;
	time_t expires;
	/* the cache's directory is a regular file */
	char blocker[128];
	snprintf(blocker, sizeof blocker, "%s/state", fx->dir);
	int fd = open(blocker, O_WRONLY | O_CREAT, 0600);
	assert_true(fd >= 0);
	close(fd);
	char *token = get_ok(fx, false, AUTH_FROM_LOGIN, &expires);
	assert_string_equal(token, "tok-1-abcdef");
	auth_token_free(token);
	/* and without a cache at all */
	fx->opts.cache_path = NULL;
	token = get_ok(fx, false, AUTH_FROM_LOGIN, &expires);
	auth_token_free(token);
	assert_int_equal(logins(), 2);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_login_posts_the_encoded_form, setup, teardown),
		cmocka_unit_test_setup_teardown(test_cache_file_mode_and_contents, setup, teardown),
		cmocka_unit_test_setup_teardown(test_cached_token_is_reused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_renews_within_a_day_of_expiry, setup, teardown),
		cmocka_unit_test_setup_teardown(test_expired_cache_is_renewed, setup, teardown),
		cmocka_unit_test_setup_teardown(test_force_renew_ignores_a_good_cache, setup, teardown),
		cmocka_unit_test_setup_teardown(test_cache_of_another_user_is_ignored, setup, teardown),
		cmocka_unit_test_setup_teardown(test_wrong_password_is_rejected, setup, teardown),
		cmocka_unit_test_setup_teardown(test_malformed_answers, setup, teardown),
		cmocka_unit_test_setup_teardown(test_retries_a_server_error, setup, teardown),
		cmocka_unit_test_setup_teardown(test_login_honours_retry_after, setup, teardown),
		cmocka_unit_test_setup_teardown(test_timeout_allows_a_slow_steady_answer, setup, teardown),
		cmocka_unit_test_setup_teardown(test_a_trickling_answer_still_times_out, setup, teardown),
		cmocka_unit_test_setup_teardown(test_signal_cancels_a_login, setup, teardown),
		cmocka_unit_test_setup_teardown(test_run_stop_ends_a_login, setup, teardown),
		cmocka_unit_test_setup_teardown(test_unreachable_endpoint, setup, teardown),
		cmocka_unit_test_setup_teardown(test_unwritable_cache_still_gives_a_token, setup, teardown),
	};
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
