/* http.c — the fetch engine: one curl multi handle, a pool of reusable easy
 * handles (one per slot, at most `concurrency` slots), our own FIFO of
 * requests so exactly that many are in flight, a token bucket gating starts,
 * and one function (http_judge) that decides what every attempt means. */
#include "http.h"

#include <curl/curl.h>
#include <limits.h>
#include <math.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "log.h"

#define HTTP_USER_AGENT "bloomsync/0.1"
#define HTTP_BODY_MAX ((size_t)256 << 20)  /* larger bodies fail the request */
#define HTTP_BODY_KEEP ((size_t)1 << 20)   /* a slot keeps a buffer this big between transfers */
#define HTTP_BODY_FIRST ((size_t)16 << 10) /* first allocation for a body */
#define HTTP_BODY_BUDGET ((size_t)320 << 20) /* all body buffers together (http_opts.body_budget) */
#define HTTP_BUDGET_WAITS_MAX 300 /* waits for body budget that use up no retry, per request */
#define HTTP_BUDGET_WAIT_MS 200   /* between them */
#define HTTP_CONNECT_TIMEOUT_MS 10000
#define HTTP_TOTAL_TIMEOUTS 10    /* a whole transfer may take this many timeout_ms */
#define HTTP_SLOW_MIN 0.0625      /* lowest share of rate and concurrency after throttling */
#define HTTP_SLOW_HOLD_MS 30000   /* stay slowed this long after the last throttle answer */
#define HTTP_SLOW_STEP_MS 10000   /* then double the share every step until back to full */
#define HTTP_WHAT_MAX 96
#define HTTP_ERROR_MAX (HTTP_WHAT_MAX + CURL_ERROR_SIZE + 64)

typedef struct http_req {
	struct http_req *next; /* link in a fifo */
	char *url;             /* base_url "/" path */
	char *path;            /* as submitted */
	void *user;
	int attempts;  /* attempts started so far */
	int resends;   /* of them, HTTP_CB_RESEND's, which use up no retry */
	int budget_waits; /* of them, retries after other bodies took the budget: no retry used up either */
	bool resend_due; /* the next attempt is a resend (counted apart from retries) */
	bool budget_due; /* the next attempt follows a budget wait (counted apart from retries) */
	int64_t due_ms; /* earliest start of the next attempt (retries) */
} http_req;

typedef struct http_fifo {
	http_req *head;
	http_req *tail;
} http_fifo;

/* One reusable easy handle and the state of the transfer it carries. */
typedef struct http_slot {
	CURL *easy;    /* created on first use, kept so connections stay warm */
	http_req *req; /* the request in flight, NULL when idle */
	char *body;
	size_t len;
	size_t cap;
	bool too_large;
	bool over_budget; /* growing would pass the engine's body_budget */
	bool out_of_memory;
	struct http_engine *engine;
	char errbuf[CURL_ERROR_SIZE];
} http_slot;

/* Header lists replaced by http_set_token while transfers still used them. */
typedef struct http_retired {
	struct http_retired *next;
	struct curl_slist *headers;
} http_retired;

/* What one attempt came to: the verdict of http_judge. */
typedef enum {
	HTTP_V_OK,        /* 2xx */
	HTTP_V_NOT_FOUND, /* 404 */
	HTTP_V_AUTH,      /* 401, 403 */
	HTTP_V_RETRY,     /* 408, 429, 5xx, transport errors */
	HTTP_V_FAIL,      /* anything else */
} http_verdict;

typedef struct http_judgement {
	http_verdict verdict;
	bool throttled;            /* 429 or 503: honour Retry-After, slow down */
	bool crowded_out;          /* other bodies took the budget: retried without using up a retry */
	char what[HTTP_WHAT_MAX];  /* "HTTP 503", "timeout", ... */
	char detail[CURL_ERROR_SIZE]; /* curl's text for transport errors, else "" */
} http_judgement;

struct http_engine {
	CURLM *multi;
	http_done_fn done;
	void *cb_ctx;
	char *base_url; /* without trailing slashes */
	char *token;    /* may be NULL */
	struct curl_slist *headers;
	http_retired *retired;

	int concurrency;
	double rate;
	int timeout_ms;
	int max_retries;
	int retry_base_ms;
	int retry_cap_ms;
	int retry_after_cap_ms;
	/* The body buffers of all slots hold body_bytes together, at most
	 * body_budget: without it, a server's large (or small but gzipped,
	 * expanding) bodies could take concurrency x HTTP_BODY_MAX. */
	size_t body_budget;
	size_t body_bytes;
	uint64_t rng; /* splitmix64 state, seeded once in http_new */

	http_slot *slots;
	int *free_slots; /* stack of idle slot indexes */
	int nfree;
	int inflight;

	http_fifo fresh; /* submitted, never started */
	http_fifo again; /* retries whose time has come; served first */
	http_req **waiting; /* min-heap on due_ms of retries not yet due */
	size_t nwaiting;
	size_t capwaiting; /* kept >= pending so a push never allocates */
	size_t pending;

	double tokens; /* token bucket */
	double burst;
	int64_t refill_ms;
	int64_t pause_until_ms; /* no new start before this (Retry-After) */
	double slow;            /* share of rate and concurrency allowed, (0, 1] */
	int64_t slow_step_ms;   /* when the share next doubles */

