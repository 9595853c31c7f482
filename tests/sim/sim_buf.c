/* sim_buf.c — growable byte buffer and JSON writing helpers. */
#include "sim_buf.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void sim_buf_init(sim_buf *b)
{
	b->data = NULL;
	b->len = 0;
	b->cap = 0;
	b->oom = false;
}

void sim_buf_free(sim_buf *b)
{
	if (b == NULL)
		return;
	free(b->data);
	sim_buf_init(b);
}

void sim_buf_clear(sim_buf *b)
{
	b->len = 0;
	b->oom = false;
	if (b->data != NULL)
		b->data[0] = '\0';
}

bool sim_buf_ok(const sim_buf *b)
{
	return !b->oom;
}

static bool reserve(sim_buf *b, size_t extra)
{
	size_t need;
	size_t cap;
	char *data;

	if (b->oom)
		return false;
	need = b->len + extra + 1;
	if (need <= b->cap)
		return true;
	cap = b->cap ? b->cap : 256;
	while (cap < need)
		cap *= 2;
	data = realloc(b->data, cap);
	if (data == NULL) {
		b->oom = true;
		return false;
	}
	b->data = data;
	b->cap = cap;
	return true;
}

void sim_buf_add(sim_buf *b, const void *data, size_t len)
{
	if (!reserve(b, len))
		return;
	if (len > 0)
		memcpy(b->data + b->len, data, len);
	b->len += len;
	b->data[b->len] = '\0';
}

void sim_buf_adds(sim_buf *b, const char *s)
{
	sim_buf_add(b, s, strlen(s));
}

void sim_buf_addf(sim_buf *b, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0 || !reserve(b, (size_t)n))
		return;
	va_start(ap, fmt);
	vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
	va_end(ap);
	b->len += (size_t)n;
}

void sim_buf_add_jstr(sim_buf *b, const char *s, size_t len)
{
	static const char hex[] = "0123456789abcdef";
	size_t i;
	size_t run = 0;

	if (!reserve(b, len + 2))
		return;
	sim_buf_add(b, "\"", 1);
	for (i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		char esc[6];
		size_t n = 2;

		if (c >= 0x20 && c != '"' && c != '\\')
			continue;
		sim_buf_add(b, s + run, i - run);
		run = i + 1;
		esc[0] = '\\';
		switch (c) {
		case '"': esc[1] = '"'; break;
		case '\\': esc[1] = '\\'; break;
		case '\n': esc[1] = 'n'; break;
		case '\t': esc[1] = 't'; break;
		case '\r': esc[1] = 'r'; break;
		case '\b': esc[1] = 'b'; break;
		case '\f': esc[1] = 'f'; break;
		default:
			esc[1] = 'u';
			esc[2] = '0';
			esc[3] = '0';
			esc[4] = hex[c >> 4];
			esc[5] = hex[c & 15];
			n = 6;
		}
		sim_buf_add(b, esc, n);
	}
	sim_buf_add(b, s + run, len - run);
	sim_buf_add(b, "\"", 1);
}

void sim_buf_add_jstrs(sim_buf *b, const char *s)
{
	sim_buf_add_jstr(b, s, strlen(s));
}

void sim_buf_add_int(sim_buf *b, int64_t v)
{
	char tmp[24];
	int n = snprintf(tmp, sizeof tmp, "%" PRId64, v);

	sim_buf_add(b, tmp, (size_t)n);
}

void sim_buf_add_num(sim_buf *b, double v)
{
	char tmp[40];
	int n = snprintf(tmp, sizeof tmp, "%.15g", v);

	sim_buf_add(b, tmp, (size_t)n);
}

char *sim_buf_steal(sim_buf *b, size_t *len)
{
	char *data;

	if (b->oom) {
		sim_buf_free(b);
		return NULL;
	}
	if (!reserve(b, 0))
		return NULL;
	data = b->data;
	*len = b->len;
	sim_buf_init(b);
	return data;
}
