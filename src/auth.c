/* auth.c — login at the token endpoint, the token cache file, renewal (see auth.h). */
#include "auth.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <curl/curl.h>

#include "http.h"
#include "log.h"

#define AUTH_BODY_MAX (64 * 1024)  /* a token answer is a few hundred bytes */
#define AUTH_CACHE_MAX (64 * 1024)
#define AUTH_TOKEN_MAX 8192
#define AUTH_TIMEOUT_MS 30000 /* timeout_ms when opts give none */
#define AUTH_TOTAL_MAX_MS 60000 /* a login's whole transfer, unless timeout_ms is longer */
#define AUTH_BACKOFF_MS 500
#define AUTH_RETRY_AFTER_MAX_MS 60000 /* the longest Retry-After a login waits */
#define AUTH_NAP_MS 100               /* waits are cut in naps this long to see a signal */

/* ---- small helpers ---- */

void auth_token_free(char *token)
{
	if (!token)
		return;
	explicit_bzero(token, strlen(token));
	free(token);
}

/* A token goes into an HTTP header: printable ASCII without spaces only. */
static bool auth_token_ok(const char *token)
{
	size_t len = strlen(token);
	if (len == 0 || len > AUTH_TOKEN_MAX)
		return false;
	for (const unsigned char *p = (const unsigned char *)token; *p; p++)
		if (*p <= 0x20 || *p >= 0x7F)
			return false;
	return true;
}

static int auth_margin(const auth_opts *o)
{
	return o->renew_margin_s > 0 ? o->renew_margin_s : AUTH_RENEW_MARGIN_S;
}

static bool auth_cancelled(const auth_opts *o)
{
	return (o->cancel && atomic_load(o->cancel)) || (o->stop && atomic_load(o->stop));
}

/* Sleeps ms, or less when a signal asks us to stop. */
static void auth_sleep_ms(const auth_opts *o, int ms)
{
	while (ms > 0 && !auth_cancelled(o)) {
		int nap = ms < AUTH_NAP_MS ? ms : AUTH_NAP_MS;
		struct timespec ts = {0, (long)nap * 1000000L};
		nanosleep(&ts, NULL);
		ms -= nap;
	}
}

/* libcurl's progress callback: a non-zero answer aborts the transfer. */
static int auth_on_progress(void *clientp, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
			    curl_off_t ulnow)
{
	(void)dltotal, (void)dlnow, (void)ultotal, (void)ulnow;
	return auth_cancelled(clientp) ? 1 : 0;
}

/* ---- the cache file ---- */

/* Reads the cache; returns a token (malloc'd) when it is for this URL and
 * user, else NULL (a missing or unusable cache is not an error). */
static char *auth_cache_read(const auth_opts *o, time_t *expires)
{
	char *token = NULL;
	json_error_t jerr;
	if (!o->cache_path)
		return NULL;
	FILE *f = fopen(o->cache_path, "re");
	if (!f) {
		if (errno != ENOENT)
			log_warn("cannot read the token cache %s: %s", o->cache_path, strerror(errno));
		return NULL;
	}
	json_t *doc = json_loadf(f, 0, &jerr);
	fclose(f);
	const char *url = json_string_value(json_object_get(doc, "token_url"));
	const char *user = json_string_value(json_object_get(doc, "username"));
	const char *tok = json_string_value(json_object_get(doc, "access_token"));
	json_t *exp = json_object_get(doc, "expires_at");
	if (!doc || !url || !user || !tok || !json_is_integer(exp) || !auth_token_ok(tok)) {
		log_warn("the token cache %s is not usable; logging in again", o->cache_path);
		goto done;
	}
	if (strcmp(url, o->token_url) != 0 || strcmp(user, o->username) != 0) {
		log_info("the token cache %s belongs to another user or token URL; logging in again", o->cache_path);
		goto done;
	}
	token = strdup(tok);
	*expires = (time_t)json_integer_value(exp);
	if (token)
		log_add_secret(token);
done:
	if (tok)
		explicit_bzero((char *)tok, strlen(tok));
	json_decref(doc);
	return token;
}

/* Creates the directory holding path (and its parents) with mode 0700. */
static int auth_make_dir(const char *path)
{
	char dir[PATH_MAX];
	const char *slash = strrchr(path, '/');
	if (!slash || slash == path)
		return 0;
	if ((size_t)(slash - path) >= sizeof(dir)) {
		errno = ENAMETOOLONG;
		return -1;
	}
	memcpy(dir, path, (size_t)(slash - path));
	dir[slash - path] = '\0';
	for (char *p = dir + 1;; p++) {
		bool end = *p == '\0';
		if (*p != '/' && !end)
			continue;
		*p = '\0';
		if (mkdir(dir, 0700) != 0 && errno != EEXIST)
			return -1;
		if (end)
			break;
		*p = '/';
	}
	return 0;
}