	atomic_bool woken;
	http_stats stats;
};

static int64_t http_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int64_t http_min64(int64_t a, int64_t b)
{
	return a < b ? a : b;
}

static char *http_strdup(const char *s)
{
	size_t n = strlen(s) + 1;
	char *copy = malloc(n);
	if (copy)
		memcpy(copy, s, n);
	return copy;
}

/* splitmix64: small, fast, good enough for jitter. */
static uint64_t http_rng_next(http_engine *e)
{
	uint64_t z = (e->rng += 0x9e3779b97f4a7c15ULL);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

static void http_rng_seed(http_engine *e, unsigned seed)
{
	if (seed == 0) {
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		e->rng = ((uint64_t)ts.tv_sec << 32) ^ (uint64_t)ts.tv_nsec ^ ((uint64_t)getpid() << 16);
	} else {
		e->rng = seed;
	}
	(void)http_rng_next(e);
}

/* ---- fifo and heap ---------------------------------------------------- */

static void http_fifo_push(http_fifo *q, http_req *req)
{
	req->next = NULL;
	if (q->tail)
		q->tail->next = req;
	else
		q->head = req;
	q->tail = req;
}

static http_req *http_fifo_pop(http_fifo *q)
{
	http_req *req = q->head;
	if (req) {
		q->head = req->next;
		if (!q->head)
			q->tail = NULL;
		req->next = NULL;
	}
	return req;
}

static void http_heap_swap(http_engine *e, size_t a, size_t b)
{
	http_req *tmp = e->waiting[a];
	e->waiting[a] = e->waiting[b];
	e->waiting[b] = tmp;
}

/* Never allocates: http_submit keeps capwaiting >= pending. */
static void http_heap_push(http_engine *e, http_req *req)
{
	size_t i = e->nwaiting++;
	e->waiting[i] = req;
	while (i > 0) {
		size_t parent = (i - 1) / 2;
		if (e->waiting[parent]->due_ms <= e->waiting[i]->due_ms)
			break;
		http_heap_swap(e, parent, i);
		i = parent;
	}
}

static http_req *http_heap_pop(http_engine *e)
{
	http_req *top = e->waiting[0];
	size_t i = 0;
	e->waiting[0] = e->waiting[--e->nwaiting];
	for (;;) {
		size_t left = 2 * i + 1, right = left + 1, least = i;
		if (left < e->nwaiting && e->waiting[left]->due_ms < e->waiting[least]->due_ms)
			least = left;
		if (right < e->nwaiting && e->waiting[right]->due_ms < e->waiting[least]->due_ms)
			least = right;
		if (least == i)
			break;
		http_heap_swap(e, i, least);
		i = least;
	}
	return top;
}

static void http_req_free(http_req *req)
{
	if (!req)
		return;
	free(req->url);
	free(req->path);
	free(req);
}

/* ---- headers and easy handles ---------------------------------------- */

static bool http_token_ok(const char *token)
{
	return !token || strpbrk(token, "\r\n") == NULL;
}

/* Builds the request headers; NULL on allocation failure. */
static struct curl_slist *http_build_headers(const char *token)
{
	struct curl_slist *list = curl_slist_append(NULL, "Accept: application/json");
	struct curl_slist *grown;
	char *line;
	size_t n;

	if (!list || !token || !*token)
		return list;
	n = strlen(token) + sizeof "Authorization: Bearer ";
	line = malloc(n);
	if (!line)
		goto fail;
	snprintf(line, n, "Authorization: Bearer %s", token);
	grown = curl_slist_append(list, line);
	explicit_bzero(line, n);
	free(line);
	if (!grown)
		goto fail;
	return grown;
fail:
	curl_slist_free_all(list);
	return NULL;
}

/* Frees the buffers idle slots keep between transfers, making room in
 * the budget for bodies arriving. */
static void http_drop_idle_buffers(http_engine *e)
{
	for (int i = 0; i < e->nfree; i++) {
		http_slot *idle = &e->slots[e->free_slots[i]];
		e->body_bytes -= idle->cap;
		free(idle->body);
		idle->body = NULL;
		idle->cap = 0;
	}
}

static size_t http_on_body(char *data, size_t size, size_t nmemb, void *userp)
{
	http_slot *slot = userp;
	size_t n = size * nmemb;

	if (n > HTTP_BODY_MAX - slot->len) {
		slot->too_large = true;
		return 0;
	}
	if (slot->len + n + 1 > slot->cap) {
		http_engine *e = slot->engine;
		size_t cap = slot->cap ? slot->cap : HTTP_BODY_FIRST;
		char *grown;
		while (cap < slot->len + n + 1)
			cap *= 2;
		if (cap > HTTP_BODY_MAX + 1)
			cap = HTTP_BODY_MAX + 1;
		if (cap - slot->cap > e->body_budget - e->body_bytes)
			http_drop_idle_buffers(e);
		if (cap > e->body_budget) { /* it would not fit the next time either */
			slot->too_large = true;
			return 0;
		}
		if (cap - slot->cap > e->body_budget - e->body_bytes) {
			slot->over_budget = true;
			return 0;
		}
		grown = realloc(slot->body, cap);
		if (!grown) {
			slot->out_of_memory = true;
			return 0;
		}
		e->body_bytes += cap - slot->cap;
		if (e->body_bytes > e->stats.peak_body_bytes)
			e->stats.peak_body_bytes = e->body_bytes;
		slot->body = grown;
		slot->cap = cap;
	}
	memcpy(slot->body + slot->len, data, n);
	slot->len += n;
	slot->body[slot->len] = '\0';
	return n;
}

/* timeout_ms bounds the silence, not the transfer: an attempt fails when no
 * byte has arrived for timeout_ms (libcurl checks in whole seconds, so it
 * is rounded up), so a big list on a slow link still completes as long as
 * it keeps coming. total_ms caps the whole transfer, so that a server that
 * drips a byte now and then cannot hold a slot for ever. 0 leaves both off.
 * Connecting is bounded on its own, by timeout_ms or
 * HTTP_CONNECT_TIMEOUT_MS, whichever is less. Returns the first setting
 * libcurl refused, CURLE_OK when none. */
CURLcode http_set_timeouts(CURL *easy, int timeout_ms, long total_ms)
{
	CURLcode rc;
	long idle_s = timeout_ms > 0 ? (timeout_ms + 999L) / 1000L : 0L;
	long connect_ms = HTTP_CONNECT_TIMEOUT_MS;

	if (timeout_ms > 0 && timeout_ms < connect_ms)
		connect_ms = timeout_ms;
	if ((rc = curl_easy_setopt(easy, CURLOPT_LOW_SPEED_LIMIT, timeout_ms > 0 ? 1L : 0L)) != CURLE_OK ||
	    (rc = curl_easy_setopt(easy, CURLOPT_LOW_SPEED_TIME, idle_s)) != CURLE_OK ||
	    (rc = curl_easy_setopt(easy, CURLOPT_TIMEOUT_MS, timeout_ms > 0 ? total_ms : 0L)) != CURLE_OK)
		return rc;
	return curl_easy_setopt(easy, CURLOPT_CONNECTTIMEOUT_MS, connect_ms);
}

CURLcode http_restrict_protocols(CURL *easy)
{
#if LIBCURL_VERSION_NUM >= 0x075500 /* 7.85.0 brought the string and deprecated the bitmask */
	return curl_easy_setopt(easy, CURLOPT_PROTOCOLS_STR, "http,https");
#else
	return curl_easy_setopt(easy, CURLOPT_PROTOCOLS, (long)(CURLPROTO_HTTP | CURLPROTO_HTTPS));
#endif
}

/* Creates the slot's easy handle with every option that never changes. */
static CURL *http_make_easy(http_engine *e, http_slot *slot)
{
	CURL *easy = curl_easy_init();
	CURLcode rc = CURLE_OK;

	if (!easy)
		return NULL;
	rc |= curl_easy_setopt(easy, CURLOPT_NOSIGNAL, 1L);
	rc |= curl_easy_setopt(easy, CURLOPT_HTTPGET, 1L);
	rc |= curl_easy_setopt(easy, CURLOPT_FOLLOWLOCATION, 0L);
	rc |= curl_easy_setopt(easy, CURLOPT_WRITEFUNCTION, http_on_body);
	rc |= curl_easy_setopt(easy, CURLOPT_WRITEDATA, (void *)slot);
	rc |= curl_easy_setopt(easy, CURLOPT_PRIVATE, (void *)slot);
	rc |= curl_easy_setopt(easy, CURLOPT_ERRORBUFFER, slot->errbuf);
	rc |= curl_easy_setopt(easy, CURLOPT_USERAGENT, HTTP_USER_AGENT);
	rc |= curl_easy_setopt(easy, CURLOPT_ACCEPT_ENCODING, "");
	/* refuses a body announced bigger than we keep before reading any of it */
	rc |= curl_easy_setopt(easy, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)HTTP_BODY_MAX);
	rc |= http_set_timeouts(easy, e->timeout_ms, (long)e->timeout_ms * HTTP_TOTAL_TIMEOUTS);
	rc |= curl_easy_setopt(easy, CURLOPT_TCP_KEEPALIVE, 1L);
	rc |= http_restrict_protocols(easy);
	if (rc != CURLE_OK) {
		curl_easy_cleanup(easy);
		return NULL;
	}
	return easy;
}

