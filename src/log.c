/* log.c — leveled logging to stderr (text or JSON lines) with redaction.
 *
 * A line is built in memory in four steps: format the message, redact it
 * (secrets and Authorization values), then escape it for the output format
 * while cutting it at LOG_MSG_MAX bytes on a UTF-8 boundary, and finally
 * write the whole line with one write(2). Redaction runs before the cut, so
 * a secret straddling the cut can never leak a prefix. */
#include "log.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#define LOG_MSG_MAX 8192     /* bytes of (redacted) message kept per line */
#define LOG_FIELD_MAX 256    /* bytes kept of stream and unit */
#define LOG_SECRET_MIN 4     /* shorter secrets are ignored (see log.h) */
#define LOG_REDACTED "[redacted]"
#define LOG_TRUNCATED " [truncated]"

static atomic_int log_cur_level = LOG_INFO;
static atomic_int log_cur_format = LOG_FORMAT_TEXT;
static atomic_llong log_run_id = 0;

static pthread_mutex_t log_secrets_lock = PTHREAD_MUTEX_INITIALIZER;
static char **log_secrets;   /* sorted longest first, so the longest match wins */
static size_t log_secret_count;

static const char *const log_level_names[] = { "error", "warn", "info", "debug" };

/* ---- small growable buffer ---- */

typedef struct log_buf {
	char *data;
	size_t len;
	size_t cap;
	bool failed; /* an allocation failed; the content is incomplete */
} log_buf;

static bool log_buf_reserve(log_buf *b, size_t extra)
{
	if (b->failed)
		return false;
	if (b->len + extra + 1 <= b->cap)
		return true;
	size_t cap = b->cap ? b->cap : 256;
	while (cap < b->len + extra + 1)
		cap *= 2;
	char *data = realloc(b->data, cap);
	if (!data) {
		b->failed = true;
		return false;
	}
	b->data = data;
	b->cap = cap;
	b->data[b->len] = '\0'; /* an empty buffer is a valid empty string */
	return true;
}

static void log_buf_add(log_buf *b, const char *s, size_t n)
{
	if (!log_buf_reserve(b, n))
		return;
	memcpy(b->data + b->len, s, n);
	b->len += n;
	b->data[b->len] = '\0';
}

static void log_buf_str(log_buf *b, const char *s)
{
	log_buf_add(b, s, strlen(s));
}

/* ---- levels and formats ---- */

void log_init(log_level level, log_format format)
{
	if (level < LOG_ERROR || level > LOG_DEBUG)
		level = LOG_INFO;
	if (format != LOG_FORMAT_JSON)
		format = LOG_FORMAT_TEXT;
	atomic_store(&log_cur_level, (int)level);
	atomic_store(&log_cur_format, (int)format);
}

log_format log_current_format(void)
{
	return (log_format)atomic_load(&log_cur_format);
}

int log_level_parse(const char *name, log_level *out)
{
	if (!name)
		return -1;
	for (size_t i = 0; i < sizeof log_level_names / sizeof log_level_names[0]; i++) {
		if (strcmp(name, log_level_names[i]) == 0) {
			*out = (log_level)i;
			return 0;
		}
	}
	return -1;
}

int log_format_parse(const char *name, log_format *out)
{
	if (!name)
		return -1;
	if (strcmp(name, "text") == 0) {
		*out = LOG_FORMAT_TEXT;
		return 0;
	}
	if (strcmp(name, "json") == 0) {
		*out = LOG_FORMAT_JSON;
		return 0;
	}
	return -1;
}

const char *log_level_name(log_level level)
{
	if (level < LOG_ERROR || level > LOG_DEBUG)
		return "unknown";
	return log_level_names[level];
}

bool log_enabled(log_level level)
{
	return (int)level <= atomic_load(&log_cur_level);
}

void log_set_run_id(long long run_id)
{
	atomic_store(&log_run_id, run_id);
}

/* ---- secrets ---- */