static int auth_write_all(int fd, const char *text, size_t len)
{
	while (len > 0) {
		ssize_t n = write(fd, text, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		text += n;
		len -= (size_t)n;
	}
	return 0;
}

/* Writes the cache atomically; returns -1 with errno set on failure. */
static int auth_cache_write(const auth_opts *o, const char *token, time_t expires)
{
	char tmp[PATH_MAX];
	int rc = -1, saved = 0, fd = -1;
	char *text = NULL;
	json_t *doc = json_pack("{s:s, s:s, s:s, s:I}", "token_url", o->token_url, "username", o->username,
				"access_token", token, "expires_at", (json_int_t)expires);
	if (doc)
		text = json_dumps(doc, JSON_COMPACT);
	json_decref(doc);
	if (!text) {
		errno = ENOMEM;
		return -1;
	}
	if (snprintf(tmp, sizeof(tmp), "%s.tmp.%ld", o->cache_path, (long)getpid()) >= (int)sizeof(tmp)) {
		errno = ENAMETOOLONG;
		goto done;
	}
	if (auth_make_dir(o->cache_path) != 0)
		goto done;
	unlink(tmp);
	fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0)
		goto done;
	size_t len = strlen(text);
	if (fchmod(fd, 0600) != 0 || auth_write_all(fd, text, len) != 0 || auth_write_all(fd, "\n", 1) != 0 ||
	    fsync(fd) != 0)
		goto done;
	if (close(fd) != 0) {
		fd = -1;
		goto done;
	}
	fd = -1;
	if (rename(tmp, o->cache_path) != 0)
		goto done;
	rc = 0;
done:
	saved = errno;
	if (fd >= 0)
		close(fd);
	if (rc != 0)
		unlink(tmp);
	explicit_bzero(text, strlen(text));
	free(text);
	errno = saved;
	return rc;
}

/* ---- the login request ---- */

typedef struct auth_body {
	char *data;
	size_t len;
	bool too_big;
} auth_body;

static size_t auth_on_data(char *ptr, size_t size, size_t nmemb, void *userdata)
{
	auth_body *b = userdata;
	size_t n = size * nmemb;
	if (b->len + n > AUTH_BODY_MAX) {
		b->too_big = true;
		return 0;
	}
	char *grown = realloc(b->data, b->len + n + 1);
	if (!grown)
		return 0;
	memcpy(grown + b->len, ptr, n);
	b->data = grown;
	b->len += n;
	b->data[b->len] = '\0';
	return n;
}

static void auth_body_free(auth_body *b)
{
	if (b->data) {
		explicit_bzero(b->data, b->len);
		free(b->data);
	}
	memset(b, 0, sizeof(*b));
}

/* "grant_type=password&userName=U&password=P", URL-encoded; malloc'd. */
static char *auth_form(CURL *easy, const auth_opts *o)
{
	char *user = curl_easy_escape(easy, o->username, 0);
	char *pass = curl_easy_escape(easy, o->password, 0);
	char *form = NULL;
	if (user && pass) {
		size_t n = strlen(user) + strlen(pass) + sizeof("grant_type=password&userName=&password=");
		form = malloc(n);
		if (form)
			snprintf(form, n, "grant_type=password&userName=%s&password=%s", user, pass);
	}
	if (pass)
		explicit_bzero(pass, strlen(pass));
	curl_free(user);
	curl_free(pass);
	return form;
}

/* One POST to the token URL. Returns the CURLcode; *status, *body and
 * *retry_after_ms (the answer's Retry-After, at most AUTH_RETRY_AFTER_MAX_MS;
 * 0 when absent) are filled. */
