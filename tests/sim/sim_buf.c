/* sim_buf.c — growable byte buffer and JSON writing helpers. */
#include "sim_buf.h"

#include <math.h>
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

/* The conversion spec sim_buf_addf is at: flags, width, precision, length. */
typedef struct spec {
	bool zero;  /* '0': pad numbers with zeros */
	bool left;  /* '-': pad on the right */
	int width;  /* -1 when absent */
	int prec;   /* -1 when absent; %s only */
	int longs;  /* 0, 1 (l, z, j: long on this ABI) or 2 (ll) */
	char conv;
} spec;

static void add_fill(sim_buf *b, char c, size_t n)
{
	if (!reserve(b, n))
		return;
	memset(b->data + b->len, c, n);
	b->len += n;
	b->data[b->len] = '\0';
}

/* Appends len bytes of s padded to the spec's width; a zero pad goes after
 * a leading minus sign, as printf does. */
static void add_padded(sim_buf *b, const spec *sp, const char *s, size_t len, bool number)
{
	size_t pad = sp->width > 0 && (size_t)sp->width > len ? (size_t)sp->width - len : 0;
	size_t sign = number && len > 0 && s[0] == '-';

	if (sp->left) {
		sim_buf_add(b, s, len);
		add_fill(b, ' ', pad);
	} else if (sp->zero && number) {
		sim_buf_add(b, s, sign);
		add_fill(b, '0', pad);
		sim_buf_add(b, s + sign, len - sign);
	} else {
		add_fill(b, ' ', pad);
		sim_buf_add(b, s, len);
	}
}

/* Writes v's decimal digits ending at end; returns where they start. */
static char *format_u64(char *end, uint64_t v)
{
	do {
		*--end = (char)('0' + v % 10);
		v /= 10;
	} while (v != 0);
	return end;
}

static void add_signed(sim_buf *b, const spec *sp, int64_t v)
{
	char tmp[24];
	char *end = tmp + sizeof tmp;
	/* Negating in unsigned arithmetic keeps INT64_MIN defined. */
	char *p = format_u64(end, v < 0 ? 0 - (uint64_t)v : (uint64_t)v);

	if (v < 0)
		*--p = '-';
	add_padded(b, sp, p, (size_t)(end - p), true);
}

static void add_unsigned(sim_buf *b, const spec *sp, uint64_t v)
{
	char tmp[24];
	char *end = tmp + sizeof tmp;
	char *p = format_u64(end, v);

	add_padded(b, sp, p, (size_t)(end - p), true);
}

/* Parses the spec after a '%' (fmt points past it); returns the conversion's
 * end. A '*' width is taken from ap. */
static const char *parse_spec(const char *fmt, spec *sp, va_list *ap)
{
	*sp = (spec){ .width = -1, .prec = -1 };
	for (;; fmt++) {
		if (*fmt == '0')
			sp->zero = true;
		else if (*fmt == '-')
			sp->left = true;
		else
			break;
	}
	if (*fmt == '*') {
		sp->width = va_arg(*ap, int);
		if (sp->width < 0) { /* as printf: a negative width is the '-' flag */
			sp->left = true;
			sp->width = -sp->width;
		}
		fmt++;
	} else {
		for (sp->width = 0; *fmt >= '0' && *fmt <= '9'; fmt++)
			sp->width = sp->width * 10 + (*fmt - '0');
	}
	if (*fmt == '.') {
		for (sp->prec = 0, fmt++; *fmt >= '0' && *fmt <= '9'; fmt++)
			sp->prec = sp->prec * 10 + (*fmt - '0');
	}
	for (; *fmt == 'l' || *fmt == 'z' || *fmt == 'j'; fmt++)
		sp->longs = *fmt == 'l' ? sp->longs + 1 : 1; /* z, j: long on this ABI */
	sp->conv = *fmt;
	return *fmt ? fmt + 1 : fmt;
}

/* One conversion. Anything other than d, u, s, c and % (a double, say) goes
 * through snprintf with its own spec: it is rare here, and exact there. */
static void add_conversion(sim_buf *b, const spec *sp, const char *start, const char *end, va_list *ap)
{
	switch (sp->conv) {
	case 'd':
	case 'i':
		add_signed(b, sp, sp->longs == 0 ? va_arg(*ap, int) : sp->longs == 1 ? va_arg(*ap, long) : va_arg(*ap, long long));
		return;
	case 'u':
		add_unsigned(b, sp, sp->longs == 0 ? va_arg(*ap, unsigned) : sp->longs == 1 ? va_arg(*ap, unsigned long) : va_arg(*ap, unsigned long long));
		return;
	case 's': {
		const char *s = va_arg(*ap, const char *);
		size_t len = sp->prec >= 0 ? strnlen(s, (size_t)sp->prec) : strlen(s);

		add_padded(b, sp, s, len, false);
		return;
	}
	case 'c': {
		char c = (char)va_arg(*ap, int);

		add_padded(b, sp, &c, 1, false);
		return;
	}
	case '%':
		sim_buf_add(b, "%", 1);
		return;
	default: {
		char one[32];
		char tmp[64];
		size_t n = (size_t)(end - start);
		int len;

		if (sp->conv == '\0' || strchr("eEfFgG", sp->conv) == NULL || n >= sizeof one) {
			sim_buf_add(b, start, n); /* unknown: shown as written, visible in any test */
			return;
		}
		memcpy(one, start, n);
		one[n] = '\0';
		len = snprintf(tmp, sizeof tmp, one, va_arg(*ap, double));
		if (len > 0)
			sim_buf_add(b, tmp, (size_t)len < sizeof tmp ? (size_t)len : sizeof tmp - 1);
	}
	}
}

/* printf's cost was most of bloomsim's CPU under load (two vsnprintf passes
 * per call, each walking the whole format): this writes literal runs with
 * one memcpy and integers with a digit loop. */
void sim_buf_addf(sim_buf *b, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	while (*fmt) {
		const char *pct = strchr(fmt, '%');
		spec sp;
		const char *end;

		if (pct == NULL) {
			sim_buf_adds(b, fmt);
			break;
		}
		sim_buf_add(b, fmt, (size_t)(pct - fmt));
		end = parse_spec(pct + 1, &sp, &ap);
		add_conversion(b, &sp, pct, end, &ap);
		fmt = end;
	}
	va_end(ap);
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
	static const spec plain = { .width = -1, .prec = -1 };

	add_signed(b, &plain, v);
}

void sim_buf_add_num(sim_buf *b, double v)
{
	char tmp[40];
	int n;

	/* Most numbers sent are whole; %.15g writes those as integers too. */
	if (v > -1e15 && v < 1e15 && v == (double)(int64_t)v && !(v == 0 && signbit(v))) {
		sim_buf_add_int(b, (int64_t)v);
		return;
	}
	n = snprintf(tmp, sizeof tmp, "%.15g", v);

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