static void http_free_retired(http_engine *e)
{
	while (e->retired) {
		http_retired *next = e->retired->next;
		curl_slist_free_all(e->retired->headers);
		free(e->retired);
		e->retired = next;
	}
}

/* ---- pacing: token bucket, Retry-After pause, slow-down --------------- */

static void http_slow_update(http_engine *e, int64_t now)
{
	while (e->slow < 1.0 && now >= e->slow_step_ms) {
		e->slow = e->slow * 2 > 1.0 ? 1.0 : e->slow * 2;
		e->slow_step_ms += HTTP_SLOW_STEP_MS;
	}
}

static void http_slow_down(http_engine *e, int64_t now)
{
	e->slow = e->slow / 2 < HTTP_SLOW_MIN ? HTTP_SLOW_MIN : e->slow / 2;
	e->slow_step_ms = now + HTTP_SLOW_HOLD_MS;
}

static int http_allowed_inflight(const http_engine *e)
{
	int allowed = (int)(e->concurrency * e->slow);
	return allowed < 1 ? 1 : allowed;
}

static void http_bucket_refill(http_engine *e, int64_t now)
{
	if (e->rate <= 0)
		return;
	if (now > e->refill_ms) {
		e->tokens += (double)(now - e->refill_ms) * e->rate * e->slow / 1000.0;
		if (e->tokens > e->burst)
			e->tokens = e->burst;
	}
	e->refill_ms = now;
}