static CURLcode auth_post(const auth_opts *o, long *status, auth_body *body, int *retry_after_ms, char *curl_err)
{
	CURL *easy = curl_easy_init();
	struct curl_slist *headers = NULL;
	char *form = NULL;
	CURLcode rc = CURLE_OUT_OF_MEMORY;
	*status = 0;
	*retry_after_ms = 0;
	curl_err[0] = '\0';
	if (!easy)
		return rc;
	form = auth_form(easy, o);
	headers = curl_slist_append(NULL, "Accept: application/json");
	if (!form || !headers)
		goto done;
	curl_easy_setopt(easy, CURLOPT_URL, o->token_url);
	curl_easy_setopt(easy, CURLOPT_POSTFIELDS, form);
	curl_easy_setopt(easy, CURLOPT_HTTPHEADER, headers);
	curl_easy_setopt(easy, CURLOPT_USERAGENT, "bloomsync");
	curl_easy_setopt(easy, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(easy, CURLOPT_WRITEFUNCTION, auth_on_data);
	curl_easy_setopt(easy, CURLOPT_WRITEDATA, body);
	curl_easy_setopt(easy, CURLOPT_ERRORBUFFER, curl_err);
	curl_easy_setopt(easy, CURLOPT_NOPROGRESS, 0L);
	curl_easy_setopt(easy, CURLOPT_XFERINFOFUNCTION, auth_on_progress);
	curl_easy_setopt(easy, CURLOPT_XFERINFODATA, (void *)o);
	/* timeout_ms is the longest silence, as for every other request (a
	 * slow but steady answer passes); a cap on the whole transfer still
	 * ends an answer that never does. The cap is 10x timeout_ms, as for
	 * the engine's requests, but at most AUTH_TOTAL_MAX_MS (unless
	 * timeout_ms is longer): a token is a few hundred bytes, and a renewal
	 * mid-run holds up every transfer while it lasts. libcurl averages the
	 * speed over the last few seconds and counts the form sent, so an
	 * endpoint that never answers is given up on about 5 s later than
	 * timeout_ms. */
	int timeout_ms = o->timeout_ms > 0 ? o->timeout_ms : AUTH_TIMEOUT_MS;
	long total_ms = 10L * timeout_ms < AUTH_TOTAL_MAX_MS ? 10L * timeout_ms : AUTH_TOTAL_MAX_MS;
	rc = http_set_timeouts(easy, timeout_ms, total_ms > timeout_ms ? total_ms : timeout_ms);
	if (rc == CURLE_OK)
		rc = http_restrict_protocols(easy);
	if (rc != CURLE_OK)
		goto done;
	rc = curl_easy_perform(easy);
	curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, status);
	*retry_after_ms = http_retry_after_ms(easy, AUTH_RETRY_AFTER_MAX_MS);
done:
	if (form) {
		explicit_bzero(form, strlen(form));
		free(form);
	}
	curl_slist_free_all(headers);
	curl_easy_cleanup(easy);
	return rc;
}

/* A short error code from the answer ("invalid_grant"), or "" when there is
 * none or it does not look like one (never echo arbitrary text). */
static void auth_error_code(const json_t *doc, char *out, size_t outlen)
{
	const char *code = json_string_value(json_object_get(doc, "error"));
	out[0] = '\0';
	if (!code || strlen(code) >= outlen || strlen(code) > 40)
		return;
	for (const char *p = code; *p; p++)
		if (!islower((unsigned char)*p) && *p != '_')
			return;
	snprintf(out, outlen, "%s", code);
}

/* Reads expires_in: an integer, or a string of digits. */
static bool auth_expires_in(const json_t *doc, long long *out)
{
	const json_t *v = json_object_get(doc, "expires_in");
	if (json_is_integer(v)) {
		*out = json_integer_value(v);
	} else if (json_is_string(v)) {
		char *end;
		errno = 0;
		*out = strtoll(json_string_value(v), &end, 10);
		if (errno || end == json_string_value(v) || *end)
			return false;
	} else {
		return false;
	}
	return *out > 0 && *out <= 10LL * 365 * 24 * 3600;
}

/* Judges one answer of the token endpoint. */
/* token_url for messages: a password in it stays out of logs and errors */
static const char *url_shown(const auth_opts *o)
{
	return o->token_url_shown ? o->token_url_shown : o->token_url;
}

static auth_status auth_judge(const auth_opts *o, long status, const auth_body *body, char **token,
			      time_t *expires, char *err, size_t errlen)
{
	json_error_t jerr;
	char code[48] = "";
	long long ttl = 0;
	auth_status st = AUTH_FAILED;
	json_t *doc = body->data ? json_loadb(body->data, body->len, 0, &jerr) : NULL;
	if (status == 400 || status == 401 || status == 403)
		auth_error_code(doc, code, sizeof(code));
	if (strcmp(code, "invalid_grant") == 0 || status == 401 || status == 403) {
		snprintf(err, errlen, "the API rejected the username or password (user %s, HTTP %ld from %s)",
			 o->username, status, url_shown(o));
		st = AUTH_REJECTED;
	} else if (status != 200) {
		snprintf(err, errlen, "the token endpoint %s answered HTTP %ld%s%s", url_shown(o), status,
			 code[0] ? ": " : "", code);
	} else if (!json_is_object(doc)) {
		snprintf(err, errlen, "the token endpoint %s answered something that is not a JSON object",
			 url_shown(o));
	} else if (!json_string_value(json_object_get(doc, "access_token")) ||
		   !auth_token_ok(json_string_value(json_object_get(doc, "access_token")))) {
		snprintf(err, errlen, "the token endpoint %s answered without a usable access_token", url_shown(o));
	} else if (!auth_expires_in(doc, &ttl)) {
		snprintf(err, errlen, "the token endpoint %s answered without a usable expires_in", url_shown(o));
	} else {
		*token = strdup(json_string_value(json_object_get(doc, "access_token")));
		*expires = time(NULL) + (time_t)ttl;
		st = *token ? AUTH_OK : AUTH_FAILED;
		if (*token)
			log_add_secret(*token);
		else
			snprintf(err, errlen, "out of memory");
	}
	const char *tok = json_string_value(json_object_get(doc, "access_token"));
	if (tok)
		explicit_bzero((char *)tok, strlen(tok));
	json_decref(doc);
	return st;
}

