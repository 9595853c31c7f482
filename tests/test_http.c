/* test_http.c — the fetch engine against a real HTTP server (libmicrohttpd)
 * running inside the test process on 127.0.0.1, with scripted behaviour per
 * path. Covers src/http.c through http.h, with the helpers it lends the
 * login (protocols, Retry-After). Not covered: a body that grows
 * past the 256 MiB cap without announcing its size, and allocation failures
 * (too slow / not producible by a real server). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "http.h"
#include "scratch.h"

#define TEST_TOKEN "s3cr3t-token-4711"
#define MAX_PATHS 32
#define MAX_HITS 16
#define MAX_RESULTS 64

/* ---- the scripted server ---------------------------------------------- */

typedef struct path_hits {
	char path[64];
	int hits;
	int64_t at_ms[MAX_HITS];
} path_hits;

typedef struct server {
	struct MHD_Daemon *daemon;
	int port;
	pthread_mutex_t mu;
	path_hits paths[MAX_PATHS];
	int current; /* requests inside /sleep50 now */
	int peak;
	int connections;
	char last_auth[128];
	char last_agent[128];
	char last_accept[128];
} server;

static server srv = { .mu = PTHREAD_MUTEX_INITIALIZER };

static int64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void copy_header(struct MHD_Connection *conn, const char *name, char *dst, size_t dstlen)
{
	const char *value = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, name);
	snprintf(dst, dstlen, "%s", value ? value : "");
}

/* Records a hit on url; returns its number, 1 for the first. */
static int server_hit(struct MHD_Connection *conn, const char *url)
{
	int n = 0;

	pthread_mutex_lock(&srv.mu);
	copy_header(conn, "Authorization", srv.last_auth, sizeof srv.last_auth);
	copy_header(conn, "User-Agent", srv.last_agent, sizeof srv.last_agent);
	copy_header(conn, "Accept", srv.last_accept, sizeof srv.last_accept);
	for (int i = 0; i < MAX_PATHS; i++) {
		path_hits *p = &srv.paths[i];
		if (p->path[0] && strcmp(p->path, url) != 0)
			continue;
		snprintf(p->path, sizeof p->path, "%s", url);
		if (p->hits < MAX_HITS)
			p->at_ms[p->hits] = now_ms();
		n = ++p->hits;
		break;
	}
	pthread_mutex_unlock(&srv.mu);
	return n;
}

static path_hits server_hits(const char *url)
{
	path_hits out = { .hits = 0 };

	pthread_mutex_lock(&srv.mu);
	for (int i = 0; i < MAX_PATHS; i++)
		if (strcmp(srv.paths[i].path, url) == 0)
			out = srv.paths[i];
	pthread_mutex_unlock(&srv.mu);
	return out;
}