/* Milliseconds until the bucket holds a whole token (0 when it does). */
static int64_t http_bucket_wait_ms(const http_engine *e)
{
	if (e->rate <= 0 || e->tokens >= 1.0)
		return 0;
	double wait = ceil((1.0 - e->tokens) * 1000.0 / (e->rate * e->slow));
	return wait < 86400000.0 ? (int64_t)wait : 86400000; /* a day at most: no cast overflows */
}

static bool http_have_work(const http_engine *e)
{
	return e->again.head || e->fresh.head;
}

/* May a new attempt start now? */
static bool http_may_start(const http_engine *e, int64_t now)
{
	return http_have_work(e) && e->nfree > 0 && e->inflight < http_allowed_inflight(e) &&
	       now >= e->pause_until_ms && (e->rate <= 0 || e->tokens >= 1.0);
}

/* How long http_run may sleep before pacing lets something happen. */
static int64_t http_next_wake_ms(const http_engine *e, int64_t now)
{
	int64_t wait = INT64_MAX;

	if (e->nwaiting > 0)
		wait = http_min64(wait, e->waiting[0]->due_ms - now);
	if (http_have_work(e) && e->nfree > 0) {
		if (e->inflight >= http_allowed_inflight(e) && e->slow < 1.0)
			wait = http_min64(wait, e->slow_step_ms - now);
		else if (now < e->pause_until_ms)
			wait = http_min64(wait, e->pause_until_ms - now);
		else if (e->inflight < http_allowed_inflight(e))
			wait = http_min64(wait, http_bucket_wait_ms(e));
	}
	return wait < 0 ? 0 : wait;
}

/* ---- starting transfers ----------------------------------------------- */

/* Starts one attempt of req. Returns 0, or -1 (req untouched) on failure. */
static int http_start(http_engine *e, http_req *req)
{
	int idx = e->free_slots[e->nfree - 1];
	http_slot *slot = &e->slots[idx];
	CURLMcode mc;

	if (!slot->easy) {
		slot->easy = http_make_easy(e, slot);
		if (!slot->easy) {
			log_error("http: cannot create a curl handle");
			return -1;
		}
	}
	slot->len = 0;
	slot->too_large = false;
	slot->over_budget = false;
	slot->out_of_memory = false;
	slot->errbuf[0] = '\0';
	if (slot->body)
		slot->body[0] = '\0';
	if (curl_easy_setopt(slot->easy, CURLOPT_URL, req->url) != CURLE_OK ||
	    curl_easy_setopt(slot->easy, CURLOPT_HTTPHEADER, e->headers) != CURLE_OK) {
		log_error("http: cannot set up a request for %s", req->path);
		return -1;
	}
	mc = curl_multi_add_handle(e->multi, slot->easy);
	if (mc != CURLM_OK) {
		log_error("http: curl_multi_add_handle: %s", curl_multi_strerror(mc));
		return -1;
	}
	e->nfree--;
	slot->req = req;
	req->attempts++;
	e->inflight++;
	e->stats.requests++;
	if (req->attempts > 1 && !req->resend_due && !req->budget_due)
		e->stats.retries++;
	req->resend_due = false;
	req->budget_due = false;
	if (e->inflight > e->stats.peak_inflight)
		e->stats.peak_inflight = e->inflight;
	if (e->rate > 0)
		e->tokens -= 1.0;
	return 0;
}

/* Moves due retries to the ready queue and starts what pacing allows.
 * Returns 0, or -1 when a transfer could not be started. */
static int http_start_ready(http_engine *e)
{
	int64_t now = http_now_ms();

	while (e->nwaiting > 0 && e->waiting[0]->due_ms <= now)
		http_fifo_push(&e->again, http_heap_pop(e));
	http_slow_update(e, now);
	http_bucket_refill(e, now);
	while (http_may_start(e, now)) {
		http_fifo *q = e->again.head ? &e->again : &e->fresh;
		if (http_start(e, q->head) < 0)
			return -1;
		(void)http_fifo_pop(q);
	}
	return 0;
}

/* ---- deciding what an attempt means ----------------------------------- */

static bool http_transport_permanent(CURLcode rc)
{
	switch (rc) {
	case CURLE_UNSUPPORTED_PROTOCOL:
	case CURLE_URL_MALFORMAT:
	case CURLE_NOT_BUILT_IN:
	case CURLE_OUT_OF_MEMORY:
	case CURLE_BAD_FUNCTION_ARGUMENT:
	case CURLE_UNKNOWN_OPTION:
	case CURLE_FAILED_INIT:
	case CURLE_PEER_FAILED_VERIFICATION:
	case CURLE_SSL_CERTPROBLEM:
	case CURLE_SSL_CACERT_BADFILE:
	case CURLE_TOO_MANY_REDIRECTS:
		return true;
	default:
		return false;
	}
}

static const char *http_transport_kind(CURLcode rc)
{
	switch (rc) {
	case CURLE_OPERATION_TIMEDOUT:
		return "timeout";
	case CURLE_COULDNT_CONNECT:
	case CURLE_COULDNT_RESOLVE_HOST:
	case CURLE_COULDNT_RESOLVE_PROXY:
		return "connection failed";
	case CURLE_GOT_NOTHING:
	case CURLE_RECV_ERROR:
	case CURLE_SEND_ERROR:
	case CURLE_PARTIAL_FILE:
		return "connection lost";
	default:
		return "transport error";
	}
}

