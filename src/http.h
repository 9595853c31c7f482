/* http.h — the fetch engine: one libcurl multi handle, bounded concurrency,
 * a token-bucket rate limit, retries with capped full-jitter backoff and
 * Retry-After, keep-alive connection reuse.
 *
 * The engine decides in one place what each answer means:
 *   2xx            -> HTTP_OK, handed to the done callback
 *   404            -> HTTP_NOT_FOUND
 *   401, 403       -> HTTP_AUTH (the key was rejected; no retry)
 *   408, 429, 5xx, timeouts, resets, other transport errors
 *                  -> retried up to max_retries, then HTTP_FAILED
 *   other 4xx      -> HTTP_FAILED at once
 * 429 and 503 honour Retry-After (seconds or HTTP date, capped) by pausing
 * new requests, and lower the request rate for a while.
 * The Bearer token is never logged and never part of an error message.
 *
 * Not thread-safe except http_wakeup: one thread drives the engine. */
#ifndef BLOOMSYNC_SRC_HTTP_H
#define BLOOMSYNC_SRC_HTTP_H

#include <stddef.h>
#include <stdint.h>

#include <curl/curl.h>

typedef struct http_engine http_engine;

typedef struct http_opts {
	const char *base_url;   /* requests go to base_url "/" path; copied */
	const char *token;      /* sent as "Authorization: Bearer <token>"; copied */
	int concurrency;        /* requests in flight at most (>= 1) */
	double rate_limit;      /* requests started per second at most; 0 = no limit */
	int timeout_ms;         /* an attempt fails after this long without a byte
	                         * (whole seconds, rounded up) or 10x this in all;
	                         * 0 = no timeout */
	int max_retries;        /* retries after the first attempt */
	unsigned seed;          /* jitter RNG seed; 0 = seeded from time and pid */
	int retry_base_ms;      /* backoff base; 0 = 250 */
	int retry_cap_ms;       /* backoff cap; 0 = 30000 */
	int retry_after_cap_ms; /* cap on an honoured Retry-After; 0 = 120000 */
	size_t body_budget;     /* bytes the buffers of all bodies may hold together
	                         * (in flight, and kept between transfers): an
	                         * attempt that would grow past it is retried
	                         * later; 0 = 320 MiB, room for the largest body
	                         * (256 MiB) beside what slots keep */
} http_opts;

typedef enum {
	HTTP_OK = 0,     /* 2xx; body holds the response */
	HTTP_NOT_FOUND,  /* 404 */
	HTTP_AUTH,       /* 401 or 403 */
	HTTP_FAILED,     /* out of retries, or a status that is not retried */
} http_outcome;

typedef struct http_response {
	http_outcome outcome;
	long status;          /* last HTTP status; 0 when no response arrived */
	const char *body;     /* NUL-terminated; valid only during the callback */
	size_t body_len;
	int attempts;         /* attempts made for this request, >= 1 */
	int retries;          /* of them, retries after a failure (not the first, nor a resend after a 401) */
	const char *error;    /* for HTTP_FAILED: what went wrong, e.g. "HTTP 500" or curl's text */
	const char *path;     /* the path requested */
} http_response;

typedef enum { HTTP_CB_DONE = 0, HTTP_CB_RETRY, HTTP_CB_RESEND } http_cb_result;

/* Called from http_run for each request that finished. Returning
 * HTTP_CB_RETRY (say, the body was truncated JSON) makes the engine fetch it
 * again as a retry with backoff; when retries are exhausted the callback is
 * called once more with outcome HTTP_FAILED (and the last body, if any).
 * HTTP_CB_RESEND (the token was renewed after a 401) sends it again at once
 * without using up a retry, HTTP_RESENDS_MAX times per request at most;
 * past that it counts as HTTP_CB_RETRY. */
#define HTTP_RESENDS_MAX 2
typedef http_cb_result (*http_done_fn)(void *cb_ctx, void *user, const http_response *resp);

typedef struct http_stats {
	uint64_t requests;      /* attempts sent */
	uint64_t retries;       /* attempts that were retries */
	uint64_t throttled;     /* 429 and 503 answers */
	uint64_t server_errors; /* other 5xx answers */
	uint64_t transport_errors; /* timeouts, resets, connection failures */
	int peak_inflight;      /* most transfers in flight at once */
	size_t peak_body_bytes; /* most bytes the body buffers held at once */
} http_stats;

/* Creates an engine. On error returns NULL with a message in err. */
http_engine *http_new(const http_opts *opts, http_done_fn done, void *cb_ctx, char *err, size_t errlen);

/* Aborts anything in flight and frees everything; http_free(NULL) is a no-op.
 * Callbacks are not called for aborted requests. */
void http_free(http_engine *engine);

/* Queues a GET of path (relative to base_url; copied). user comes back in
 * the callback. Returns 0, or -1 on allocation failure. */
int http_submit(http_engine *engine, const char *path, void *user) __attribute__((warn_unused_result));

/* Drives transfers for up to timeout_ms, returning earlier when at least one
 * callback ran or http_wakeup was called. Returns the number of callbacks
 * run, or -1 on a libcurl multi error. */
int http_run(http_engine *engine, int timeout_ms);

/* Thread-safe: makes a blocked http_run return soon. */
void http_wakeup(http_engine *engine);

/* Requests submitted and not yet finished (queued, in flight, or waiting to retry). */
size_t http_pending(const http_engine *engine);

/* Replaces the Bearer token for requests started from now on (copied). */
int http_set_token(http_engine *engine, const char *token);

void http_get_stats(const http_engine *engine, http_stats *out);

/* ---- for a module making its own curl requests (the login in auth.c) ---- */

/* Applies timeout_ms to easy as the engine does: the transfer fails after
 * timeout_ms without a byte (checked in whole seconds, rounded up) or after
 * total_ms in all (the engine gives its requests 10x timeout_ms), and
 * connecting after timeout_ms or 10 s, whichever is less; timeout_ms 0 = no
 * limit but the 10 s to connect. Returns the first setting curl refused. */
CURLcode http_set_timeouts(CURL *easy, int timeout_ms, long total_ms) __attribute__((warn_unused_result));

/* Limits easy to http and https, so no URL can make it speak another
 * protocol (file, ftp, ...). Returns curl's answer to the setting. */
CURLcode http_restrict_protocols(CURL *easy) __attribute__((warn_unused_result));

/* The Retry-After of the last response on easy (seconds or an HTTP date)
 * in milliseconds, at most cap_ms (> 0); 0 when there was none. */
int http_retry_after_ms(CURL *easy, int cap_ms);

#endif