static bool auth_worth_retrying(CURLcode rc, long status)
{
	if (rc != CURLE_OK)
		return rc != CURLE_OUT_OF_MEMORY && rc != CURLE_UNSUPPORTED_PROTOCOL && rc != CURLE_URL_MALFORMAT;
	return status == 408 || status == 429 || status >= 500;
}

/* Logs in, retrying what is worth retrying. */
static auth_status auth_login(const auth_opts *o, char **token, time_t *expires, char *err, size_t errlen)
{
	char curl_err[CURL_ERROR_SIZE];
	auth_status st = AUTH_FAILED;
	int delay = AUTH_BACKOFF_MS;
	for (int attempt = 0;; attempt++) {
		auth_body body = {0};
		long status = 0;
		int retry_after_ms = 0;
		CURLcode rc = auth_post(o, &status, &body, &retry_after_ms, curl_err);
		if (auth_cancelled(o)) {
			auth_body_free(&body);
			snprintf(err, errlen, "%s while logging in",
				 o->cancel && atomic_load(o->cancel) ? "cancelled by a signal" : "the run stopped");
			return AUTH_CANCELLED;
		}
		if (rc == CURLE_OK) {
			st = auth_judge(o, status, &body, token, expires, err, errlen);
		} else {
			snprintf(err, errlen, "cannot reach the token endpoint %s: %s", url_shown(o),
				 body.too_big ? "the answer is too large"
				 : curl_err[0] ? curl_err
					       : curl_easy_strerror(rc));
			st = AUTH_FAILED;
		}
		auth_body_free(&body);
		if (st != AUTH_FAILED || !auth_worth_retrying(rc, status) || attempt >= o->max_retries)
			break;
		int wait = retry_after_ms > delay ? retry_after_ms : delay;
		log_warn("%s; trying again in %d ms", err, wait);
		auth_sleep_ms(o, wait);
		delay = delay < 8000 ? delay * 2 : 8000;
	}
	if (st != AUTH_OK) {
		/* the message must not carry a secret, whatever the server sent */
		char safe[512];
		log_redact(err, safe, sizeof(safe));
		snprintf(err, errlen, "%s", safe);
	}
	return st;
}

/* ---- the public face ---- */

auth_status auth_get_token(const auth_opts *o, bool force_renew, char **token_out, time_t *expires_out,
			   auth_origin *origin_out, char *err, size_t errlen)
{
	time_t expires = 0;
	char *token = NULL;
	*token_out = NULL;
	err[0] = '\0';
	if (!o || !o->token_url || !o->username || !o->password) {
		snprintf(err, errlen, "no username and password to log in with");
		return AUTH_FAILED;
	}
	if (!force_renew) {
		token = auth_cache_read(o, &expires);
		if (token && expires - time(NULL) > auth_margin(o)) {
			*token_out = token;
			*expires_out = expires;
			if (origin_out)
				*origin_out = AUTH_FROM_CACHE;
			return AUTH_OK;
		}
		if (token)
			log_info("the cached API token %s; logging in again",
				 expires <= time(NULL) ? "has expired" : "expires within the renewal margin");
		auth_token_free(token);
		token = NULL;
	}
	auth_status st = auth_login(o, &token, &expires, err, errlen);
	if (st != AUTH_OK)
		return st;
	if (o->cache_path && auth_cache_write(o, token, expires) != 0)
		log_warn("cannot write the token cache %s: %s (the token is used for this run only)", o->cache_path,
			 strerror(errno));
	*token_out = token;
	*expires_out = expires;
	if (origin_out)
		*origin_out = AUTH_FROM_LOGIN;
	return AUTH_OK;
}