void log_add_secret(const char *secret)
{
	if (!secret || strlen(secret) < LOG_SECRET_MIN)
		return;
	pthread_mutex_lock(&log_secrets_lock);
	for (size_t i = 0; i < log_secret_count; i++) {
		if (strcmp(log_secrets[i], secret) == 0)
			goto done;
	}
	char *copy = strdup(secret);
	char **grown = realloc(log_secrets, (log_secret_count + 1) * sizeof *grown);
	if (!copy || !grown) {
		/* Out of memory: the secret cannot be tracked. Say so without it. */
		free(copy);
		if (grown)
			log_secrets = grown;
		static const char msg[] = "log: out of memory registering a secret\n";
		ssize_t ignored = write(STDERR_FILENO, msg, sizeof msg - 1);
		(void)ignored;
		goto done;
	}
	log_secrets = grown;
	size_t len = strlen(copy);
	size_t pos = log_secret_count;
	while (pos > 0 && strlen(log_secrets[pos - 1]) < len) {
		log_secrets[pos] = log_secrets[pos - 1];
		pos--;
	}
	log_secrets[pos] = copy;
	log_secret_count++;
done:
	pthread_mutex_unlock(&log_secrets_lock);
}

void log_shutdown(void)
{
	pthread_mutex_lock(&log_secrets_lock);
	for (size_t i = 0; i < log_secret_count; i++)
		free(log_secrets[i]);
	free(log_secrets);
	log_secrets = NULL;
	log_secret_count = 0;
	pthread_mutex_unlock(&log_secrets_lock);
}

/* ---- redaction ---- */

/* If an Authorization header name starts at s ("Authorization:", also in
 * quoted form like "Authorization": or 'authorization' =), returns the
 * length of the name and separator including the spaces after it;
 * otherwise 0. */
static size_t log_auth_prefix(const char *s)
{
	static const char name[] = "authorization";
	size_t n = sizeof name - 1;
	if (strncasecmp(s, name, n) != 0)
		return 0;
	if (s[n] == '"' || s[n] == '\'')
		n++;
	while (s[n] == ' ' || s[n] == '\t')
		n++;
	if (s[n] != ':' && s[n] != '=')
		return 0;
	n++;
	while (s[n] == ' ' || s[n] == '\t')
		n++;
	return n;
}

/* Length of the header value at s: up to the end of line or a quote. When
 * the value itself is quoted, *quote gets the opening quote (copied as is). */
static size_t log_auth_value(const char *s, char *quote)
{
	size_t n = 0;
	*quote = '\0';
	if (s[0] == '"' || s[0] == '\'') {
		*quote = s[0];
		n = 1;
	}
	size_t start = n;
	while (s[n] && s[n] != '\r' && s[n] != '\n' && s[n] != '"' && s[n] != '\'')
		n++;
	return n > start ? n : 0;
}

/* Appends src to b with secrets and Authorization values replaced.
 * The caller holds log_secrets_lock. */
static void log_redact_locked(const char *src, log_buf *b)
{
	size_t i = 0;
	while (src[i]) {
		size_t head = log_auth_prefix(src + i);
		if (head) {
			char quote;
			log_buf_add(b, src + i, head);
			i += head;
			size_t value = log_auth_value(src + i, &quote);
			if (value) {
				if (quote)
					log_buf_add(b, &quote, 1);
				log_buf_str(b, LOG_REDACTED);
				i += value;
			}
			continue;
		}
		size_t matched = 0;
		for (size_t k = 0; k < log_secret_count; k++) {
			const char *secret = log_secrets[k];
			if (secret[0] == src[i] && strncmp(src + i, secret, strlen(secret)) == 0) {
				matched = strlen(secret);
				break;
			}
		}
		if (matched) {
			log_buf_str(b, LOG_REDACTED);
			i += matched;
		} else {
			log_buf_add(b, src + i, 1);
			i++;
		}
	}
}

char *log_redact_dup(const char *src)
{
	log_buf b = { 0 };
	log_buf_reserve(&b, strlen(src));
	pthread_mutex_lock(&log_secrets_lock);
	log_redact_locked(src, &b);
	pthread_mutex_unlock(&log_secrets_lock);
	if (b.failed || !b.data) {
		free(b.data);
		return b.failed ? NULL : strdup("");
	}
	return b.data;
}

