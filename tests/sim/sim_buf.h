/* sim_buf.h — a growable byte buffer with JSON writing helpers for bloomsim.
 *
 * A buffer that fails to grow remembers it (oom) and ignores further writes;
 * check sim_buf_ok() once at the end instead of after every append. */
#ifndef BLOOMSIM_SIM_BUF_H
#define BLOOMSIM_SIM_BUF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct sim_buf {
	char *data; /* NUL-terminated when len > 0 or after any append */
	size_t len;
	size_t cap;
	bool oom;
} sim_buf;

/* Initialise an empty buffer (no allocation). */
void sim_buf_init(sim_buf *b);

/* Free the buffer's memory and reset it to empty; NULL is a no-op. */
void sim_buf_free(sim_buf *b);

/* Forget the content but keep the memory. */
void sim_buf_clear(sim_buf *b);

/* True unless an allocation failed since init/clear. */
bool sim_buf_ok(const sim_buf *b);

/* Append len raw bytes. */
void sim_buf_add(sim_buf *b, const void *data, size_t len);

/* Append a C string. */
void sim_buf_adds(sim_buf *b, const char *s);

/* Append printf-formatted text. Written here for speed: d i u s c and %%
 * with the 0 and - flags, a width (or *), a precision for s, and the l, ll,
 * z and j lengths; e f g (and their capitals) go to snprintf. Any other
 * conversion is appended as written. */
void sim_buf_addf(sim_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Append len bytes as a quoted JSON string: quote, backslash and control
 * characters (NUL included, as \u0000) are escaped, other bytes kept. */
void sim_buf_add_jstr(sim_buf *b, const char *s, size_t len);

/* Append a C string as a quoted JSON string. */
void sim_buf_add_jstrs(sim_buf *b, const char *s);

/* Append an integer. */
void sim_buf_add_int(sim_buf *b, int64_t v);

/* Append a finite number in its shortest exact-enough form (%.15g). */
void sim_buf_add_num(sim_buf *b, double v);

/* Take the content: returns a malloc'd NUL-terminated string that the caller
 * frees and stores its length in *len, leaving the buffer empty. Returns NULL
 * (and frees the content) when an allocation had failed. */
char *sim_buf_steal(sim_buf *b, size_t *len);

#endif
