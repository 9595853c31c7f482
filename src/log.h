/* log.h — leveled logging to stderr, as text or JSON lines, with secret redaction.
 *
 * Every line carries the time, the level, the run id once one is set, and
 * optionally the stream and unit it concerns. Registered secrets (the API
 * key, passwords, tokens) and any "Authorization: ..." header value are
 * replaced by "[redacted]" before anything is written, at every level.
 * Thread-safe: one line is written with one write(2). */
#ifndef BLOOMSYNC_SRC_LOG_H
#define BLOOMSYNC_SRC_LOG_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>

typedef enum { LOG_ERROR = 0, LOG_WARN, LOG_INFO, LOG_DEBUG } log_level;
typedef enum { LOG_FORMAT_TEXT = 0, LOG_FORMAT_JSON } log_format;

/* Sets level and format; may be called again (after the config is read). */
void log_init(log_level level, log_format format);

/* The format lines are written in now. */
log_format log_current_format(void);

/* Parses "error" | "warn" | "info" | "debug"; returns -1 on an unknown name. */
int log_level_parse(const char *name, log_level *out);
/* Parses "text" | "json"; returns -1 on an unknown name. */
int log_format_parse(const char *name, log_format *out);
const char *log_level_name(log_level level);

/* Every later line carries this run id (0 clears it). */
void log_set_run_id(long long run_id);

/* Registers a secret that must never be written. The string is copied;
 * empty or very short strings (< 4 bytes) are ignored. */
void log_add_secret(const char *secret);

/* Frees the registered secrets (for leak-checker-clean exits). */
void log_shutdown(void);

bool log_enabled(log_level level);

/* Writes one line. stream and unit may be NULL. Prefer the macros below,
 * which skip formatting when the level is off. */
void log_emit(log_level level, const char *stream, const char *unit, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Copies src into dst (size dstlen, always NUL-terminated) with every
 * registered secret and Authorization header value replaced by "[redacted]".
 * Used by log_emit and by anything that stores error text (run records). */
void log_redact(const char *src, char *dst, size_t dstlen);

/* The same, whole: a malloc'd redacted copy of src (the caller frees it),
 * or NULL when out of memory. */
char *log_redact_dup(const char *src);

#define LOG_AT(level, stream, unit, ...)                       \
	do {                                                   \
		if (log_enabled(level))                        \
			log_emit(level, stream, unit, __VA_ARGS__); \
	} while (0)

#define log_error(...) LOG_AT(LOG_ERROR, NULL, NULL, __VA_ARGS__)
#define log_warn(...) LOG_AT(LOG_WARN, NULL, NULL, __VA_ARGS__)
#define log_info(...) LOG_AT(LOG_INFO, NULL, NULL, __VA_ARGS__)
#define log_debug(...) LOG_AT(LOG_DEBUG, NULL, NULL, __VA_ARGS__)

#endif