void log_redact(const char *src, char *dst, size_t dstlen)
{
	if (!dst || dstlen == 0)
		return;
	dst[0] = '\0';
	if (!src)
		return;
	char *red = log_redact_dup(src);
	if (!red) {
		/* Without memory we cannot prove the text is clean: drop it. */
		snprintf(dst, dstlen, "%s", LOG_REDACTED);
		return;
	}
	size_t len = strlen(red);
	if (len >= dstlen) {
		len = dstlen - 1;
		/* Do not leave half a UTF-8 sequence at the end. */
		while (len > 0 && ((unsigned char)red[len] & 0xC0) == 0x80)
			len--;
	}
	memcpy(dst, red, len);
	dst[len] = '\0';
	free(red);
}

/* ---- escaping ---- */

/* Length of the valid UTF-8 sequence at s (at most avail bytes), or 0 when
 * the bytes there are not valid UTF-8 (overlong forms, surrogates and code
 * points above U+10FFFF included). */
static size_t log_utf8_len(const unsigned char *s, size_t avail)
{
	unsigned char c = s[0];
	size_t n;
	uint32_t cp;
	if (c < 0x80)
		return 1;
	if (c >= 0xC2 && c <= 0xDF) {
		n = 2;
		cp = c & 0x1F;
	} else if (c >= 0xE0 && c <= 0xEF) {
		n = 3;
		cp = c & 0x0F;
	} else if (c >= 0xF0 && c <= 0xF4) {
		n = 4;
		cp = c & 0x07;
	} else {
		return 0;
	}
	if (avail < n)
		return 0;
	for (size_t i = 1; i < n; i++) {
		if ((s[i] & 0xC0) != 0x80)
			return 0;
		cp = (cp << 6) | (s[i] & 0x3F);
	}
	if ((n == 3 && cp < 0x800) || (n == 4 && (cp < 0x10000 || cp > 0x10FFFF)))
		return 0;
	if (cp >= 0xD800 && cp <= 0xDFFF)
		return 0;
	return n;
}

/* Appends s to b, escaped for the format: JSON string escapes, or in text
 * \n, \r and \xHH for control characters so one record stays one line.
 * Invalid UTF-8 becomes U+FFFD. Stops at a character boundary once max
 * bytes of s have been taken, and then appends LOG_TRUNCATED. */
static void log_escape(log_buf *b, const char *s, size_t max, log_format format)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t len = strlen(s), i = 0;
	while (i < len) {
		size_t n = log_utf8_len(p + i, len - i);
		if (i + (n ? n : 1) > max) {
			log_buf_str(b, LOG_TRUNCATED);
			return;
		}
		unsigned char c = p[i];
		char esc[8];
		if (n == 0) {
			log_buf_str(b, "\xEF\xBF\xBD");
			i++;
			continue;
		}
		if (n > 1) {
			log_buf_add(b, s + i, n);
		} else if (c == '\n') {
			log_buf_str(b, "\\n");
		} else if (c == '\r') {
			log_buf_str(b, "\\r");
		} else if (c == '\t') {
			log_buf_str(b, format == LOG_FORMAT_JSON ? "\\t" : "\t");
		} else if (format == LOG_FORMAT_JSON && (c == '"' || c == '\\')) {
			esc[0] = '\\';
			esc[1] = (char)c;
			log_buf_add(b, esc, 2);
		} else if (c < 0x20 || c == 0x7F) {
			snprintf(esc, sizeof esc, format == LOG_FORMAT_JSON ? "\\u%04x" : "\\x%02x", c);
			log_buf_str(b, esc);
		} else {
			log_buf_add(b, s + i, 1);
		}
		i += n;
	}
}

/* Appends the redacted, escaped, cut form of s. */
static void log_add_text(log_buf *b, const char *s, size_t max, log_format format)
{
	char *red = log_redact_dup(s);
	if (!red) {
		log_buf_str(b, LOG_REDACTED);
		return;
	}
	log_escape(b, red, max, format);
	free(red);
}

/* ---- line assembly ---- */

