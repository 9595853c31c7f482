/* auth.h — unattended authentication: logs in with a username and password
 * at the token endpoint, caches the token with its expiry in a file, and
 * renews it before (or once after) it expires.
 *
 * Bloom Growth tokens live two weeks and there is no refresh token, so the
 * only way to keep a cron job working is to log in again. The cache is a
 * small JSON file (mode 0600, written atomically: temp file + rename, its
 * directory created 0700 when missing) naming the token URL and user it
 * belongs to; a cache of another user or endpoint is ignored. A file, not a
 * table of the mirror schema, because the mirror is read by reporting users
 * and must never hold a credential, and because `check` and a run must be
 * able to authenticate before (or without) the database.
 *
 * Every token obtained or read is registered with log_add_secret. The
 * password and tokens never appear in an error message. */
#ifndef BLOOMSYNC_SRC_AUTH_H
#define BLOOMSYNC_SRC_AUTH_H

#include <stdbool.h>
#include <stdatomic.h>
#include <stddef.h>
#include <time.h>

#define AUTH_RENEW_MARGIN_S (24 * 3600) /* renew a token expiring within a day */

typedef struct auth_opts {
	const char *token_url;  /* e.g. "https://app.bloomgrowth.com/token" */
	const char *token_url_shown; /* token_url as messages show it (a password in it masked); NULL: token_url */
	const char *username;
	const char *password;
	const char *cache_path; /* the token cache file; NULL: no cache */
	int timeout_ms;         /* the longest silence of one login request, as
	                         * http_opts.timeout_ms (10x this in all); 0 = 30000 */
	int max_retries;        /* of a login on 429, 5xx or a transport error */
	int renew_margin_s;     /* 0 = AUTH_RENEW_MARGIN_S */
	atomic_int *cancel; /* may be NULL; once set (by a signal handler, read
	                     * on any thread: hence atomic) a login gives up at once */
	atomic_bool *stop;  /* may be NULL; the same, set by the caller's own
	                     * stop (a run that failed) rather than a signal */
} auth_opts;

typedef enum {
	AUTH_OK = 0,
	AUTH_REJECTED, /* the API rejected the username or password (exit 4) */
	AUTH_FAILED,   /* the token endpoint could not be reached or answered nonsense */
	AUTH_CANCELLED, /* *opts->cancel was set while logging in */
} auth_status;

typedef enum { AUTH_FROM_CACHE = 0, AUTH_FROM_LOGIN } auth_origin;

/* Returns a token valid for more than the renewal margin: the cached one
 * when it belongs to this user and URL and is not due for renewal (and
 * force_renew is false), else a new one from a login, which is then cached.
 * A cache that cannot be written is only warned about. On AUTH_OK stores
 * the token in *token_out (malloc'd, the caller frees it with auth_token_free),
 * its absolute expiry in *expires_out and where it came from in *origin_out
 * (may be NULL). On error returns AUTH_REJECTED or AUTH_FAILED, writes a
 * lowercase message without any secret into err, and leaves *token_out NULL. */
auth_status auth_get_token(const auth_opts *opts, bool force_renew, char **token_out, time_t *expires_out,
			   auth_origin *origin_out, char *err, size_t errlen) __attribute__((warn_unused_result));

/* Wipes and frees a token from auth_get_token; auth_token_free(NULL) is a no-op. */
void auth_token_free(char *token);

#endif