/* The one place that decides what an attempt's result means, and counts it. */
static void http_judge(http_engine *e, const http_slot *slot, CURLcode rc, long status, http_judgement *j)
{
	j->throttled = false;
	j->crowded_out = false;
	j->detail[0] = '\0';
	/* too large as it grew, or as announced (CURLOPT_MAXFILESIZE_LARGE) */
	bool too_large = slot->too_large || rc == CURLE_FILESIZE_EXCEEDED;
	if (too_large || slot->out_of_memory) {
		j->verdict = HTTP_V_FAIL;
		snprintf(j->what, sizeof j->what, "%s",
		         too_large ? "response too large" : "out of memory reading the response");
		return;
	}
	/* the others' bodies took the room: there will be some once they are
	 * done, so waiting for it is no failure of this request's */
	if (slot->over_budget) {
		j->verdict = HTTP_V_RETRY;
		j->crowded_out = true;
		snprintf(j->what, sizeof j->what, "responses in flight over %zu KiB together", e->body_budget >> 10);
		return;
	}
	if (rc != CURLE_OK) {
		e->stats.transport_errors++;
		j->verdict = http_transport_permanent(rc) ? HTTP_V_FAIL : HTTP_V_RETRY;
		snprintf(j->what, sizeof j->what, "%s", http_transport_kind(rc));
		snprintf(j->detail, sizeof j->detail, "%s", slot->errbuf[0] ? slot->errbuf : curl_easy_strerror(rc));
		return;
	}
	snprintf(j->what, sizeof j->what, "HTTP %ld", status);
	if (status >= 200 && status < 300)
		j->verdict = HTTP_V_OK;
	else if (status == 404)
		j->verdict = HTTP_V_NOT_FOUND;
	else if (status == 401 || status == 403)
		j->verdict = HTTP_V_AUTH;
	else if (status == 429 || status == 503) {
		e->stats.throttled++;
		j->throttled = true;
		j->verdict = HTTP_V_RETRY;
	} else if (status >= 500 && status < 600) {
		e->stats.server_errors++;
		j->verdict = HTTP_V_RETRY;
	} else if (status == 408)
		j->verdict = HTTP_V_RETRY;
	else
		j->verdict = HTTP_V_FAIL;
}

/* ---- finishing transfers ---------------------------------------------- */

/* Replaces every occurrence of the token in buf (belt and braces: curl's
 * texts never carry request headers). */
static void http_redact(const http_engine *e, char *buf, size_t buflen)
{
	static const char mark[] = "[redacted]";
	size_t toklen = e->token ? strlen(e->token) : 0;
	char *from = buf;
	char *hit;

	if (toklen < 4)
		return;
	while ((hit = strstr(from, e->token)) != NULL) {
		size_t tail = strlen(hit + toklen) + 1;
		size_t marklen = sizeof mark - 1;
		size_t room = buflen - (size_t)(hit - buf);
		if (marklen + tail > room)
			tail = room > marklen ? room - marklen : 0;
		if (tail == 0) {
			*hit = '\0';
			return;
		}
		memmove(hit + marklen, hit + toklen, tail);
		hit[marklen + tail - 1] = '\0';
		memcpy(hit, mark, marklen);
		from = hit + marklen;
	}
}

static int64_t http_backoff_ms(http_engine *e, int attempts)
{
	int shift = attempts - 1;
	int64_t ceiling;

	if (shift < 0)
		shift = 0;
	if (shift > 30)
		shift = 30;
	ceiling = (int64_t)e->retry_base_ms << shift;
	if (ceiling > e->retry_cap_ms)
		ceiling = e->retry_cap_ms;
	return (int64_t)(http_rng_next(e) % (uint64_t)(ceiling + 1));
}

static void http_schedule_retry(http_engine *e, http_req *req, int64_t now, int64_t retry_after_ms, const char *why)
{
	int64_t wait = retry_after_ms > 0 ? retry_after_ms : http_backoff_ms(e, req->attempts);

	req->due_ms = now + wait;
	http_heap_push(e, req);
	log_debug("http: retrying %s in %lld ms after %s (attempt %d)", req->path, (long long)wait, why,
	          req->attempts);
}

int http_retry_after_ms(CURL *easy, int cap_ms)
{
	curl_off_t seconds = 0;

	if (curl_easy_getinfo(easy, CURLINFO_RETRY_AFTER, &seconds) != CURLE_OK || seconds <= 0)
		return 0;
	return seconds > cap_ms / 1000 ? cap_ms : (int)seconds * 1000;
}

/* Retry-After of a 429 / 503 in ms, capped; 0 when absent. Pauses new starts. */
static int64_t http_throttle(http_engine *e, const http_slot *slot, long status, int64_t now)
{
	int64_t wait_ms;

	http_slow_down(e, now);
	wait_ms = http_retry_after_ms(slot->easy, e->retry_after_cap_ms);
	if (wait_ms == 0) {
		log_warn("http: throttled (HTTP %ld) on %s without Retry-After, slowing down", status,
		         slot->req->path);
		return 0;
	}
	if (now + wait_ms > e->pause_until_ms)
		e->pause_until_ms = now + wait_ms;
	log_warn("http: throttled (HTTP %ld) on %s, pausing new requests for %lld ms", status, slot->req->path,
	         (long long)wait_ms);
	return wait_ms;
}