static void log_add_time(log_buf *b)
{
	struct timespec now;
	struct tm tm;
	char stamp[40];
	clock_gettime(CLOCK_REALTIME, &now);
	gmtime_r(&now.tv_sec, &tm);
	size_t n = strftime(stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(stamp + n, sizeof stamp - n, ".%03ldZ", now.tv_nsec / 1000000L);
	log_buf_str(b, stamp);
}

static void log_build_text(log_buf *b, log_level level, const char *stream, const char *unit,
			   const char *msg)
{
	long long run_id = atomic_load(&log_run_id);
	log_add_time(b);
	log_buf_str(b, " ");
	log_buf_str(b, log_level_name(level));
	if (run_id) {
		char num[32];
		snprintf(num, sizeof num, " run=%lld", run_id);
		log_buf_str(b, num);
	}
	if (stream) {
		log_buf_str(b, " stream=");
		log_add_text(b, stream, LOG_FIELD_MAX, LOG_FORMAT_TEXT);
	}
	if (unit) {
		log_buf_str(b, " unit=");
		log_add_text(b, unit, LOG_FIELD_MAX, LOG_FORMAT_TEXT);
	}
	log_buf_str(b, " ");
	log_add_text(b, msg, LOG_MSG_MAX, LOG_FORMAT_TEXT);
	log_buf_str(b, "\n");
}

static void log_build_json(log_buf *b, log_level level, const char *stream, const char *unit,
			   const char *msg)
{
	long long run_id = atomic_load(&log_run_id);
	log_buf_str(b, "{\"time\":\"");
	log_add_time(b);
	log_buf_str(b, "\",\"level\":\"");
	log_buf_str(b, log_level_name(level));
	log_buf_str(b, "\"");
	if (run_id) {
		char num[48];
		snprintf(num, sizeof num, ",\"run_id\":%lld", run_id);
		log_buf_str(b, num);
	}
	if (stream) {
		log_buf_str(b, ",\"stream\":\"");
		log_add_text(b, stream, LOG_FIELD_MAX, LOG_FORMAT_JSON);
		log_buf_str(b, "\"");
	}
	if (unit) {
		log_buf_str(b, ",\"unit\":\"");
		log_add_text(b, unit, LOG_FIELD_MAX, LOG_FORMAT_JSON);
		log_buf_str(b, "\"");
	}
	log_buf_str(b, ",\"msg\":\"");
	log_add_text(b, msg, LOG_MSG_MAX, LOG_FORMAT_JSON);
	log_buf_str(b, "\"}\n");
}

static void log_write_all(const char *data, size_t len)
{
	while (len > 0) {
		ssize_t n = write(STDERR_FILENO, data, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return;
		data += n;
		len -= (size_t)n;
	}
}

/* Formats fmt into a malloc'd string; NULL when out of memory. */
static char *log_format_msg(const char *fmt, va_list ap)
{
	char small[512];
	va_list copy;
	va_copy(copy, ap);
	int n = vsnprintf(small, sizeof small, fmt, copy);
	va_end(copy);
	if (n < 0)
		return strdup("(unformattable log message)");
	if ((size_t)n < sizeof small)
		return strdup(small);
	char *big = malloc((size_t)n + 1);
	if (big)
		vsnprintf(big, (size_t)n + 1, fmt, ap);
	return big;
}

void log_emit(log_level level, const char *stream, const char *unit, const char *fmt, ...)
{
	if (!log_enabled(level) || !fmt)
		return;
	int saved_errno = errno;
	log_buf line = { 0 };
	va_list ap;
	va_start(ap, fmt);
	char *msg = log_format_msg(fmt, ap);
	va_end(ap);
	if (!msg)
		goto oom;
	if (atomic_load(&log_cur_format) == LOG_FORMAT_JSON)
		log_build_json(&line, level, stream, unit, msg);
	else
		log_build_text(&line, level, stream, unit, msg);
	if (line.failed)
		goto oom;
	log_write_all(line.data, line.len);
	goto done;
oom: {
	static const char oom_msg[] = "log: out of memory, a log line was dropped\n";
	log_write_all(oom_msg, sizeof oom_msg - 1);
}
done:
	free(msg);
	free(line.data);
	errno = saved_errno;
}