static enum MHD_Result reply(struct MHD_Connection *conn, unsigned status, const char *body,
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

static enum MHD_Result sleep50(struct MHD_Connection *conn)
{
	pthread_mutex_lock(&srv.mu);
	if (++srv.current > srv.peak)
		srv.peak = srv.current;
	pthread_mutex_unlock(&srv.mu);
	usleep(50 * 1000);
	pthread_mutex_lock(&srv.mu);
	srv.current--;
	pthread_mutex_unlock(&srv.mu);
	return reply(conn, 200, "{\"slept\":50}", NULL, NULL);
}

/* A 200 whose body reader produces (size: MHD_SIZE_UNKNOWN for chunked). */
static enum MHD_Result streamed(struct MHD_Connection *conn, uint64_t size, size_t block,
				MHD_ContentReaderCallback reader)
{
	struct MHD_Response *resp = MHD_create_response_from_callback(size, block, reader, NULL, NULL);
	enum MHD_Result ret;

	if (!resp)
		return MHD_NO;
	ret = MHD_queue_response(conn, 200, resp);
	MHD_destroy_response(resp);
	return ret;
}

/* A body sent in DRIP_PIECES pieces DRIP_GAP_MS apart: a slow transfer
 * that never goes quiet for long. */
#define DRIP_PIECES 6
#define DRIP_GAP_MS 400

static ssize_t drip_piece(void *cls, uint64_t pos, char *buf, size_t max)
{
	static const char body[] = "[1,2,3,4,5,6]";
	uint64_t piece = pos / 2;

	(void)cls;
	if (piece >= DRIP_PIECES)
		return MHD_CONTENT_READER_END_OF_STREAM;
	if (piece > 0)
		usleep(DRIP_GAP_MS * 1000); /* thread per connection: only this one waits */
	if (max < 2)
		return 0;
	memcpy(buf, body + pos, piece == DRIP_PIECES - 1 ? 3 : 2);
	return piece == DRIP_PIECES - 1 ? 3 : 2;
}

static enum MHD_Result drip(struct MHD_Connection *conn)
{
	return streamed(conn, MHD_SIZE_UNKNOWN, 16, drip_piece);
}

/* A 40 KiB body, its second half 300 ms after its first: transfers of it
 * overlap, each holding a 64 KiB buffer (16 KiB doubled) for a while. */
#define WIDE_BODY (40 << 10)

static ssize_t wide_piece(void *cls, uint64_t pos, char *buf, size_t max)
{
	size_t n = WIDE_BODY - pos < max ? WIDE_BODY - pos : max;

	(void)cls;
	if (pos >= WIDE_BODY)
		return MHD_CONTENT_READER_END_OF_STREAM;
	if (pos >= WIDE_BODY / 2 && pos < WIDE_BODY / 2 + max)
		usleep(300 * 1000); /* thread per connection: only this one waits */
	if (pos < WIDE_BODY / 2 && pos + n > WIDE_BODY / 2)
		n = WIDE_BODY / 2 - pos;
	memset(buf, 'w', n);
	return (ssize_t)n;
}

static enum MHD_Result wide(struct MHD_Connection *conn)
{
	return streamed(conn, MHD_SIZE_UNKNOWN, 4096, wide_piece);
}

/* A body announced as 300 MiB (over the engine's 256 MiB cap); how much
 * of it the server was asked for is counted in huge_sent. */
#define HUGE_BODY ((uint64_t)300 << 20)
static uint64_t huge_sent;

static ssize_t huge_piece(void *cls, uint64_t pos, char *buf, size_t max)
{
	size_t n = max < 4096 ? max : 4096;

	(void)cls;
	if (pos + n > HUGE_BODY)
		n = (size_t)(HUGE_BODY - pos);
	memset(buf, ' ', n);
	pthread_mutex_lock(&srv.mu);
	huge_sent = pos + n;
	pthread_mutex_unlock(&srv.mu);
	return (ssize_t)n;
}

static enum MHD_Result huge(struct MHD_Connection *conn)
{
	return streamed(conn, HUGE_BODY, 4096, huge_piece);
}

static enum MHD_Result throttle_date(struct MHD_Connection *conn, int hit)
{
	char date[64];
	time_t when = time(NULL) + 2;
	struct tm tm;

	if (hit > 1)
		return reply(conn, 200, "{}", NULL, NULL);
	gmtime_r(&when, &tm);
	strftime(date, sizeof date, "%a, %d %b %Y %H:%M:%S GMT", &tm);
	return reply(conn, 503, "{}", "Retry-After", date);
}

static enum MHD_Result handler(void *cls, struct MHD_Connection *conn, const char *url, const char *method,
                               const char *version, const char *upload_data, size_t *upload_data_size,
                               void **con_cls)
{
	int hit;

	(void)cls, (void)method, (void)version, (void)upload_data, (void)upload_data_size;
	/* answer on the second call: a response queued on the first one makes
	 * MHD close the connection, and keep-alive is part of what we test */
	if (*con_cls == NULL) {
		*con_cls = conn;
		return MHD_YES;
	}
	hit = server_hit(conn, url);
	if (strcmp(url, "/ok") == 0)
		return reply(conn, 200, "{\"ok\":true}", NULL, NULL);
	if (strcmp(url, "/flaky") == 0)
		return hit <= 2 ? reply(conn, 500, "{}", NULL, NULL) : reply(conn, 200, "{\"n\":3}", NULL, NULL);
	if (strcmp(url, "/throttle") == 0)
		return hit == 1 ? reply(conn, 429, "{}", "Retry-After", "1") : reply(conn, 200, "{}", NULL, NULL);
	if (strcmp(url, "/throttle-date") == 0)
		return throttle_date(conn, hit);
	if (strcmp(url, "/throttle-long") == 0)
		return hit == 1 ? reply(conn, 429, "{}", "Retry-After", "3600") : reply(conn, 200, "{}", NULL, NULL);
	if (strcmp(url, "/gone") == 0)
		return reply(conn, 404, "{\"error\":\"gone\"}", NULL, NULL);
	if (strcmp(url, "/auth") == 0)
		return reply(conn, 401, "{}", NULL, NULL);
	if (strcmp(url, "/auth-once") == 0)
		return hit == 1 ? reply(conn, 401, "{}", NULL, NULL) : reply(conn, 200, "{\"n\":2}", NULL, NULL);
	if (strcmp(url, "/forbidden") == 0)
		return reply(conn, 403, "{}", NULL, NULL);
	if (strcmp(url, "/bad") == 0)
		return reply(conn, 400, "{\"error\":\"bad\"}", NULL, NULL);
	if (strcmp(url, "/moved") == 0)
		return reply(conn, 302, "{}", "Location", "/ok");
	if (strcmp(url, "/always500") == 0)
		return reply(conn, 500, "{}", NULL, NULL);
	if (strcmp(url, "/slow") == 0) {
		usleep(1800 * 1000);
		return reply(conn, 200, "{}", NULL, NULL);
	}
	if (strcmp(url, "/drip") == 0)
		return drip(conn);
	if (strcmp(url, "/huge") == 0)
		return huge(conn);
	if (strcmp(url, "/wide") == 0)
		return wide(conn);
	if (strcmp(url, "/sleep50") == 0)
		return sleep50(conn);
	return reply(conn, 404, "{}", NULL, NULL);
}

static void on_connection(void *cls, struct MHD_Connection *conn, void **socket_context,
                          enum MHD_ConnectionNotificationCode code)
{
	(void)cls, (void)conn, (void)socket_context;
	if (code != MHD_CONNECTION_NOTIFY_STARTED)
		return;
	pthread_mutex_lock(&srv.mu);
	srv.connections++;
	pthread_mutex_unlock(&srv.mu);
}

static int server_start(void **state)
{
	struct sockaddr_in addr = { .sin_family = AF_INET, .sin_port = 0 };
	const union MHD_DaemonInfo *info;

	(void)state;
	addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	srv.daemon = MHD_start_daemon(MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD, 0, NULL,
	                              NULL, handler, NULL, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&addr,
	                              MHD_OPTION_NOTIFY_CONNECTION, on_connection, NULL, MHD_OPTION_END);
	if (!srv.daemon)
		return -1;
	info = MHD_get_daemon_info(srv.daemon, MHD_DAEMON_INFO_BIND_PORT);
	if (!info || info->port == 0)
		return -1;
	srv.port = info->port;
	return 0;
}

static int server_stop(void **state)
{
	(void)state;
	MHD_stop_daemon(srv.daemon);
	return 0;
}

/* ---- the client side -------------------------------------------------- */

typedef struct result {
	int calls;
	int reject; /* return HTTP_CB_RETRY this many more times; < 0: always */
	int resend; /* return HTTP_CB_RESEND on HTTP_AUTH this many more times; < 0: always */
	http_outcome outcome;
	long status;
	int attempts;
	int retries;
	bool had_error;
	char error[512];
	char body[256];
	size_t body_len;
	char path[64];
} result;

static result results[MAX_RESULTS];
static int total_calls;
static bool token_leaked;

static http_cb_result on_done(void *cb_ctx, void *user, const http_response *resp)
{
	result *r = user;

	assert_ptr_equal(cb_ctx, results);
	total_calls++;
	r->calls++;
	r->outcome = resp->outcome;
	r->status = resp->status;
	r->attempts = resp->attempts;
	r->retries = resp->retries;
	r->had_error = resp->error != NULL;
	snprintf(r->error, sizeof r->error, "%s", resp->error ? resp->error : "");
	snprintf(r->body, sizeof r->body, "%s", resp->body);
	r->body_len = resp->body_len;
	snprintf(r->path, sizeof r->path, "%s", resp->path);
	assert_int_equal(resp->body[resp->body_len], '\0');
	if (resp->error && (strstr(resp->error, TEST_TOKEN) || strstr(resp->error, "newtoken-abc")))
		token_leaked = true;
	if (resp->outcome == HTTP_AUTH && r->resend != 0) {
		if (r->resend > 0)
			r->resend--;
		return HTTP_CB_RESEND;
	}
	if (resp->outcome != HTTP_FAILED && r->reject != 0) {
		if (r->reject > 0)
			r->reject--;
		return HTTP_CB_RETRY;
	}
	return HTTP_CB_DONE;
}

static int reset(void **state)
{
	(void)state;
	pthread_mutex_lock(&srv.mu);
	memset(srv.paths, 0, sizeof srv.paths);
	srv.current = 0;
	srv.peak = 0;
	srv.connections = 0;
	srv.last_auth[0] = '\0';
	pthread_mutex_unlock(&srv.mu);
	memset(results, 0, sizeof results);
	total_calls = 0;
	token_leaked = false;
	return 0;
}

static http_opts test_opts(int concurrency, int max_retries, int timeout_ms)
{
	static char base[64];
	http_opts opts = {
		.base_url = base,
		.token = TEST_TOKEN,
		.concurrency = concurrency,
		.rate_limit = 0,
		.timeout_ms = timeout_ms,
		.max_retries = max_retries,
		.seed = 42,
		.retry_base_ms = 5,
		.retry_cap_ms = 50,
		.retry_after_cap_ms = 0,
	};
	snprintf(base, sizeof base, "http://127.0.0.1:%d/", srv.port);
	return opts;
}

static http_engine *engine_with(const http_opts *opts)
{
	char err[256] = "";
	http_engine *e = http_new(opts, on_done, results, err, sizeof err);

	assert_non_null(e);
	assert_string_equal(err, "");
	return e;
}

static http_engine *engine(int concurrency, int max_retries, int timeout_ms)
{
	http_opts opts = test_opts(concurrency, max_retries, timeout_ms);
	return engine_with(&opts);
}

static void submit(http_engine *e, const char *path, int slot)
{
	assert_int_equal(http_submit(e, path, &results[slot]), 0);
}

/* Runs the engine until nothing is pending (at most limit_ms). */
static void drive(http_engine *e, int limit_ms)
{
	int64_t end = now_ms() + limit_ms;

	while (http_pending(e) > 0 && now_ms() < end)
		assert_true(http_run(e, 100) >= 0);
	assert_int_equal(http_pending(e), 0);
}

static http_stats stats_of(const http_engine *e)
{
	http_stats st;
	http_get_stats(e, &st);
	return st;
}

/* ---- tests ------------------------------------------------------------ */

static void test_ok_delivers_body_and_headers(void **state)
{
	http_engine *e = engine(4, 3, 2000);
	char auth[128];

	(void)state;
	submit(e, "ok", 0);
	drive(e, 5000);
	assert_int_equal(results[0].calls, 1);
	assert_int_equal(results[0].outcome, HTTP_OK);
	assert_int_equal(results[0].status, 200);
	assert_int_equal(results[0].attempts, 1);
	assert_false(results[0].had_error);
	assert_string_equal(results[0].body, "{\"ok\":true}");
	assert_int_equal(results[0].body_len, strlen("{\"ok\":true}"));
	assert_string_equal(results[0].path, "ok");
	snprintf(auth, sizeof auth, "Bearer %s", TEST_TOKEN);
	assert_string_equal(srv.last_auth, auth);
	assert_string_equal(srv.last_agent, "bloomsync/0.1");
	assert_string_equal(srv.last_accept, "application/json");
	assert_int_equal(stats_of(e).requests, 1);
	assert_int_equal(stats_of(e).retries, 0);
	http_free(e);
}

static void test_flaky_is_retried(void **state)
{
	http_engine *e = engine(4, 5, 2000);
	http_stats st;

	(void)state;
	submit(e, "/flaky", 0);
	drive(e, 5000);
	assert_int_equal(results[0].calls, 1);
	assert_int_equal(results[0].outcome, HTTP_OK);
	assert_int_equal(results[0].attempts, 3);
	assert_int_equal(results[0].retries, 2);
	assert_string_equal(results[0].body, "{\"n\":3}");
	assert_int_equal(server_hits("/flaky").hits, 3);
	st = stats_of(e);
	assert_int_equal(st.requests, 3);
	assert_int_equal(st.retries, 2);
	assert_int_equal(st.server_errors, 2);
	assert_int_equal(st.throttled, 0);
	http_free(e);
}

static void test_429_honours_retry_after(void **state)
{
	http_engine *e = engine(4, 3, 2000);
	path_hits hits;

	(void)state;
	submit(e, "/throttle", 0);
	drive(e, 10000);
	assert_int_equal(results[0].outcome, HTTP_OK);
	assert_int_equal(results[0].attempts, 2);
	hits = server_hits("/throttle");
	assert_int_equal(hits.hits, 2);
	assert_true(hits.at_ms[1] - hits.at_ms[0] >= 900);
	assert_int_equal(stats_of(e).throttled, 1);
	http_free(e);
}

static void test_503_retry_after_http_date(void **state)
{
	http_engine *e = engine(4, 3, 2000);
	path_hits hits;

	(void)state;
	submit(e, "/throttle-date", 0);
	drive(e, 10000);
	assert_int_equal(results[0].outcome, HTTP_OK);
	hits = server_hits("/throttle-date");
	assert_int_equal(hits.hits, 2);
	assert_true(hits.at_ms[1] - hits.at_ms[0] >= 900);
	http_free(e);
}

static void test_retry_after_is_capped(void **state)
{
	http_opts opts = test_opts(2, 3, 2000);
	http_engine *e;
	int64_t start = now_ms();

	(void)state;
	opts.retry_after_cap_ms = 50;
	e = engine_with(&opts);
	submit(e, "/throttle-long", 0);
	drive(e, 5000); /* the server asked for an hour */
	assert_int_equal(results[0].outcome, HTTP_OK);
	assert_int_equal(results[0].attempts, 2);
	assert_true(now_ms() - start < 5000);
	http_free(e);
}

static void test_404_not_found(void **state)
{
	http_engine *e = engine(4, 3, 2000);

	(void)state;
	submit(e, "/gone", 0);
	drive(e, 5000);
	assert_int_equal(results[0].outcome, HTTP_NOT_FOUND);
	assert_int_equal(results[0].status, 404);
	assert_int_equal(results[0].attempts, 1);
	assert_string_equal(results[0].body, "{\"error\":\"gone\"}");
	assert_int_equal(server_hits("/gone").hits, 1);
	http_free(e);
}

static void test_401_403_are_auth(void **state)
{
	http_engine *e = engine(4, 3, 2000);

	(void)state;
	submit(e, "/auth", 0);
	submit(e, "/forbidden", 1);
	drive(e, 5000);
	assert_int_equal(results[0].outcome, HTTP_AUTH);
	assert_int_equal(results[0].status, 401);
	assert_int_equal(results[0].attempts, 1);
	assert_int_equal(results[1].outcome, HTTP_AUTH);
	assert_int_equal(results[1].status, 403);
	assert_int_equal(server_hits("/auth").hits, 1);
	assert_int_equal(server_hits("/forbidden").hits, 1);
	http_free(e);
}

static void test_400_fails_without_retry(void **state)
{
	http_engine *e = engine(4, 3, 2000);

	(void)state;
	submit(e, "/bad", 0);
	submit(e, "/moved", 1);
	drive(e, 5000);
	assert_int_equal(results[0].calls, 1);
	assert_int_equal(results[0].outcome, HTTP_FAILED);
	assert_int_equal(results[0].status, 400);
	assert_int_equal(results[0].attempts, 1);
	assert_string_equal(results[0].error, "HTTP 400");
	assert_string_equal(results[0].body, "{\"error\":\"bad\"}");
	assert_int_equal(server_hits("/bad").hits, 1);
	/* redirects are not followed */
	assert_int_equal(results[1].outcome, HTTP_FAILED);
	assert_int_equal(results[1].status, 302);
	assert_int_equal(server_hits("/moved").hits, 1);
	assert_int_equal(server_hits("/ok").hits, 0);
	http_free(e);
}

static void test_500_exhausts_retries(void **state)
{
	http_engine *e = engine(4, 2, 2000);

	(void)state;
	submit(e, "/always500", 0);
	drive(e, 5000);
	assert_int_equal(results[0].calls, 1);
	assert_int_equal(results[0].outcome, HTTP_FAILED);
	assert_int_equal(results[0].status, 500);
	assert_int_equal(results[0].attempts, 3);
	assert_string_equal(results[0].error, "HTTP 500 after 3 attempts");
	assert_int_equal(server_hits("/always500").hits, 3);
	assert_int_equal(stats_of(e).retries, 2);
	http_free(e);
}

static void test_timeout_is_retried_then_fails(void **state)
{
	http_engine *e = engine(2, 1, 1000);

	(void)state;
	submit(e, "/slow", 0);
	drive(e, 5000);
	assert_int_equal(results[0].calls, 1);
	assert_int_equal(results[0].outcome, HTTP_FAILED);
	assert_int_equal(results[0].status, 0);
	assert_int_equal(results[0].attempts, 2);
	assert_non_null(strstr(results[0].error, "timeout after 2 attempts: "));
	assert_int_equal(server_hits("/slow").hits, 2);
	assert_int_equal(stats_of(e).transport_errors, 2);
	http_free(e);
}

/* timeout_ms is the longest silence, not the longest transfer: a body
 * that keeps coming for 2 s passes a 1 s timeout. */
static void test_timeout_allows_a_slow_steady_body(void **state)
{
	http_engine *e = engine(2, 0, 1000);

	(void)state;
	submit(e, "/drip", 0);
	drive(e, 8000);
	assert_int_equal(results[0].calls, 1);
	assert_string_equal(results[0].error, "");
	assert_int_equal(results[0].outcome, HTTP_OK);
	assert_string_equal(results[0].body, "[1,2,3,4,5,6]");
	assert_int_equal(results[0].attempts, 1);
	http_free(e);
}

/* All body buffers together stay within body_budget, however many
 * transfers overlap: one that would pass it is retried later, and every
 * body arrives whole in the end; waiting for room is no failure, so it
 * uses up no retry (none is allowed here). */
static void test_bodies_stay_within_the_budget(void **state)
{
	http_opts opts = test_opts(4, 0, 5000);
	http_engine *e;
	http_stats st;

	(void)state;
	opts.body_budget = 128 << 10; /* two 64 KiB buffers: not four */
	opts.retry_base_ms = 50;
	opts.retry_cap_ms = 200;
	e = engine_with(&opts);
	for (int i = 0; i < 4; i++)
		submit(e, "/wide", i);
	drive(e, 20000);
	st = stats_of(e);
	for (int i = 0; i < 4; i++) {
		if (results[i].outcome != HTTP_OK)
			fail_msg("body %d: %s after %d attempts", i, results[i].error, results[i].attempts);
		assert_int_equal(results[i].outcome, HTTP_OK);
		assert_int_equal(results[i].body_len, WIDE_BODY);
	}
	if (st.peak_body_bytes > opts.body_budget)
		fail_msg("body buffers held %zu bytes at once, over the budget of %zu", st.peak_body_bytes,
			 opts.body_budget);
	/* four overlapping bodies did not fit at once: some were asked for
	 * again, as waits for room, not as retries */
	assert_true(server_hits("/wide").hits > 4);
	assert_int_equal(st.retries, 0);
	for (int i = 0; i < 4; i++)
		assert_int_equal(results[i].retries, 0);
	http_free(e);
}

/* A body the budget cannot hold even alone fails as soon as it passes
 * the budget, whatever the other transfers hold: it would not fit the next
 * time either. Beside another body, it may wait for room first (it cannot
 * know its size before it grows), but those waits are no retries. */
static void test_body_over_the_whole_budget_fails_at_once(void **state)
{
	(void)state;
	for (int beside = 0; beside <= 1; beside++) {
		http_opts opts = test_opts(2, 3, 5000);
		opts.body_budget = 32 << 10; /* the 40 KiB body needs a 64 KiB buffer */
		http_engine *e = engine_with(&opts);
		reset(NULL);
		if (beside)
			submit(e, "/drip", 1); /* slow, its slot holding a buffer meanwhile */
		submit(e, "/wide", 0);
		drive(e, 10000);
		assert_int_equal(results[0].outcome, HTTP_FAILED);
		assert_string_equal(results[0].error, "response too large");
		assert_int_equal(results[0].retries, 0);
		if (!beside) {
			assert_int_equal(results[0].attempts, 1);
			assert_int_equal(server_hits("/wide").hits, 1);
		}
		assert_int_equal(results[1].outcome, beside ? HTTP_OK : 0);
		http_free(e);
	}
}

/* A body announced bigger than the cap fails at once, before it is read,
 * and is not retried: it would be as big the next time. */
static void test_announced_huge_body_fails_unread(void **state)
{
	http_engine *e = engine(2, 3, 5000);
	uint64_t sent;

	(void)state;
	submit(e, "/huge", 0);
	drive(e, 5000);
	assert_int_equal(results[0].outcome, HTTP_FAILED);
	assert_int_equal(results[0].attempts, 1);
	assert_string_equal(results[0].error, "response too large");
	pthread_mutex_lock(&srv.mu);
	sent = huge_sent;
	pthread_mutex_unlock(&srv.mu);
	if (sent > ((uint64_t)16 << 20))
		fail_msg("%llu bytes of the body were sent before it was refused", (unsigned long long)sent);
	http_free(e);
}

static void test_callback_retry_refetches_once(void **state)
{
	http_engine *e = engine(2, 3, 2000);

	(void)state;
	results[0].reject = 1;
	submit(e, "/ok", 0);
	drive(e, 5000);
	assert_int_equal(results[0].calls, 2);
	assert_int_equal(results[0].outcome, HTTP_OK);
	assert_int_equal(results[0].attempts, 2);
	assert_int_equal(server_hits("/ok").hits, 2);
	assert_int_equal(stats_of(e).retries, 1);
	http_free(e);
}

static void test_callback_retry_until_exhausted(void **state)
{
	http_engine *e = engine(2, 1, 2000);

	(void)state;
	results[0].reject = -1;
	submit(e, "/ok", 0);
	drive(e, 5000);
	/* OK twice (both rejected), then the final HTTP_FAILED with the last body */
	assert_int_equal(results[0].calls, 3);
	assert_int_equal(results[0].outcome, HTTP_FAILED);
	assert_int_equal(results[0].attempts, 2);
	assert_non_null(strstr(results[0].error, "after 2 attempts"));
	assert_string_equal(results[0].body, "{\"ok\":true}");
	assert_int_equal(server_hits("/ok").hits, 2);
	http_free(e);
}

/* A re-send after a token renewal is not a retry: it goes through with
 * max_retries = 0, and counts as an attempt but not as a retry. */
static void test_resend_uses_no_retry(void **state)
{
	http_engine *e = engine(2, 0, 2000);

	(void)state;
	results[0].resend = 1;
	submit(e, "/auth-once", 0);
	drive(e, 5000);
	assert_int_equal(results[0].calls, 2);
	assert_int_equal(results[0].outcome, HTTP_OK);
	assert_string_equal(results[0].body, "{\"n\":2}");
	assert_int_equal(results[0].attempts, 2);
	assert_int_equal(results[0].retries, 0);
	assert_int_equal(stats_of(e).requests, 2);
	assert_int_equal(stats_of(e).retries, 0);
	assert_int_equal(server_hits("/auth-once").hits, 2);
	http_free(e);
}

/* A callback that asks for re-sends for ever gets HTTP_RESENDS_MAX of
 * them, then its retries, then a final failure: never a loop. */
static void test_resends_are_bounded(void **state)
{
	http_engine *e = engine(2, 1, 2000);

	(void)state;
	results[0].resend = -1;
	submit(e, "/auth", 0);
	drive(e, 5000);
	assert_int_equal(results[0].outcome, HTTP_FAILED);
	assert_int_equal(results[0].attempts, 1 + HTTP_RESENDS_MAX + 1);
	assert_string_equal(results[0].error, "HTTP 401 response rejected after 4 attempts");
	assert_int_equal(server_hits("/auth").hits, 1 + HTTP_RESENDS_MAX + 1);
	http_free(e);
}

static void test_concurrency_is_exact(void **state)
{
	http_engine *e = engine(8, 0, 5000);

	(void)state;
	for (int i = 0; i < 40; i++)
		submit(e, "/sleep50", i);
	assert_int_equal(http_pending(e), 40);
	drive(e, 10000);
	for (int i = 0; i < 40; i++)
		assert_int_equal(results[i].outcome, HTTP_OK);
	assert_int_equal(total_calls, 40);
	assert_int_equal(srv.peak, 8);
	assert_int_equal(stats_of(e).peak_inflight, 8);
	assert_int_equal(stats_of(e).requests, 40);
	http_free(e);
}

static void test_connections_are_reused(void **state)
{
	http_engine *e = engine(2, 0, 2000);

	(void)state;
	for (int i = 0; i < 20; i++)
		submit(e, "/ok", i);
	drive(e, 5000);
	assert_int_equal(total_calls, 20);
	assert_int_equal(server_hits("/ok").hits, 20);
	assert_true(srv.connections >= 1);
	assert_true(srv.connections <= 2);
	http_free(e);
}

static void test_rate_limit_spaces_starts(void **state)
{
	http_opts opts = test_opts(4, 0, 2000);
	http_engine *e;
	int64_t start;

	(void)state;
	opts.rate_limit = 50; /* one every 20 ms: >= 380 ms for 20 */
	e = engine_with(&opts);
	start = now_ms();
	for (int i = 0; i < 20; i++)
		submit(e, "/ok", i);
	drive(e, 5000);
	assert_int_equal(total_calls, 20);
	assert_true(now_ms() - start >= 250);
	http_free(e);
}

/* The rate holds from the first request: 10 starts at 10/s span 0.9 s,
 * where a bucket starting full (8 at once) took 0.2 s. */
static void test_rate_limit_holds_in_the_first_second(void **state)
{
	http_opts opts = test_opts(8, 0, 2000);
	http_engine *e;
	path_hits hits;

	(void)state;
	opts.rate_limit = 10;
	e = engine_with(&opts);
	for (int i = 0; i < 10; i++)
		submit(e, "/ok", i);
	drive(e, 5000);
	assert_int_equal(total_calls, 10);
	hits = server_hits("/ok");
	assert_int_equal(hits.hits, 10);
	if (hits.at_ms[9] - hits.at_ms[0] < 800)
		fail_msg("10 requests at 10/s came within %lld ms", (long long)(hits.at_ms[9] - hits.at_ms[0]));
	http_free(e);
}

static int closed_port(void)
{
	int port;
	close(scratch_port(&port, false));
	return port;
}

static void test_token_never_in_errors(void **state)
{
	http_engine *e = engine(4, 1, 200);
	http_opts opts = test_opts(1, 0, 1000);
	char base[64];
	http_engine *refused;

	(void)state;
	submit(e, "/bad", 0);
	submit(e, "/always500", 1);
	submit(e, "/slow", 2);
	submit(e, "/auth", 3);
	drive(e, 5000);
	snprintf(base, sizeof base, "http://127.0.0.1:%d", closed_port());
	opts.base_url = base;
	refused = engine_with(&opts);
	submit(refused, "/ok", 4);
	drive(refused, 5000);
	assert_int_equal(results[4].outcome, HTTP_FAILED);
	assert_int_equal(results[4].status, 0);
	assert_non_null(strstr(results[4].error, "connection failed after 1 attempt"));
	http_free(refused);
	/* a host name holding the token: curl's own error text names the host */
	opts.base_url = "http://" TEST_TOKEN ".invalid";
	refused = engine_with(&opts);
	submit(refused, "/ok", 5);
	drive(refused, 5000);
	assert_int_equal(results[5].outcome, HTTP_FAILED);
	if (strstr(results[5].error, "resolve"))
		assert_non_null(strstr(results[5].error, "[redacted]"));
	for (int i = 0; i < 6; i++) {
		assert_int_equal(results[i].calls, 1);
		assert_true(results[i].had_error == (i != 3)); /* /auth is HTTP_AUTH, no error text */
		assert_null(strstr(results[i].error, TEST_TOKEN));
	}
	assert_false(token_leaked);
	http_free(refused);
	http_free(e);
}

static void test_set_token_applies_to_new_requests(void **state)
{
	http_engine *e = engine(2, 0, 2000);

	(void)state;
	assert_int_equal(http_set_token(e, "newtoken-abc"), 0);
	assert_int_equal(http_set_token(e, "bad\r\ntoken"), -1);
	submit(e, "/ok", 0);
	drive(e, 5000);
	assert_int_equal(results[0].outcome, HTTP_OK);
	assert_string_equal(srv.last_auth, "Bearer newtoken-abc");
	http_free(e);
}

static void *wake_later(void *arg)
{
	usleep(100 * 1000);
	http_wakeup(arg);
	return NULL;
}

static void test_wakeup_interrupts_run(void **state)
{
	http_engine *e = engine(2, 0, 2000);
	pthread_t thread;
	int64_t start = now_ms();

	(void)state;
	assert_int_equal(pthread_create(&thread, NULL, wake_later, e), 0);
	assert_int_equal(http_run(e, 10000), 0);
	assert_true(now_ms() - start < 5000);
	assert_int_equal(http_pending(e), 0);
	assert_int_equal(pthread_join(thread, NULL), 0);
	http_free(e);
}

static void test_free_aborts_without_callbacks(void **state)
{
	http_engine *e = engine(2, 3, 5000);

	(void)state;
	submit(e, "/slow", 0);
	submit(e, "/slow", 1);
	submit(e, "/slow", 2);
	assert_int_equal(http_run(e, 100), 0);
	assert_int_equal(http_pending(e), 3);
	assert_int_equal(stats_of(e).peak_inflight, 2);
	http_free(e);
	http_free(NULL);
	assert_int_equal(total_calls, 0);
}

static void test_bad_options_are_rejected(void **state)
{
	http_opts opts = test_opts(0, 0, 1000);
	char err[128] = "";

	(void)state;
	assert_null(http_new(&opts, on_done, results, err, sizeof err));
	assert_non_null(strstr(err, "concurrency"));
	opts = test_opts(1, 0, 1000);
	opts.token = "abc\ndef";
	err[0] = '\0';
	assert_null(http_new(&opts, on_done, results, err, sizeof err));
	assert_true(err[0] != '\0');
	assert_null(strstr(err, "abc"));
	opts = test_opts(1, 0, 1000);
	opts.base_url = "";
	assert_null(http_new(&opts, on_done, results, err, sizeof err));
}

static size_t discard(char *data, size_t size, size_t nmemb, void *userp)
{
	(void)data, (void)userp;
	return size * nmemb;
}

/* One plain GET of path on easy; returns curl's answer. */
static CURLcode plain_get(CURL *easy, const char *path)
{
	char url[96];

	snprintf(url, sizeof url, "http://127.0.0.1:%d%s", srv.port, path);
	assert_int_equal(curl_easy_setopt(easy, CURLOPT_URL, url), CURLE_OK);
	return curl_easy_perform(easy);
}

/* The helpers for a module making its own requests (the login): the
 * Retry-After of the last answer under the caller's cap, 0 without one;
 * http and https only. */
static void test_helpers_for_own_requests(void **state)
{
	CURL *easy = curl_easy_init();

	(void)state;
	assert_non_null(easy);
	assert_int_equal(curl_easy_setopt(easy, CURLOPT_WRITEFUNCTION, discard), CURLE_OK);
	assert_int_equal(http_restrict_protocols(easy), CURLE_OK);
	assert_int_equal(plain_get(easy, "/throttle"), CURLE_OK); /* Retry-After: 1 */
	assert_int_equal(http_retry_after_ms(easy, 60000), 1000);
	assert_int_equal(http_retry_after_ms(easy, 400), 400);
	assert_int_equal(plain_get(easy, "/throttle-long"), CURLE_OK); /* an hour */
	assert_int_equal(http_retry_after_ms(easy, 60000), 60000);
	assert_int_equal(http_retry_after_ms(easy, 1500), 1500);
	assert_int_equal(plain_get(easy, "/ok"), CURLE_OK);
	assert_int_equal(http_retry_after_ms(easy, 60000), 0);
	/* refused by the restriction: this libcurl does read file:// (else the
	 * refusal would prove nothing; Debian's does) */
	bool has_file = false;
	for (const char *const *p = curl_version_info(CURLVERSION_NOW)->protocols; *p; p++)
		has_file = has_file || strcmp(*p, "file") == 0;
	assert_true(has_file);
	assert_int_equal(curl_easy_setopt(easy, CURLOPT_URL, "file:///etc/passwd"), CURLE_OK);
	assert_int_equal(curl_easy_perform(easy), CURLE_UNSUPPORTED_PROTOCOL);
	curl_easy_cleanup(easy);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup(test_bodies_stay_within_the_budget, reset),
		cmocka_unit_test_setup(test_body_over_the_whole_budget_fails_at_once, reset),
		cmocka_unit_test_setup(test_ok_delivers_body_and_headers, reset),
		cmocka_unit_test_setup(test_flaky_is_retried, reset),
		cmocka_unit_test_setup(test_429_honours_retry_after, reset),
		cmocka_unit_test_setup(test_503_retry_after_http_date, reset),
		cmocka_unit_test_setup(test_retry_after_is_capped, reset),
		cmocka_unit_test_setup(test_404_not_found, reset),
		cmocka_unit_test_setup(test_401_403_are_auth, reset),
		cmocka_unit_test_setup(test_400_fails_without_retry, reset),
		cmocka_unit_test_setup(test_500_exhausts_retries, reset),
		cmocka_unit_test_setup(test_timeout_is_retried_then_fails, reset),
		cmocka_unit_test_setup(test_timeout_allows_a_slow_steady_body, reset),
		cmocka_unit_test_setup(test_announced_huge_body_fails_unread, reset),
		cmocka_unit_test_setup(test_callback_retry_refetches_once, reset),
		cmocka_unit_test_setup(test_callback_retry_until_exhausted, reset),
		cmocka_unit_test_setup(test_resend_uses_no_retry, reset),
		cmocka_unit_test_setup(test_resends_are_bounded, reset),
		cmocka_unit_test_setup(test_concurrency_is_exact, reset),
		cmocka_unit_test_setup(test_connections_are_reused, reset),
		cmocka_unit_test_setup(test_rate_limit_spaces_starts, reset),
		cmocka_unit_test_setup(test_rate_limit_holds_in_the_first_second, reset),
		cmocka_unit_test_setup(test_token_never_in_errors, reset),
		cmocka_unit_test_setup(test_set_token_applies_to_new_requests, reset),
		cmocka_unit_test_setup(test_wakeup_interrupts_run, reset),
		cmocka_unit_test_setup(test_free_aborts_without_callbacks, reset),
		cmocka_unit_test_setup(test_bad_options_are_rejected, reset),
		cmocka_unit_test_setup(test_helpers_for_own_requests, reset),
	};
	return cmocka_run_group_tests_name("http", tests, server_start, server_stop);
}