static http_cb_result http_deliver(http_engine *e, const http_slot *slot, http_outcome outcome, long status,
                                   const char *error)
{
	http_response resp = {
		.outcome = outcome,
		.status = status,
		.body = slot->body ? slot->body : "",
		.body_len = slot->len,
		.attempts = slot->req->attempts,
		.retries = slot->req->attempts - 1 - slot->req->resends - slot->req->budget_waits,
		.error = error,
		.path = slot->req->path,
	};
	return e->done(e->cb_ctx, slot->req->user, &resp);
}

static http_outcome http_outcome_of(http_verdict verdict)
{
	switch (verdict) {
	case HTTP_V_OK:
		return HTTP_OK;
	case HTTP_V_NOT_FOUND:
		return HTTP_NOT_FOUND;
	case HTTP_V_AUTH:
		return HTTP_AUTH;
	default:
		return HTTP_FAILED;
	}
}

static void http_format_error(const http_engine *e, char *buf, size_t buflen, const char *what, int attempts,
                              const char *detail)
{
	char tries[48] = "";

	if (attempts > 0)
		snprintf(tries, sizeof tries, " after %d attempt%s", attempts, attempts == 1 ? "" : "s");
	snprintf(buf, buflen, "%s%s%s%s", what, tries, detail[0] ? ": " : "", detail);
	http_redact(e, buf, buflen);
}

/* Retries a finished attempt or hands it to the callback. Returns the number
 * of callbacks run; *final says whether the request is done with. */
static int http_conclude(http_engine *e, const http_slot *slot, const http_judgement *j, long status,
                         int64_t retry_after_ms, bool *final)
{
	http_req *req = slot->req;
	int64_t now = http_now_ms();
	/* waiting for room uses up no retry, but only so often: past that, the
	 * waits count as retries, so no request waits for ever */
	bool budget_wait = j->crowded_out && req->budget_waits < HTTP_BUDGET_WAITS_MAX;
	if (budget_wait) {
		req->budget_waits++;
		req->budget_due = true;
	}
	bool retries_left = req->attempts - req->resends - req->budget_waits <= e->max_retries;
	http_cb_result answer;
	char error[HTTP_ERROR_MAX];
	char what[HTTP_WHAT_MAX];

	*final = false;
	if (j->verdict == HTTP_V_RETRY && retries_left) {
		/* room comes back as the others finish: soon, no backoff */
		http_schedule_retry(e, req, now, budget_wait ? HTTP_BUDGET_WAIT_MS : retry_after_ms, j->what);
		return 0;
	}
	if (j->verdict == HTTP_V_RETRY || j->verdict == HTTP_V_FAIL) {
		/* a failure is final: HTTP_CB_RETRY is not honoured here */
		http_format_error(e, error, sizeof error, j->what, j->verdict == HTTP_V_RETRY ? req->attempts : 0,
		                  j->detail);
		(void)http_deliver(e, slot, HTTP_FAILED, status, error);
		*final = true;
		return 1;
	}
	answer = http_deliver(e, slot, http_outcome_of(j->verdict), status, NULL);
	if (answer == HTTP_CB_DONE) {
		*final = true;
		return 1;
	}
	if (answer == HTTP_CB_RESEND && req->resends < HTTP_RESENDS_MAX) {
		req->resends++;
		req->resend_due = true;
		req->due_ms = now;
		http_heap_push(e, req);
		log_debug("http: sending %s again at once (attempt %d)", req->path, req->attempts);
		return 1;
	}
	snprintf(what, sizeof what, "HTTP %ld response rejected", status);
	if (retries_left) {
		http_schedule_retry(e, req, now, 0, what);
		return 1;
	}
	http_format_error(e, error, sizeof error, what, req->attempts, "");
	(void)http_deliver(e, slot, HTTP_FAILED, status, error);
	*final = true;
	return 2;
}

/* Judges one finished attempt and concludes it; frees the request once it
 * is final. Returns the number of callbacks run. */
static int http_finish(http_engine *e, http_slot *slot, CURLcode rc)
{
	http_judgement j;
	long status = 0;
	int64_t retry_after_ms = 0;
	bool final = false;
	int calls;

	(void)curl_easy_getinfo(slot->easy, CURLINFO_RESPONSE_CODE, &status);
	http_judge(e, slot, rc, status, &j);
	if (j.throttled)
		retry_after_ms = http_throttle(e, slot, status, http_now_ms());
	calls = http_conclude(e, slot, &j, status, retry_after_ms, &final);
	if (final) {
		e->pending--;
		http_req_free(slot->req);
	}
	slot->req = NULL;
	return calls;
}

/* Returns a finished slot to the pool; drops a buffer that grew big. */
static void http_release_slot(http_engine *e, http_slot *slot)
{
	if (slot->cap > HTTP_BODY_KEEP) {
		free(slot->body);
		e->body_bytes -= slot->cap;
		slot->body = NULL;
		slot->cap = 0;
	}
	slot->len = 0;
	e->free_slots[e->nfree++] = (int)(slot - e->slots);
	if (e->inflight == 0)
		http_free_retired(e);
}

/* Reads finished transfers. Returns callbacks run, or -1 on a multi error. */
static int http_drain(http_engine *e)
{
	CURLMsg *msg;
	int left = 0;
	int calls = 0;
	bool failed = false;

	while ((msg = curl_multi_info_read(e->multi, &left)) != NULL) {
		CURL *easy = msg->easy_handle;
		CURLcode rc = msg->data.result;
		char *priv = NULL;
		http_slot *slot;
		CURLMcode mc;

		if (msg->msg != CURLMSG_DONE)
			continue;
		(void)curl_easy_getinfo(easy, CURLINFO_PRIVATE, &priv);
		slot = (http_slot *)(void *)priv;
		mc = curl_multi_remove_handle(e->multi, easy);
		if (mc != CURLM_OK) {
			log_error("http: curl_multi_remove_handle: %s", curl_multi_strerror(mc));
			failed = true;
		}
		e->inflight--;
		calls += http_finish(e, slot, rc);
		http_release_slot(e, slot);
	}
	return failed ? -1 : calls;
}

/* ---- public API ------------------------------------------------------- */

static int http_check_opts(const http_opts *opts, http_done_fn done, char *err, size_t errlen)
{
	const char *problem = NULL;

	if (!opts || !done)
		problem = "no options or no callback";
	else if (!opts->base_url || !*opts->base_url)
		problem = "base_url is empty";
	else if (opts->concurrency < 1)
		problem = "concurrency must be at least 1";
	else if (opts->rate_limit < 0 || isnan(opts->rate_limit))
		problem = "rate_limit must not be negative";
	else if (opts->timeout_ms < 0 || opts->max_retries < 0 || opts->retry_base_ms < 0 ||
	         opts->retry_cap_ms < 0 || opts->retry_after_cap_ms < 0)
		problem = "timeouts, retries and backoff must not be negative";
	else if (!http_token_ok(opts->token))
		problem = "token contains a line break";
	else if (opts->body_budget && opts->body_budget < HTTP_BODY_FIRST)
		problem = "body_budget must be 0 or at least 16 KiB";
	if (!problem)
		return 0;
	if (err && errlen)
		snprintf(err, errlen, "http: %s", problem);
	return -1;
}

static void http_apply_opts(http_engine *e, const http_opts *opts)
{
	e->concurrency = opts->concurrency;
	e->rate = opts->rate_limit;
	e->timeout_ms = opts->timeout_ms;
	e->max_retries = opts->max_retries;
	e->retry_base_ms = opts->retry_base_ms ? opts->retry_base_ms : 250;
	e->retry_cap_ms = opts->retry_cap_ms ? opts->retry_cap_ms : 30000;
	e->retry_after_cap_ms = opts->retry_after_cap_ms ? opts->retry_after_cap_ms : 120000;
	e->body_budget = opts->body_budget ? opts->body_budget : HTTP_BODY_BUDGET;
	/* A tenth of a second's worth of starts at most (but one), and one to
	 * begin with: any second then sees at most rate_limit + burst starts,
	 * 1.1 x rate_limit from 10 a second up and rate_limit + 1 below (a
	 * bucket starting full allowed twice the rate in the first second,
	 * which an API counting per second answers with 429s). */
	e->burst = opts->rate_limit / 10 < opts->concurrency ? opts->rate_limit / 10 : opts->concurrency;
	if (e->burst < 1.0)
		e->burst = 1.0;
	e->tokens = 1.0;
	e->refill_ms = http_now_ms();
	e->slow = 1.0;
	http_rng_seed(e, opts->seed);
}

static int http_alloc_parts(http_engine *e, const http_opts *opts)
{
	size_t n = strlen(opts->base_url);

	e->base_url = http_strdup(opts->base_url);
	if (!e->base_url)
		return -1;
	while (n > 0 && e->base_url[n - 1] == '/')
		e->base_url[--n] = '\0';
	if (opts->token && *opts->token) {
		e->token = http_strdup(opts->token);
		if (!e->token)
			return -1;
	}
	e->headers = http_build_headers(e->token);
	e->slots = calloc((size_t)opts->concurrency, sizeof *e->slots);
	e->free_slots = calloc((size_t)opts->concurrency, sizeof *e->free_slots);
	if (!e->headers || !e->slots || !e->free_slots)
		return -1;
	for (int i = 0; i < opts->concurrency; i++) {
		e->slots[i].engine = e;
		e->free_slots[e->nfree++] = opts->concurrency - 1 - i;
	}
	e->multi = curl_multi_init();
	if (!e->multi)
		return -1;
	if (curl_multi_setopt(e->multi, CURLMOPT_MAXCONNECTS, (long)opts->concurrency) != CURLM_OK)
		return -1;
	return 0;
}

http_engine *http_new(const http_opts *opts, http_done_fn done, void *cb_ctx, char *err, size_t errlen)
{
	http_engine *e = NULL;

	if (http_check_opts(opts, done, err, errlen) < 0)
		return NULL;
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
		goto fail;
	e = calloc(1, sizeof *e);
	if (!e) {
		curl_global_cleanup();
		goto fail;
	}
	atomic_init(&e->woken, false);
	e->done = done;
	e->cb_ctx = cb_ctx;
	http_apply_opts(e, opts);
	if (http_alloc_parts(e, opts) < 0) {
		http_free(e); /* also balances curl_global_init */
		goto fail;
	}
	return e;
fail:
	if (err && errlen)
		snprintf(err, errlen, "http: cannot set up the fetch engine (out of memory or curl init failed)");
	return NULL;
}

static void http_free_fifo(http_fifo *q)
{
	http_req *req;
	while ((req = http_fifo_pop(q)) != NULL)
		http_req_free(req);
}

void http_free(http_engine *e)
{
	if (!e)
		return;
	for (int i = 0; e->slots && i < e->concurrency; i++) {
		http_slot *slot = &e->slots[i];
		if (slot->req) {
			(void)curl_multi_remove_handle(e->multi, slot->easy);
			http_req_free(slot->req);
		}
		if (slot->easy)
			curl_easy_cleanup(slot->easy);
		free(slot->body);
	}
	if (e->multi)
		(void)curl_multi_cleanup(e->multi);
	http_free_fifo(&e->fresh);
	http_free_fifo(&e->again);
	for (size_t i = 0; i < e->nwaiting; i++)
		http_req_free(e->waiting[i]);
	free(e->waiting);
	free(e->slots);
	free(e->free_slots);
	curl_slist_free_all(e->headers);
	http_free_retired(e);
	if (e->token) {
		explicit_bzero(e->token, strlen(e->token));
		free(e->token);
	}
	free(e->base_url);
	free(e);
	curl_global_cleanup();
}

static http_req *http_req_new(const http_engine *e, const char *path, void *user)
{
	http_req *req = calloc(1, sizeof *req);
	const char *rel = path;
	size_t n;

	if (!req)
		return NULL;
	while (*rel == '/')
		rel++;
	n = strlen(e->base_url) + strlen(rel) + 2;
	req->url = malloc(n);
	req->path = http_strdup(path);
	if (!req->url || !req->path) {
		http_req_free(req);
		return NULL;
	}
	snprintf(req->url, n, "%s/%s", e->base_url, rel);
	req->user = user;
	return req;
}

int http_submit(http_engine *e, const char *path, void *user)
{
	http_req *req;

	if (!e || !path)
		return -1;
	if (e->capwaiting < e->pending + 1) {
		size_t cap = e->capwaiting ? e->capwaiting * 2 : 64;
		http_req **grown = realloc(e->waiting, cap * sizeof *grown);
		if (!grown)
			return -1;
		e->waiting = grown;
		e->capwaiting = cap;
	}
	req = http_req_new(e, path, user);
	if (!req)
		return -1;
	http_fifo_push(&e->fresh, req);
	e->pending++;
	return 0;
}

int http_run(http_engine *e, int timeout_ms)
{
	int64_t deadline = http_now_ms() + (timeout_ms > 0 ? timeout_ms : 0);

	for (;;) {
		int running = 0;
		int calls;
		int64_t now, wait;
		CURLMcode mc;

		if (http_start_ready(e) < 0)
			return -1;
		mc = curl_multi_perform(e->multi, &running);
		if (mc != CURLM_OK) {
			log_error("http: curl_multi_perform: %s", curl_multi_strerror(mc));
			return -1;
		}
		calls = http_drain(e);
		if (calls < 0)
			return -1;
		if (calls > 0) {
			/* keep the pipe full while the caller handles the results */
			if (http_start_ready(e) < 0)
				return -1;
			mc = curl_multi_perform(e->multi, &running);
			return mc == CURLM_OK ? calls : -1;
		}
		if (atomic_exchange(&e->woken, false))
			return 0;
		now = http_now_ms();
		if (now >= deadline)
			return 0;
		wait = http_min64(deadline - now, http_next_wake_ms(e, now));
		mc = curl_multi_poll(e->multi, NULL, 0, (int)http_min64(wait, INT_MAX), NULL);
		if (mc != CURLM_OK) {
			log_error("http: curl_multi_poll: %s", curl_multi_strerror(mc));
			return -1;
		}
	}
}

void http_wakeup(http_engine *e)
{
	if (!e)
		return;
	atomic_store(&e->woken, true);
	(void)curl_multi_wakeup(e->multi);
}

size_t http_pending(const http_engine *e)
{
	return e ? e->pending : 0;
}

int http_set_token(http_engine *e, const char *token)
{
	char *copy = NULL;
	struct curl_slist *headers;
	http_retired *old = NULL;

	if (!e || !http_token_ok(token))
		return -1;
	if (token && *token) {
		copy = http_strdup(token);
		if (!copy)
			return -1;
	}
	headers = http_build_headers(copy);
	if (e->inflight > 0)
		old = malloc(sizeof *old);
	if (!headers || (e->inflight > 0 && !old)) {
		curl_slist_free_all(headers);
		free(old);
		free(copy);
		return -1;
	}
	if (old) {
		old->headers = e->headers;
		old->next = e->retired;
		e->retired = old;
	} else {
		curl_slist_free_all(e->headers);
	}
	e->headers = headers;
	/* the old token stays known to http_redact only until replaced */
	if (e->token) {
		explicit_bzero(e->token, strlen(e->token));
		free(e->token);
	}
	e->token = copy;
	return 0;
}

void http_get_stats(const http_engine *e, http_stats *out)
{
	if (!out)
		return;
	if (!e) {
		memset(out, 0, sizeof *out);
		return;
	}
	*out = e->stats;
}
