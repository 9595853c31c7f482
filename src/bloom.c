/* bloom.c — Bloom Growth v1 units and the mapping of their JSON to mirror
 * rows in PostgreSQL COPY text format (see bloom.h, mirror.h and
 * ../shared/design/mirror-schema.md). */
#include "bloom.h"

#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <math.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---------------------------------------------------------------- units */

typedef struct unit_info {
	const char *name;
	mirror_target_id target; /* the target its rows (and rejects) go to */
	const char *prefix;      /* path before the ref */
	const char *suffix;      /* path after the ref; NULL: no ref in the path */
} unit_info;

static const unit_info unit_infos[BLOOM_UNIT_KIND_END] = {
	[BLOOM_UNIT_USERS] = {"users", MIRROR_T_USERS, "search/all?term=%25", NULL},
	[BLOOM_UNIT_USER_MEETINGS] = {"user_meetings", MIRROR_T_MEETINGS_LIST, "L10/", "/list"},
	[BLOOM_UNIT_MEETING] = {"meeting", MIRROR_T_MEETINGS_DETAIL, "L10/", ""},
	[BLOOM_UNIT_ATTENDEES] = {"attendees", MIRROR_T_ATTENDEES, "L10/", "/attendees"},
	[BLOOM_UNIT_MEETING_TODOS] = {"meeting_todos", MIRROR_T_TODOS, "L10/", "/todos?INCLUDE_CLOSED=true"},
	[BLOOM_UNIT_MEASURABLES] = {"measurables", MIRROR_T_MEASURABLES, "L10/", "/measurables"},
	[BLOOM_UNIT_MEETING_SCORES] = {"meeting_scores", MIRROR_T_SCORES, "scorecard/meeting/", ""},
	[BLOOM_UNIT_USER_TODOS] = {"user_todos", MIRROR_T_USER_TODOS, "todo/user/", ""},
	[BLOOM_UNIT_USER_SCORES] = {"user_scores", MIRROR_T_SCORES, "scorecard/user/", ""},
	[BLOOM_UNIT_GOALS] = {"goals", MIRROR_T_GOALS, "rocks/user/", "?include_origin=true"},
	[BLOOM_UNIT_ARCHIVED_GOALS] = {"archived_goals", MIRROR_T_GOALS, "archivedrocks/user/", ""},
	[BLOOM_UNIT_MEETING_ISSUES] = {"meeting_issues", MIRROR_T_ISSUES, "L10/", "/issues?INCLUDE_RESOLVED=true"},
	[BLOOM_UNIT_USER_ISSUES] = {"user_issues", MIRROR_T_USER_ISSUES, "issues/users/", ""},
	[BLOOM_UNIT_MEETING_HEADLINES] = {"meeting_headlines", MIRROR_T_HEADLINES, "L10/",
					  "/headlines?Include_Origin=true"},
	[BLOOM_UNIT_USER_HEADLINES] = {"user_headlines", MIRROR_T_USER_HEADLINES, "headline/users/", ""},
};

static const unit_info *unit_info_get(bloom_unit_kind kind)
{
	if ((int)kind < BLOOM_UNIT_USERS || kind >= BLOOM_UNIT_KIND_END)
		return NULL;
	return &unit_infos[kind];
}

/* The units a user of the users list names (map_user), and those a meeting
 * of a user's meeting list names (map_meeting_list). */
static const bloom_unit_kind user_kids[] = {BLOOM_UNIT_USER_MEETINGS, BLOOM_UNIT_USER_TODOS,  BLOOM_UNIT_USER_SCORES,
                                            BLOOM_UNIT_GOALS,         BLOOM_UNIT_ARCHIVED_GOALS, BLOOM_UNIT_USER_ISSUES,
                                            BLOOM_UNIT_USER_HEADLINES};
static const bloom_unit_kind meeting_kids[] = {BLOOM_UNIT_MEETING,        BLOOM_UNIT_ATTENDEES,
                                               BLOOM_UNIT_MEETING_TODOS,  BLOOM_UNIT_MEASURABLES,
                                               BLOOM_UNIT_MEETING_SCORES, BLOOM_UNIT_MEETING_ISSUES,
                                               BLOOM_UNIT_MEETING_HEADLINES};
#define KIDS_COUNT(kids) (sizeof(kids) / sizeof((kids)[0]))

static uint32_t target_table_bit(mirror_target_id t)
{
	return (uint32_t)1 << mirror_target_get(t)->table_index;
}

/* The link tables a row of target t brings rows along in: a measurable's
 * meeting_measurables row (map_measurable), a goal's goal_meetings rows
 * (map_goal). */
static uint32_t target_links(mirror_target_id t)
{
	switch (t) {
	case MIRROR_T_MEASURABLES: return target_table_bit(MIRROR_T_MEETING_MEASURABLES);
	case MIRROR_T_GOALS: return target_table_bit(MIRROR_T_GOAL_MEETINGS);
	default: return 0;
	}
}

static uint32_t kinds_tables(const bloom_unit_kind *kinds, size_t n);

/* The tables a unit's body fills, and those of the units it names. */
static uint32_t unit_tables(bloom_unit_kind kind)
{
	mirror_target_id t = unit_infos[kind].target;
	uint32_t mask = target_table_bit(t) | target_links(t);
	if (kind == BLOOM_UNIT_USER_MEETINGS)
		mask |= kinds_tables(meeting_kids, KIDS_COUNT(meeting_kids));
	return mask;
}

static uint32_t kinds_tables(const bloom_unit_kind *kinds, size_t n)
{
	uint32_t mask = 0;
	for (size_t i = 0; i < n; i++)
		mask |= unit_tables(kinds[i]);
	return mask;
}

uint32_t bloom_tables_linked(const char *table)
{
	int si = mirror_table_index(table);
	uint32_t mask = 0;
	for (int t = 0; t < MIRROR_T_COUNT; t++)
		if (mirror_target_get((mirror_target_id)t)->table_index == si)
			mask |= target_links((mirror_target_id)t);
	return mask;
}

uint32_t bloom_tables_under(const char *table)
{
	int si = mirror_table_index(table);
	if (si < 0)
		return 0;
	uint32_t mask = ((uint32_t)1 << si) | bloom_tables_linked(table);
	if (si == mirror_target_get(MIRROR_T_USERS)->table_index)
		mask |= kinds_tables(user_kids, KIDS_COUNT(user_kids));
	else if (si == mirror_target_get(MIRROR_T_MEETINGS_LIST)->table_index)
		mask |= kinds_tables(meeting_kids, KIDS_COUNT(meeting_kids));
	return mask;
}

const char *bloom_unit_kind_name(bloom_unit_kind kind)
{
	const unit_info *info = unit_info_get(kind);
	return info ? info->name : NULL;
}

const char *bloom_unit_stream(bloom_unit_kind kind)
{
	const unit_info *info = unit_info_get(kind);
	return info ? mirror_target_get(info->target)->stream : NULL;
}

int bloom_unit_path(const bloom_unit *u, char *buf, size_t buflen)
{
	const unit_info *info = unit_info_get(u->kind);
	int n;

	if (!info || buflen == 0)
		return -1;
	if (info->suffix)
		n = snprintf(buf, buflen, "%s%" PRId64 "%s", info->prefix, u->ref, info->suffix);
	else
		n = snprintf(buf, buflen, "%s", info->prefix);
	return (n < 0 || (size_t)n >= buflen) ? -1 : 0;
}

void bloom_unit_label(const bloom_unit *u, char *buf, size_t buflen)
{
	const unit_info *info = unit_info_get(u->kind);

	if (buflen == 0)
		return;
	if (!info)
		snprintf(buf, buflen, "unknown(%d):%" PRId64, (int)u->kind, u->ref);
	else if (!info->suffix)
		snprintf(buf, buflen, "%s", info->name);
	else
		snprintf(buf, buflen, "%s:%" PRId64, info->name, u->ref);
}

bool bloom_unit_404_is_vanished(bloom_unit_kind kind)
{
	return unit_info_get(kind) != NULL && kind != BLOOM_UNIT_USERS;
}

/* ------------------------------------------------------------- buffers */

#define BUF_MIN_CAP 4096

/* Makes room for extra more bytes plus a terminating NUL. */
static int buf_reserve(bloom_buf *b, size_t extra)
{
	size_t need = b->len + extra + 1;
	size_t cap = b->cap ? b->cap : BUF_MIN_CAP;
	char *data;

	if (need <= b->cap)
		return 0;
	while (cap < need)
		cap *= 2;
	data = realloc(b->data, cap);
	if (!data)
		return -1;
	b->data = data;
	b->cap = cap;
	return 0;
}

static int buf_append(bloom_buf *b, const char *s, size_t n)
{
	if (buf_reserve(b, n) < 0)
		return -1;
	memcpy(b->data + b->len, s, n);
	b->len += n;
	b->data[b->len] = '\0';
	return 0;
}

static int buf_putc(bloom_buf *b, char ch)
{
	return buf_append(b, &ch, 1);
}

/* Bytes buf_append_copy must rewrite; the others are copied in runs. */
static const bool copy_special[256] = {['\\'] = true, ['\n'] = true, ['\r'] = true, ['\t'] = true, ['\0'] = true};

/* Appends s in COPY text escaping; NUL bytes are skipped (there are none
 * once strings went through strip_nuls, but never emit one). */
static int buf_append_copy(bloom_buf *b, const char *s, size_t n)
{
	char *dst;
	size_t i = 0;

	if (buf_reserve(b, 2 * n) < 0)
		return -1;
	dst = b->data + b->len;
	for (;;) {
		size_t run = i;
		while (run < n && !copy_special[(unsigned char)s[run]])
			run++;
		memcpy(dst, s + i, run - i);
		dst += run - i;
		if (run == n)
			break;
		switch (s[run]) {
		case '\\': *dst++ = '\\'; *dst++ = '\\'; break;
		case '\n': *dst++ = '\\'; *dst++ = 'n'; break;
		case '\r': *dst++ = '\\'; *dst++ = 'r'; break;
		case '\t': *dst++ = '\\'; *dst++ = 't'; break;
		default: break; /* NUL */
		}
		i = run + 1;
	}
	b->len = (size_t)(dst - b->data);
	b->data[b->len] = '\0';
	return 0;
}

/* Appends compact JSON text in COPY text escaping: it holds no raw tab,
 * newline, CR or NUL, so only backslashes need doubling. */
static int buf_append_json_copy(bloom_buf *b, const char *s, size_t n)
{
	const char *end = s + n;

	while (s < end) {
		const char *bs = memchr(s, '\\', (size_t)(end - s));
		size_t run = bs ? (size_t)(bs - s) + 1 : (size_t)(end - s);
		if (buf_append(b, s, run) < 0 || (bs && buf_putc(b, '\\') < 0))
			return -1;
		s += run;
	}
	return 0;
}

static void buf_truncate(bloom_buf *b, size_t len)
{
	b->len = len;
	if (b->data)
		b->data[len] = '\0';
}

/* ----------------------------------------------------------------- NULs */

/* Removes NUL characters from every string inside v; returns how many were
 * removed, or (size_t)-1 when out of memory. */
static size_t strip_nuls(json_t *v)
{
	size_t removed = 0, sub;

	if (json_is_string(v)) {
		const char *s = json_string_value(v);
		size_t len = json_string_length(v), kept = 0;
		char *copy;

		if (!memchr(s, '\0', len))
			return 0;
		copy = malloc(len);
		if (!copy)
			return (size_t)-1;
		for (size_t i = 0; i < len; i++)
			if (s[i] != '\0')
				copy[kept++] = s[i];
		removed = len - kept;
		if (json_string_setn(v, copy, kept) < 0)
			removed = (size_t)-1;
		free(copy);
		return removed;
	}
	if (json_is_object(v)) {
		const char *key;
		json_t *val;
		json_object_foreach(v, key, val) {
			sub = strip_nuls(val);
			if (sub == (size_t)-1)
				return sub;
			removed += sub;
		}
	} else if (json_is_array(v)) {
		size_t index;
		json_t *val;
		json_array_foreach(v, index, val) {
			sub = strip_nuls(val);
			if (sub == (size_t)-1)
				return sub;
			removed += sub;
		}
	}
	return removed;
}

static bool is_u0000(const char *s, size_t n)
{
	return n >= 6 && memcmp(s, "\\u0000", 6) == 0;
}

/* jansson refuses "\u0000" inside an object key even with JSON_ALLOW_NUL.
 * Returns a malloc'd copy of body (length in *outlen) where every "\u0000"
 * escape inside an object key is removed, counting them in *removed; NULL
 * when out of memory. The copy is only built after such a load failure. */
static char *strip_key_nuls(const char *body, size_t len, size_t *outlen, size_t *removed)
{
	char *out = malloc(len + 1);
	size_t i = 0, o = 0;

	if (!out)
		return NULL;
	while (i < len) {
		size_t end, next;
		if (body[i] != '"') {
			out[o++] = body[i++];
			continue;
		}
		for (end = i + 1; end < len && body[end] != '"'; end += body[end] == '\\' ? 2 : 1)
			;
		if (end >= len) {
			memcpy(out + o, body + i, len - i);
			o += len - i;
			break;
		}
		for (next = end + 1; next < len && strchr(" \t\r\n", body[next]); next++)
			;
		if (next >= len || body[next] != ':') {
			memcpy(out + o, body + i, end + 1 - i);
			o += end + 1 - i;
			i = end + 1;
			continue;
		}
		out[o++] = '"';
		for (size_t p = i + 1; p < end;) {
			if (is_u0000(body + p, end - p)) {
				(*removed)++;
				p += 6;
			} else if (body[p] == '\\') {
				out[o++] = body[p++];
				out[o++] = body[p++];
			} else {
				out[o++] = body[p++];
			}
		}
		out[o++] = '"';
		i = end + 1;
	}
	out[o] = '\0';
	*outlen = o;
	return out;
}

/* ---------------------------------------------------------- JSON values */

/* jansson gives every value its own allocation (objects a hash table), and
 * printing each record back out for the raw column cost about as much
 * again: together most of bloomsync's CPU time on an initial load. Bodies
 * are therefore parsed into jv nodes taken from a pool reused for every
 * element; strings point into the body unless they hold escapes, and a
 * value whose text is exactly what json_dumps(JSON_COMPACT) prints for it,
 * or a number other than an integer that jsonb takes as written (see
 * number_read) ("plain"), is copied as it is into the raw column. Numbers
 * are kept as their text, never as a double: a column converts the text
 * when it needs a value, so no number is changed on its way to raw, and
 * none is too big to read. Whatever this parser does not take (malformed
 * JSON, duplicate keys, a NUL in a key, deep nesting) is parsed by jansson,
 * so errors come out as jansson words them, and printed by jv_dump all the
 * same, so that the reader never shows in the rows (test_bloom_diff). */

typedef enum { JV_NULL, JV_FALSE, JV_TRUE, JV_INT, JV_REAL, JV_STR, JV_ARR, JV_OBJ } jv_type;

typedef struct jv jv;
struct jv {
	jv_type type;
	bool plain;         /* text goes into raw as it is (see above) */
	bool indexed;       /* its members are in jv_locate's index (jansson's objects) */
	bool unstorable;    /* holds a number jsonb cannot hold (see number_read) */
	size_t nuls;        /* NUL characters removed from the strings of the value */
	const char *text;   /* the value's text in the body (jansson's nodes: numbers only) */
	size_t textlen;     /* its length */
	const char *key;    /* member name (decoded) when in an object */
	size_t keylen;      /* its length */
	jv *next;           /* next member or element */
	const json_t *orig; /* the jansson value it copies (jansson parsed it), else NULL */
	union {
		int64_t i; /* JV_INT; a JV_REAL has only its text */
		struct {
			const char *s; /* decoded, NULs removed; not NUL-terminated */
			size_t len;
		} str;
		struct {
			jv *first;
			size_t n;
		} kids;
	} u;
};

/* Bump allocation in blocks that are kept and reused from one element to
 * the next. */
#define POOL_BLOCK ((size_t)32 << 10)

typedef struct pool_block {
	struct pool_block *next;
	size_t cap, used;
	max_align_t data[];
} pool_block;

typedef struct pool {
	pool_block *head, *cur;
} pool;

static void *pool_alloc(pool *p, size_t size)
{
	pool_block *b = p->cur;
	void *ptr;

	size = (size + 15) & ~(size_t)15;
	while (b && b->cap - b->used < size) {
		if (!b->next)
			break;
		b = b->next; /* left over from an earlier element */
		b->used = 0;
	}
	if (!b || b->cap - b->used < size) {
		size_t cap = size > POOL_BLOCK ? size : POOL_BLOCK;
		pool_block *nb = malloc(sizeof(*nb) + cap);
		if (!nb)
			return NULL;
		nb->next = NULL;
		nb->cap = cap;
		nb->used = 0;
		if (b)
			b->next = nb;
		else
			p->head = nb;
		b = nb;
	}
	p->cur = b;
	ptr = (char *)b->data + b->used;
	b->used += size;
	return ptr;
}

/* Forgets every node; the blocks stay for the next element. */
static void pool_reset(pool *p)
{
	p->cur = p->head;
	if (p->head)
		p->head->used = 0;
}

static void pool_free(pool *p)
{
	while (p->head) {
		pool_block *next = p->head->next;
		free(p->head);
		p->head = next;
	}
	p->cur = NULL;
}

static bool jv_is(const jv *v, jv_type type)
{
	return v && v->type == type;
}

static bool jv_is_null(const jv *v)
{
	return jv_is(v, JV_NULL);
}

static bool jv_is_string(const jv *v)
{
	return jv_is(v, JV_STR);
}

static bool jv_is_integer(const jv *v)
{
	return jv_is(v, JV_INT);
}

static bool jv_is_real(const jv *v)
{
	return jv_is(v, JV_REAL);
}

static bool jv_is_boolean(const jv *v)
{
	return jv_is(v, JV_TRUE) || jv_is(v, JV_FALSE);
}

static bool jv_is_object(const jv *v)
{
	return jv_is(v, JV_OBJ);
}

static bool jv_is_array(const jv *v)
{
	return jv_is(v, JV_ARR);
}

/* The member key (n bytes) of object obj, NULL when obj is not an object or
 * has none. */
static const jv *jv_getn(const jv *obj, const char *key, size_t n)
{
	if (!jv_is_object(obj))
		return NULL;
	for (const jv *m = obj->u.kids.first; m; m = m->next)
		if (m->keylen == n && (n == 0 || (m->key[0] == key[0] && memcmp(m->key, key, n) == 0)))
			return m;
	return NULL;
}

/* Member lookup by a string literal, its length known at compile time. */
#define jv_get(obj, key) jv_getn((obj), "" key, sizeof(key) - 1)

/* ---- numbers */

static bool is_digit(char ch)
{
	return ch >= '0' && ch <= '9';
}

/* The integer the decimal digits [ip, ip + ilen) make, negated with neg:
 * false when it is beyond int64. */
static bool digits_to_i64(const char *ip, size_t ilen, bool neg, int64_t *out)
{
	uint64_t value = 0;
	if (ilen > 19)
		return false;
	for (size_t i = 0; i < ilen; i++) /* 19 digits fit in uint64 */
		value = value * 10 + (uint64_t)(ip[i] - '0');
	if (value > (uint64_t)INT64_MAX + neg)
		return false;
	*out = neg ? (int64_t)(0 - value) : (int64_t)value;
	return true;
}

/* The length of the JSON number at [s, end), 0 when there is none (the
 * grammar of RFC 8259: no leading zero, no bare '.', no '+'); *fraction and
 * *exponent tell whether it has those parts. What follows is the caller's
 * to judge. */
static inline size_t scan_number(const char *s, const char *end, bool *fraction, bool *exponent)
{
	const char *q = s;

	*fraction = *exponent = false;
	if (q < end && *q == '-')
		q++;
	if (q >= end || !is_digit(*q))
		return 0;
	if (*q == '0') {
		if (++q < end && is_digit(*q))
			return 0;
	} else {
		while (q < end && is_digit(*q))
			q++;
	}
	if (q < end && *q == '.') {
		*fraction = true;
		if (++q >= end || !is_digit(*q))
			return 0;
		while (q < end && is_digit(*q))
			q++;
	}
	if (q < end && (*q == 'e' || *q == 'E')) {
		*exponent = true;
		if (++q < end && (*q == '+' || *q == '-'))
			q++;
		if (q >= end || !is_digit(*q))
			return 0;
		while (q < end && is_digit(*q))
			q++;
	}
	return (size_t)(q - s);
}

/* A JSON number's text read as a decimal: the digits of its integer and
 * fraction parts, taken as one string D, and where its decimal point falls
 * in D once the exponent is applied. */
typedef struct decimal {
	bool neg;
	const char *ip, *fp; /* integer and fraction digits */
	size_t ilen, flen;
	int64_t point;       /* digits of D before the point (may be < 0 or > |D|) */
	int64_t first, last; /* first and last nonzero digit of D; -1 when it is zero */
} decimal;

/* Exponents beyond this are all alike here: far past what numeric holds. */
#define DECIMAL_EXP_CAP ((int64_t)1 << 40)

/* Reads the text of a JSON number (valid: a parser took it). */
static void decimal_read(const char *s, size_t len, decimal *d)
{
	const char *end = s + len;
	int64_t exp = 0;
	bool exp_neg = false;

	memset(d, 0, sizeof(*d));
	d->neg = s < end && *s == '-';
	s += d->neg;
	for (d->ip = s; s < end && is_digit(*s); s++)
		;
	d->ilen = (size_t)(s - d->ip);
	d->fp = s;
	if (s < end && *s == '.') {
		for (d->fp = ++s; s < end && is_digit(*s); s++)
			;
		d->flen = (size_t)(s - d->fp);
	}
	if (s < end && (*s == 'e' || *s == 'E')) {
		s++;
		if (s < end && (*s == '+' || *s == '-'))
			exp_neg = *s++ == '-';
		for (; s < end && is_digit(*s); s++)
			if (exp < DECIMAL_EXP_CAP)
				exp = exp * 10 + (*s - '0');
	}
	d->point = (int64_t)d->ilen + (exp_neg ? -exp : exp);
	d->first = d->last = -1;
	for (size_t i = 0; i < d->ilen + d->flen; i++) {
		char ch = i < d->ilen ? d->ip[i] : d->fp[i - d->ilen];
		if (ch != '0') {
			if (d->first < 0)
				d->first = (int64_t)i;
			d->last = (int64_t)i;
		}
	}
}

/* Digit at index i of D, '0' outside it. */
static char decimal_digit(const decimal *d, int64_t i)
{
	if (i < 0 || i >= (int64_t)(d->ilen + d->flen))
		return '0';
	return (size_t)i < d->ilen ? d->ip[i] : d->fp[(size_t)i - d->ilen];
}

/* Digits before and after the point of the value, leading and trailing
 * zeros left out. */
static int64_t decimal_int_digits(const decimal *d)
{
	return d->first >= 0 && d->point > d->first ? d->point - d->first : 0;
}

static int64_t decimal_frac_digits(const decimal *d)
{
	return d->last >= 0 && d->last + 1 > d->point ? d->last + 1 - d->point : 0;
}

/* What PostgreSQL's numeric holds at most (its docs, and numeric_in):
 * 131072 digits before the point, 16383 after. jsonb holds its numbers as
 * numeric, so the same goes for raw. */
#define NUMERIC_MAX_INT_DIGITS 131072
#define NUMERIC_MAX_FRAC_DIGITS 16383
/* numeric_in refuses an exponent this big or bigger, whatever the digits
 * (a guard against overflow in its own arithmetic). Old releases refused
 * any past 1000; that was lifted in every branch then supported ("Remove
 * bogus dependencies on NUMERIC_MAX_PRECISION"), so 1e1001 is no longer
 * one of those (checked on PostgreSQL 15). */
#define NUMERIC_MAX_EXPONENT (INT32_MAX / 2)

static bool decimal_fits_numeric(const decimal *d)
{
	return decimal_int_digits(d) <= NUMERIC_MAX_INT_DIGITS && decimal_frac_digits(d) <= NUMERIC_MAX_FRAC_DIGITS;
}

/* Appends the value of d in the canonical form of col_numeric (no
 * exponent, no leading or trailing zeros, no minus zero). -1 when out of
 * memory. */
static int put_decimal(bloom_buf *b, const decimal *d)
{
	int64_t int_digits = decimal_int_digits(d), frac_digits = decimal_frac_digits(d);
	char *p;

	if (buf_reserve(b, (size_t)(int_digits + frac_digits) + 3) < 0)
		return -1;
	p = b->data + b->len;
	if (d->neg && d->first >= 0)
		*p++ = '-';
	if (int_digits == 0)
		*p++ = '0';
	for (int64_t i = d->point - int_digits; i < d->point; i++)
		*p++ = decimal_digit(d, i);
	if (frac_digits > 0)
		*p++ = '.';
	for (int64_t i = d->point; i < d->point + frac_digits; i++)
		*p++ = decimal_digit(d, i);
	*p = '\0';
	b->len = (size_t)(p - b->data);
	return 0;
}

/* What jsonb (numeric_in) makes of a number's text: it takes the text as
 * it is, or it refuses the text but holds the value (too many fraction
 * digits that are trailing zeros, "1.000...0", or a zero with a huge
 * exponent), or it cannot hold the value. numeric_in judges the text: its
 * scale is the fraction digits as written less the exponent. */
typedef enum { FIT_TEXT, FIT_VALUE, FIT_NONE } numeric_fit;

__attribute__((cold)) static numeric_fit numeric_fit_of(const char *s, size_t len)
{
	decimal d;
	int64_t exp, scale;

	decimal_read(s, len, &d);
	if (!decimal_fits_numeric(&d))
		return FIT_NONE;
	exp = d.point - (int64_t)d.ilen;
	scale = (int64_t)d.flen - exp;
	if (exp >= NUMERIC_MAX_EXPONENT || exp <= -NUMERIC_MAX_EXPONENT || scale > NUMERIC_MAX_FRAC_DIGITS)
		return FIT_VALUE;
	return FIT_TEXT;
}

/* Makes v the number whose JSON text is [s, s + len) (valid, with a
 * fraction and an exponent or not): JV_INT, with its value, when it is an
 * integer within int64; else JV_REAL, which keeps only its text (an
 * integer beyond int64 too, as jansson refuses those as integers). plain:
 * raw takes the text as it is: an integer unless it is "-0" (printed "0",
 * as jansson does), a real whenever jsonb takes its text, which is nearly
 * always. A real that jsonb only holds as a value goes into raw as that
 * value (jv_dump), and one it cannot hold makes v unstorable: the record
 * is rejected (row_finish), as raw could only hold another number.
 * inline: it runs for every number of every body; the checks past the
 * first are for numbers of 16384 characters or with an exponent. */
static inline void number_read(jv *v, const char *s, size_t len, bool fraction, bool exponent)
{
	bool neg = s[0] == '-';
	numeric_fit fit;

	v->text = s;
	v->textlen = len;
	if (!fraction && !exponent && digits_to_i64(s + neg, len - (size_t)neg, neg, &v->u.i)) {
		v->type = JV_INT;
		v->plain = !(neg && v->u.i == 0);
		v->unstorable = false;
		return;
	}
	v->type = JV_REAL;
	/* without an exponent, its digits before and after the point (and so
	 * its scale) are fewer than its characters */
	fit = !exponent && len <= NUMERIC_MAX_FRAC_DIGITS ? FIT_TEXT : numeric_fit_of(s, len);
	v->plain = fit == FIT_TEXT;
	v->unstorable = fit == FIT_NONE;
}

/* ---- the parser */

#define JV_MAX_DEPTH 64     /* deeper goes to jansson (which allows 2048) */
#define JV_MAX_MEMBERS 1024 /* bigger objects go to jansson (duplicate checks are quadratic) */

typedef struct jparse {
	const char *p;   /* next byte */
	const char *end; /* end of the input */
	pool *pool;
	int depth;
} jparse;

static bool jp_ws(jparse *jp)
{
	const char *start = jp->p;

	while (jp->p < jp->end && (*jp->p == ' ' || *jp->p == '\n' || *jp->p == '\t' || *jp->p == '\r'))
		jp->p++;
	return jp->p != start;
}

static bool jp_at(const jparse *jp, char ch)
{
	return jp->p < jp->end && *jp->p == ch;
}

static jv *jp_node(jparse *jp, jv_type type)
{
	jv *v = pool_alloc(jp->pool, sizeof(*v));

	if (v) {
		memset(v, 0, sizeof(*v));
		v->type = type;
		v->text = jp->p;
	}
	return v;
}

static int hex_digit(char ch)
{
	if (ch >= '0' && ch <= '9')
		return ch - '0';
	if (ch >= 'a' && ch <= 'f')
		return ch - 'a' + 10;
	if (ch >= 'A' && ch <= 'F')
		return ch - 'A' + 10;
	return -1;
}

/* The code unit of the escape at u ('u' and four hex digits), -1 when
 * malformed; *lower is set when a hex letter is lowercase. */
static int32_t u_escape(const char *u, const char *end, bool *lower)
{
	int32_t value = 0;

	if (end - u < 5)
		return -1;
	for (int i = 1; i <= 4; i++) {
		int h = hex_digit(u[i]);
		if (h < 0)
			return -1;
		if (u[i] >= 'a')
			*lower = true;
		value = value << 4 | h;
	}
	return value;
}

/* Length of the UTF-8 sequence at s whose lead byte is >= 0x80, 0 when it
 * is not one jansson accepts (overlong, a surrogate, past U+10FFFF). */
static size_t utf8_length(const unsigned char *s, size_t avail)
{
	unsigned lead = s[0];
	size_t n;
	uint32_t cp;

	if (lead < 0xC2 || lead > 0xF4)
		return 0;
	n = lead < 0xE0 ? 2 : lead < 0xF0 ? 3 : 4;
	if (avail < n)
		return 0;
	cp = lead & (n == 2 ? 0x1F : n == 3 ? 0x0F : 0x07);
	for (size_t i = 1; i < n; i++) {
		if ((s[i] & 0xC0) != 0x80)
			return 0;
		cp = cp << 6 | (s[i] & 0x3F);
	}
	if ((n == 3 && (cp < 0x800 || (cp >= 0xD800 && cp <= 0xDFFF))) || (n == 4 && (cp < 0x10000 || cp > 0x10FFFF)))
		return 0;
	return n;
}

static size_t utf8_put(char *dst, uint32_t cp)
{
	if (cp < 0x80) {
		dst[0] = (char)cp;
		return 1;
	}
	if (cp < 0x800) {
		dst[0] = (char)(0xC0 | cp >> 6);
		dst[1] = (char)(0x80 | (cp & 0x3F));
		return 2;
	}
	if (cp < 0x10000) {
		dst[0] = (char)(0xE0 | cp >> 12);
		dst[1] = (char)(0x80 | (cp >> 6 & 0x3F));
		dst[2] = (char)(0x80 | (cp & 0x3F));
		return 3;
	}
	dst[0] = (char)(0xF0 | cp >> 18);
	dst[1] = (char)(0x80 | (cp >> 12 & 0x3F));
	dst[2] = (char)(0x80 | (cp >> 6 & 0x3F));
	dst[3] = (char)(0x80 | (cp & 0x3F));
	return 4;
}

/* Decodes the escaped string text [s, end) (valid, checked by jp_string)
 * into dst; returns the length, NULs left out and counted in *nuls. */
static size_t decode_string(const char *s, const char *end, char *dst, size_t *nuls)
{
	char *d = dst;
	bool lower = false;

	while (s < end) {
		const char *bs = memchr(s, '\\', (size_t)(end - s));
		size_t run = bs ? (size_t)(bs - s) : (size_t)(end - s);
		int32_t cp;

		memcpy(d, s, run);
		d += run;
		s += run;
		if (!bs)
			break;
		switch (s[1]) {
		case 'b': *d++ = '\b'; break;
		case 'f': *d++ = '\f'; break;
		case 'n': *d++ = '\n'; break;
		case 'r': *d++ = '\r'; break;
		case 't': *d++ = '\t'; break;
		case 'u':
			cp = u_escape(s + 1, end, &lower);
			if (cp >= 0xD800 && cp <= 0xDBFF) {
				cp = ((cp - 0xD800) << 10) + (u_escape(s + 7, end, &lower) - 0xDC00) + 0x10000;
				s += 6;
			}
			if (cp == 0)
				(*nuls)++;
			else
				d += utf8_put(d, (uint32_t)cp);
			s += 4;
			break;
		default: *d++ = s[1]; break; /* " \ / */
		}
		s += 2;
	}
	return (size_t)(d - dst);
}

/* Checks the escape at q (a backslash) and returns its length, 0 when
 * jansson should judge it; clears *canonical when jansson prints it
 * otherwise. */
static size_t check_escape(const char *q, const char *end, bool key, bool *canonical)
{
	bool lower = false;
	int32_t cp, low;

	if (end - q < 2)
		return 0;
	if (q[1] != 'u') {
		if (q[1] == '/')
			*canonical = false; /* printed as a plain '/' */
		else if (q[1] == '\0' || !strchr("\"\\bfnrt", q[1]))
			return 0;
		return 2;
	}
	cp = u_escape(q + 1, end, &lower);
	if (cp < 0 || (cp >= 0xDC00 && cp <= 0xDFFF) || (cp == 0 && key))
		return 0;
	if (cp >= 0xD800 && cp <= 0xDBFF) {
		if (end - q < 12 || q[6] != '\\' || q[7] != 'u')
			return 0;
		low = u_escape(q + 7, end, &lower);
		if (low < 0xDC00 || low > 0xDFFF)
			return 0;
		*canonical = false;
		return 12;
	}
	/* jansson prints \u00XX, in capitals, only for controls without a short form */
	if (lower || cp == 0 || cp >= 0x20 || cp == '\b' || cp == '\f' || cp == '\n' || cp == '\r' || cp == '\t')
		*canonical = false;
	return 6;
}

/* The first byte in [q, end) of a string that is not printable ASCII, or
 * is '"' or a backslash; end when there is none. Eight bytes at a time: a
 * byte's high bit is set in the mask when it is one of those (a borrow may
 * also mark bytes after it, never before, so the lowest mark is exact). */
static const char *skip_plain(const char *q, const char *end)
{
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
	const uint64_t ones = 0x0101010101010101ULL, highs = 0x8080808080808080ULL;

	while (end - q >= 8) {
		uint64_t w, quote, backslash, mask;
		memcpy(&w, q, 8);
		quote = w ^ (ones * '"');
		backslash = w ^ (ones * '\\');
		mask = (w | ((w - ones * 0x20) & ~w) | ((quote - ones) & ~quote) | ((backslash - ones) & ~backslash)) &
		       highs;
		if (mask)
			return q + (__builtin_ctzll(mask) >> 3);
		q += 8;
	}
#endif
	while (q < end && (unsigned char)(*q - 0x20) < 0x60 && *q != '"' && *q != '\\')
		q++;
	return q;
}

/* Parses the string at jp->p (a '"'). Returns -1 when jansson should judge
 * it; a NUL in a key is left to jansson too (see strip_key_nuls). */
static int jp_string(jparse *jp, bool key, const char **out, size_t *outlen, size_t *nuls, bool *plain)
{
	const char *start = jp->p + 1, *q = start, *end = jp->end;
	bool escaped = false, canonical = true;

	for (;;) {
		unsigned char ch;
		size_t n;

		q = skip_plain(q, end);
		if (q >= end)
			return -1;
		ch = (unsigned char)*q;
		if (ch == '"')
			break;
		if (ch < 0x20)
			return -1;
		if (ch == '\\') {
			escaped = true;
			n = check_escape(q, end, key, &canonical);
		} else {
			n = utf8_length((const unsigned char *)q, (size_t)(end - q));
		}
		if (n == 0)
			return -1;
		q += n;
	}
	if (!escaped) {
		*out = start;
		*outlen = (size_t)(q - start);
	} else {
		char *dst = pool_alloc(jp->pool, (size_t)(q - start));
		if (!dst)
			return -1;
		*out = dst;
		*outlen = decode_string(start, q, dst, nuls);
	}
	*plain = canonical;
	jp->p = q + 1;
	return 0;
}

/* A number: its text, validated; a value only for an integer (see
 * number_read). */
static jv *jp_number(jparse *jp)
{
	bool fraction, exponent;
	size_t len = scan_number(jp->p, jp->end, &fraction, &exponent);
	jv *v;

	if (len == 0 || !(v = jp_node(jp, JV_REAL)))
		return NULL;
	number_read(v, jp->p, len, fraction, exponent);
	jp->p += len;
	return v;
}

static jv *jp_literal(jparse *jp, const char *word, jv_type type)
{
	size_t n = strlen(word);
	jv *v;

	if ((size_t)(jp->end - jp->p) < n || memcmp(jp->p, word, n) != 0 || !(v = jp_node(jp, type)))
		return NULL;
	v->plain = true;
	v->textlen = n;
	jp->p += n;
	return v;
}

static jv *jp_value(jparse *jp);

/* Appends member m to container v. */
static void jv_add(jv *v, jv ***tail, jv *m)
{
	**tail = m;
	*tail = &m->next;
	v->u.kids.n++;
	v->nuls += m->nuls;
	v->unstorable |= m->unstorable;
}

/* True when object v already has m's key (jansson keeps the first place and
 * the last value: left to it). *seen holds one bit per key hash, so most
 * new keys are told apart without comparing. */
static bool jp_duplicate(const jv *v, const jv *m, uint64_t *seen)
{
	const unsigned char *k = (const unsigned char *)m->key;
	size_t n = m->keylen;
	uint64_t h = n ? (uint64_t)k[0] | (uint64_t)k[n / 2] << 8 | (uint64_t)k[n - 1] << 16 : 0;
	uint64_t bit = (uint64_t)1 << (((h << 8 ^ n) * 0x9E3779B97F4A7C15ULL) >> 58);

	if (!(*seen & bit)) {
		*seen |= bit;
		return false;
	}
	for (const jv *o = v->u.kids.first; o; o = o->next)
		if (o->keylen == n && (n == 0 || (o->key[0] == m->key[0] && memcmp(o->key, m->key, n) == 0)))
			return true;
	return false;
}

/* An object or an array; plain when it holds no whitespace and only plain
 * keys and values. */
static jv *jp_container(jparse *jp, jv_type type)
{
	char close = type == JV_OBJ ? '}' : ']';
	jv *v = jp_node(jp, type), **tail;
	bool plain = true;
	uint64_t seen = 0;

	if (!v || ++jp->depth > JV_MAX_DEPTH)
		return NULL;
	tail = &v->u.kids.first;
	jp->p++;
	plain = !jp_ws(jp);
	if (jp_at(jp, close)) {
		jp->p++;
		goto done;
	}
	for (;;) {
		const char *key = NULL;
		size_t keylen = 0, nuls = 0;
		bool key_plain = true, ws;
		jv *m;

		if (type == JV_OBJ) {
			if (!jp_at(jp, '"') || jp_string(jp, true, &key, &keylen, &nuls, &key_plain) < 0)
				return NULL;
			if (jp_ws(jp))
				plain = false;
			if (!jp_at(jp, ':'))
				return NULL;
			jp->p++;
			if (jp_ws(jp))
				plain = false;
		}
		if (!(m = jp_value(jp)))
			return NULL;
		m->key = key;
		m->keylen = keylen;
		if (type == JV_OBJ && (v->u.kids.n >= JV_MAX_MEMBERS || jp_duplicate(v, m, &seen)))
			return NULL;
		jv_add(v, &tail, m);
		ws = jp_ws(jp);
		plain = plain && key_plain && m->plain && !ws;
		if (jp_at(jp, ',')) {
			jp->p++;
			if (jp_ws(jp))
				plain = false;
			continue;
		}
		if (!jp_at(jp, close))
			return NULL;
		jp->p++;
		break;
	}
done:
	jp->depth--;
	v->plain = plain;
	v->textlen = (size_t)(jp->p - v->text);
	return v;
}

static jv *jp_value(jparse *jp)
{
	jv *v;

	if (jp->p >= jp->end)
		return NULL;
	switch (*jp->p) {
	case '{': return jp_container(jp, JV_OBJ);
	case '[': return jp_container(jp, JV_ARR);
	case 't': return jp_literal(jp, "true", JV_TRUE);
	case 'f': return jp_literal(jp, "false", JV_FALSE);
	case 'n': return jp_literal(jp, "null", JV_NULL);
	case '"':
		if (!(v = jp_node(jp, JV_STR)) ||
		    jp_string(jp, false, &v->u.str.s, &v->u.str.len, &v->nuls, &v->plain) < 0)
			return NULL;
		v->textlen = (size_t)(jp->p - v->text);
		return v;
	default: return jp_number(jp);
	}
}

/* The whole body as one object or array (what json_loadb with flags 0
 * takes), or NULL: let jansson parse it. */
static jv *jv_parse_body(pool *pool, const char *body, size_t len)
{
	jparse jp = {.p = body, .end = body + len, .pool = pool};
	jv *v;

	jp_ws(&jp);
	if (!jp_at(&jp, '{') && !jp_at(&jp, '['))
		return NULL;
	v = jp_value(&jp);
	jp_ws(&jp);
	return v && jp.p == jp.end ? v : NULL;
}

/* The array element at body[i] when it is followed by ',' or ']' (so
 * value_end would have cut exactly it out of the body); *end gets the index
 * just past it. NULL: let jansson parse the element. */
static jv *jv_parse_element(pool *pool, const char *body, size_t len, size_t i, size_t *end)
{
	jparse jp = {.p = body + i, .end = body + len, .pool = pool};
	jv *v = jp_value(&jp);

	if (!v)
		return NULL;
	*end = (size_t)(jp.p - body);
	jp_ws(&jp);
	return jp_at(&jp, ',') || jp_at(&jp, ']') ? v : NULL;
}

/* ---- values jansson parsed */

/* Copies a value jansson parsed into nodes that point to it, removing NULs
 * from its strings on the way; its numbers get their text and type from
 * jv_locate. NULL when out of memory. */
static jv *jv_from_json(pool *pool, json_t *j)
{
	jv *v = pool_alloc(pool, sizeof(*v));
	jv **tail;

	if (!v)
		return NULL;
	memset(v, 0, sizeof(*v));
	v->orig = j;
	switch (json_typeof(j)) {
	case JSON_OBJECT: {
		const char *key;
		json_t *val;
		v->type = JV_OBJ;
		tail = &v->u.kids.first;
		json_object_foreach(j, key, val) {
			jv *m = jv_from_json(pool, val);
			if (!m)
				return NULL;
			m->key = key;
			m->keylen = strlen(key); /* jansson keys hold no NUL */
			jv_add(v, &tail, m);
		}
		break;
	}
	case JSON_ARRAY: {
		size_t index;
		json_t *val;
		v->type = JV_ARR;
		tail = &v->u.kids.first;
		json_array_foreach(j, index, val) {
			jv *m = jv_from_json(pool, val);
			if (!m)
				return NULL;
			jv_add(v, &tail, m);
		}
		break;
	}
	case JSON_STRING:
		v->type = JV_STR;
		v->nuls = strip_nuls(j);
		if (v->nuls == (size_t)-1)
			return NULL;
		v->u.str.s = json_string_value(j);
		v->u.str.len = json_string_length(j);
		break;
	case JSON_INTEGER: /* not with JSON_DECODE_INT_AS_REAL (load_json) */
		v->type = JV_INT;
		v->u.i = json_integer_value(j);
		break;
	/* every number (see load_json); jv_locate gives it its text, and so its kind */
	case JSON_REAL: v->type = JV_REAL; break;
	case JSON_TRUE: v->type = JV_TRUE; break;
	case JSON_FALSE: v->type = JV_FALSE; break;
	default: v->type = JV_NULL; break;
	}
	return v;
}

/* Members of the objects jansson read, by object and key, for jv_locate
 * when the text's keys leave jansson's order (duplicates): an object's
 * members go in on its first such key, once (jv.indexed), so the work
 * stays linear in the body whatever the keys' order. Open addressing;
 * slots are malloc'd and freed by jv_index_free. */
typedef struct jv_index {
	struct jv_slot {
		const jv *obj; /* NULL: free */
		jv *m;
		uint64_t h;
	} *slots;
	size_t cap, used; /* cap a power of two, or 0 */
} jv_index;

static uint64_t jv_index_hash(const jv *obj, const char *key, size_t n)
{
	uint64_t h = 0xcbf29ce484222325ULL ^ (uint64_t)(uintptr_t)obj;

	for (size_t i = 0; i < n; i++)
		h = (h ^ (unsigned char)key[i]) * 0x100000001b3ULL;
	h ^= h >> 29;
	h *= 0xbf58476d1ce4e5b9ULL;
	return h ^ h >> 32;
}

static void jv_index_free(jv_index *ix)
{
	free(ix->slots);
	memset(ix, 0, sizeof(*ix));
}

/* The member of obj named key (n bytes), NULL when none. */
static jv *jv_index_find(const jv_index *ix, const jv *obj, const char *key, size_t n, uint64_t h)
{
	if (!ix->cap)
		return NULL;
	for (size_t i = (size_t)h & (ix->cap - 1);; i = (i + 1) & (ix->cap - 1)) {
		const struct jv_slot *sl = &ix->slots[i];
		if (!sl->obj)
			return NULL;
		if (sl->h == h && sl->obj == obj && sl->m->keylen == n && memcmp(sl->m->key, key, n) == 0)
			return sl->m;
	}
}

/* Room for extra more slots (load at most a half). -1 when out of memory. */
static int jv_index_reserve(jv_index *ix, size_t extra)
{
	size_t cap = ix->cap ? ix->cap : 64;
	struct jv_slot *slots;

	if (extra > SIZE_MAX / 4 - ix->used)
		return -1;
	while (cap / 2 < ix->used + extra)
		cap *= 2;
	if (cap == ix->cap)
		return 0;
	if (!(slots = calloc(cap, sizeof(*slots))))
		return -1;
	for (size_t i = 0; i < ix->cap; i++) {
		size_t j;
		if (!ix->slots[i].obj)
			continue;
		for (j = (size_t)ix->slots[i].h & (cap - 1); slots[j].obj; j = (j + 1) & (cap - 1))
			;
		slots[j] = ix->slots[i];
	}
	free(ix->slots);
	ix->slots = slots;
	ix->cap = cap;
	return 0;
}

/* Indexes obj's members unless done already: a key's first member wins, as
 * a scan from the first would find (jansson's keys are unique anyway). -1
 * when out of memory. */
static int jv_index_object(jv_index *ix, jv *obj)
{
	if (obj->indexed)
		return 0;
	if (jv_index_reserve(ix, obj->u.kids.n) < 0)
		return -1;
	obj->indexed = true;
	for (jv *m = obj->u.kids.first; m; m = m->next) {
		uint64_t h = jv_index_hash(obj, m->key, m->keylen);
		size_t j;
		if (jv_index_find(ix, obj, m->key, m->keylen, h))
			continue;
		for (j = (size_t)h & (ix->cap - 1); ix->slots[j].obj; j = (j + 1) & (ix->cap - 1))
			;
		ix->slots[j] = (struct jv_slot){obj, m, h};
		ix->used++;
	}
	return 0;
}

/* Gives a number jansson read (as a real: see load_json) its text, and
 * makes it what jp_number makes of that text (number_read); also when a
 * duplicate key's earlier value made it something else. */
static void set_number_text(jv *v, const char *text, size_t len)
{
	bool fraction = memchr(text, '.', len) != NULL;
	bool exponent = memchr(text, 'e', len) || memchr(text, 'E', len);

	number_read(v, text, len, fraction, exponent);
}

/* Sets unstorable on the containers of a tree jansson read, from their
 * numbers, once jv_locate gave those their text (jv_add could not); returns
 * v's. */
static bool jv_note_unstorable(jv *v)
{
	if (v->type != JV_OBJ && v->type != JV_ARR)
		return v->unstorable;
	v->unstorable = false;
	for (jv *m = v->u.kids.first; m; m = m->next)
		if (jv_note_unstorable(m))
			v->unstorable = true;
	return v->unstorable;
}

/* jansson keeps no number's text, and a numeric column wants the digits as
 * written, not a double's (see col_numeric): walks the JSON text [s, end)
 * that jansson read into v (with jv_from_json) and gives each number of v
 * its text there (set_number_text). A duplicate key's value is the last
 * one, in the first one's place (jansson's rule): walking in order, the
 * last one is also the last to set a node's text. A key that is not the
 * next member in jansson's order (a duplicate) is looked up in ix, so that
 * many duplicates cost no more than the others. v NULL: the value is
 * skipped. Returns the end of the value; NULL when out of memory or when
 * the text does not hold what jansson read (see jv_from_json_text). */
static const char *jv_locate(pool *pool, jv_index *ix, jv *v, const char *s, const char *end)
{
	while (s < end && (*s == ' ' || *s == '\n' || *s == '\t' || *s == '\r'))
		s++;
	if (s >= end)
		return NULL;
	if (*s == '"') {
		for (s++; s < end && *s != '"'; s += *s == '\\' ? 2 : 1)
			;
		return s < end ? s + 1 : NULL;
	}
	if (*s == '{' || *s == '[') {
		bool obj = *s == '{';
		char close = obj ? '}' : ']';
		jv *kids = v && v->type == (obj ? JV_OBJ : JV_ARR) ? v->u.kids.first : NULL, *cursor = kids;

		for (s++;;) {
			jv *m = NULL;
			while (s < end && (*s == ' ' || *s == '\n' || *s == '\t' || *s == '\r'))
				s++;
			if (s < end && *s == close)
				return s + 1;
			if (obj) {
				const char *key = s + 1, *kend = jv_locate(pool, ix, NULL, s, end);
				size_t klen;
				if (!kend || *s != '"')
					return NULL;
				klen = (size_t)(kend - 1 - key);
				if (memchr(key, '\\', klen)) { /* as jansson decoded it (NULs were stripped) */
					char *dst = pool_alloc(pool, klen);
					size_t nuls = 0;
					if (!dst)
						return NULL;
					klen = decode_string(key, kend - 1, dst, &nuls);
					key = dst;
				}
				if (cursor && cursor->keylen == klen && memcmp(cursor->key, key, klen) == 0)
					m = cursor; /* the common case: keys in jansson's order */
				else if (kids) { /* a duplicate */
					if (jv_index_object(ix, v) < 0)
						return NULL;
					m = jv_index_find(ix, v, key, klen, jv_index_hash(v, key, klen));
				}
				if (m == cursor && cursor)
					cursor = cursor->next;
				for (s = kend; s < end && *s != ':'; s++)
					;
				s++;
			} else {
				m = cursor;
				cursor = cursor ? cursor->next : NULL;
			}
			if (!(s = jv_locate(pool, ix, m, s, end)))
				return NULL;
			while (s < end && *s != ',' && *s != close)
				s++;
			if (s >= end)
				return NULL;
			if (*s == ',')
				s++;
		}
	}
	if (*s == '-' || is_digit(*s)) {
		const char *start = s;
		while (s < end && (is_digit(*s) || *s == '-' || *s == '+' || *s == '.' || *s == 'e' || *s == 'E'))
			s++;
		if (v && v->orig && json_is_real(v->orig))
			set_number_text(v, start, (size_t)(s - start));
		return s;
	}
	while (s < end && *s >= 'a' && *s <= 'z') /* true, false, null */
		s++;
	return s;
}

/* jv_from_json, then jv_locate over the text jansson read, which gives every
 * real its text (col_numeric, jv_to_i64 and describe rely on it). NULL when
 * out of memory, the walk's only failure: jansson accepted the text (after
 * strip_key_nuls, the same but for "\u0000" in keys, which jv_locate drops
 * from the keys it decodes as well), so it is well-formed JSON, and each
 * node is reached through the last occurrence of its key (its position in
 * an array), the one whose value jansson kept. */
static jv *jv_from_json_text(pool *pool, json_t *j, const char *text, size_t len)
{
	jv *v = jv_from_json(pool, j);
	jv_index ix = {0};

	if (v && !jv_locate(pool, &ix, v, text, text + len))
		v = NULL;
	jv_index_free(&ix);
	if (v)
		jv_note_unstorable(v);
	return v;
}

/* ---- printing */

static int emit(bloom_buf *b, const char *s, size_t n, bool copy)
{
	return copy ? buf_append_json_copy(b, s, n) : buf_append(b, s, n);
}

/* %lld without printf. */
static size_t format_i64(int64_t value, char *buf)
{
	char digits[20];
	uint64_t u = value < 0 ? 0 - (uint64_t)value : (uint64_t)value;
	size_t n = 0, len = 0;

	do {
		digits[n++] = (char)('0' + u % 10);
		u /= 10;
	} while (u);
	if (value < 0)
		buf[len++] = '-';
	while (n)
		buf[len++] = digits[--n];
	return len;
}

/* A string the way jansson's dump_string prints it (no flags). */
static int dump_string(bloom_buf *b, const char *s, size_t len, bool copy)
{
	const char *end = s + len, *run = s;

	if (emit(b, "\"", 1, copy) < 0)
		return -1;
	for (; s < end; s++) {
		unsigned char ch = (unsigned char)*s;
		char esc[8];
		size_t n = 2;

		if (ch >= 0x20 && ch != '"' && ch != '\\')
			continue;
		if (emit(b, run, (size_t)(s - run), copy) < 0)
			return -1;
		run = s + 1;
		esc[0] = '\\';
		switch (ch) {
		case '"': esc[1] = '"'; break;
		case '\\': esc[1] = '\\'; break;
		case '\b': esc[1] = 'b'; break;
		case '\f': esc[1] = 'f'; break;
		case '\n': esc[1] = 'n'; break;
		case '\r': esc[1] = 'r'; break;
		case '\t': esc[1] = 't'; break;
		default: n = (size_t)snprintf(esc, sizeof(esc), "\\u%04X", ch); break;
		}
		if (emit(b, esc, n, copy) < 0)
			return -1;
	}
	if (emit(b, run, (size_t)(end - run), copy) < 0)
		return -1;
	return emit(b, "\"", 1, copy);
}

/* Appends v as json_dumps(JSON_COMPACT) prints it, but numbers as the API
 * wrote them (jansson would print a real with at most 17 digits), unless
 * jsonb only takes a real's value (see number_read): then that value,
 * exactly; whichever reader read v; with copy, in COPY text escaping. An
 * unstorable number is printed as written too (for a reject's raw). */
static int jv_dump(bloom_buf *b, const jv *v, bool copy)
{
	char num[24];
	size_t n;

	if (v->plain && v->text) /* jansson's nodes: only numbers have both */
		return emit(b, v->text, v->textlen, copy);
	switch (v->type) {
	case JV_NULL: return emit(b, "null", 4, copy);
	case JV_TRUE: return emit(b, "true", 4, copy);
	case JV_FALSE: return emit(b, "false", 5, copy);
	case JV_INT: n = format_i64(v->u.i, num); return emit(b, num, n, copy);
	case JV_REAL: {
		decimal d;
		if (v->unstorable)
			return emit(b, v->text, v->textlen, copy);
		decimal_read(v->text, v->textlen, &d);
		return put_decimal(b, &d); /* digits, '-' and '.': the same in COPY text */
	}
	case JV_STR: return dump_string(b, v->u.str.s, v->u.str.len, copy);
	case JV_ARR:
	case JV_OBJ:
		if (emit(b, v->type == JV_OBJ ? "{" : "[", 1, copy) < 0)
			return -1;
		for (const jv *m = v->u.kids.first; m; m = m->next) {
			if (m != v->u.kids.first && emit(b, ",", 1, copy) < 0)
				return -1;
			if (v->type == JV_OBJ &&
			    (dump_string(b, m->key, m->keylen, copy) < 0 || emit(b, ":", 1, copy) < 0))
				return -1;
			if (jv_dump(b, m, copy) < 0)
				return -1;
		}
		return emit(b, v->type == JV_OBJ ? "}" : "]", 1, copy);
	}
	return -1;
}

/* ------------------------------------------------------- mapping context */

typedef enum { MAP_ROW = 0, MAP_SKIP, MAP_REJECT } map_outcome;

typedef struct ctx {
	const bloom_unit *unit;
	bloom_result *out;
	pool *pool;        /* the nodes of the body or element being mapped */
	bool jansson_only; /* bloom_use_reference_reader: jansson parses everything */
	bool nomem;        /* the failure was an allocation, not the record */
	char reason[256];  /* why the record is rejected */
} ctx;

typedef struct row {
	ctx *c;
	bloom_buf *buf;
	mirror_target_id target;
	size_t mark;      /* buf->len before the row */
	size_t ncols;     /* columns written so far */
	size_t raw_start; /* offset of the escaped raw text in buf */
} row;

static int fail(ctx *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int fail(ctx *c, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	int n = vsnprintf(c->reason, sizeof(c->reason), fmt, ap);
	va_end(ap);
	/* cut short: not inside a UTF-8 character, which PostgreSQL would
	 * refuse, and the batch's rejected_records with it */
	if (n >= (int)sizeof(c->reason)) {
		size_t end = sizeof(c->reason) - 1, lead = end;
		while (lead > 0 && ((unsigned char)c->reason[lead - 1] & 0xC0) == 0x80)
			lead--;
		if (lead > 0) { /* c->reason[lead - 1] begins the last character */
			unsigned char b = (unsigned char)c->reason[lead - 1];
			size_t need = b < 0x80 ? 1 : (b & 0xE0) == 0xC0 ? 2 : (b & 0xF0) == 0xE0 ? 3 : 4;
			if (lead - 1 + need > end)
				c->reason[lead - 1] = '\0';
		}
	}
	return -1;
}

static int fail_nomem(ctx *c)
{
	c->nomem = true;
	return fail(c, "out of memory");
}

/* Describes a JSON value for a reject reason: strings quoted and cut to
 * about 80 bytes on a UTF-8 boundary. */
static void describe(const jv *v, char *buf, size_t buflen)
{
	if (jv_is_string(v)) {
		size_t len = v->u.str.len;
		const char *s = v->u.str.s;
		if (len > 80) {
			len = 80;
			while (len > 0 && ((unsigned char)s[len] & 0xC0) == 0x80)
				len--;
		}
		snprintf(buf, buflen, "\"%.*s\"%s", (int)len, s, len < v->u.str.len ? "..." : "");
	} else if (jv_is_integer(v)) {
		snprintf(buf, buflen, "%" PRId64, v->u.i);
	} else if (jv_is_real(v)) { /* as written: a double may say otherwise */
		int len = v->textlen > 80 ? 80 : (int)v->textlen;
		snprintf(buf, buflen, "%.*s%s", len, v->text, (size_t)len < v->textlen ? "..." : "");
	} else if (jv_is_boolean(v)) {
		snprintf(buf, buflen, "%s", jv_is(v, JV_TRUE) ? "true" : "false");
	} else if (jv_is_object(v)) {
		snprintf(buf, buflen, "an object");
	} else if (jv_is_array(v)) {
		snprintf(buf, buflen, "an array");
	} else {
		snprintf(buf, buflen, "null");
	}
}

static int fail_value(ctx *c, const char *field, const char *what, const jv *v)
{
	char desc[128];

	describe(v, desc, sizeof(desc));
	return fail(c, "%s: %s: %s", field, what, desc);
}

static int fail_missing(ctx *c, const char *field, const jv *v)
{
	return fail(c, "%s: %s", field, !v ? "missing" : jv_is_string(v) ? "empty" : "null");
}

/* The API writes an absent value as null, or leaves it out, or (in some
 * fields) writes an empty string: all three are NULL in the mirror. */
static bool is_absent(const jv *v)
{
	return !v || jv_is_null(v) || (jv_is_string(v) && v->u.str.len == 0);
}

/* ------------------------------------------------------------- columns */

static void row_begin(row *r, ctx *c, mirror_target_id target)
{
	r->c = c;
	r->target = target;
	r->buf = &c->out->copy[target];
	r->mark = r->buf->len;
	r->ncols = 0;
	r->raw_start = 0;
}

static void row_abort(row *r)
{
	buf_truncate(r->buf, r->mark);
}

/* Starts the next column: a tab unless it is the first. */
static int col_start(row *r)
{
	if (r->ncols++ > 0 && buf_putc(r->buf, '\t') < 0)
		return fail_nomem(r->c);
	return 0;
}

static int col_put(row *r, const char *s, size_t n)
{
	if (col_start(r) < 0 || buf_append(r->buf, s, n) < 0)
		return fail_nomem(r->c);
	return 0;
}

static int col_null(row *r)
{
	return col_put(r, "\\N", 2);
}

static int col_i64(row *r, int64_t value)
{
	char num[24];
	return col_put(r, num, format_i64(value, num));
}

/* An integer node as printed: its own text when that is "%lld" already. */
static int col_int_node(row *r, const jv *v)
{
	if (v->plain && !v->orig)
		return col_put(r, v->text, v->textlen);
	return col_i64(r, v->u.i);
}

static int col_bool_value(row *r, bool value)
{
	return col_put(r, value ? "t" : "f", 1);
}

/* A JSON integer, or a real whose value is an integer in int64 range. A
 * real is judged by its text, exactly: a double would take
 * 9007199254740993.0 for 9007199254740992 (another record's id) and
 * 5.0000000000000001 for 5. */
static int jv_to_i64(const jv *v, int64_t *out)
{
	if (jv_is_integer(v)) {
		*out = v->u.i;
		return 0;
	}
	if (jv_is_real(v)) {
		decimal d;
		char digits[19]; /* as many as int64 may need */
		int64_t n;
		decimal_read(v->text, v->textlen, &d);
		n = decimal_int_digits(&d);
		if (decimal_frac_digits(&d) > 0 || n > (int64_t)sizeof(digits))
			return -1;
		for (int64_t i = 0; i < n; i++) /* D's digits and the exponent's zeros */
			digits[i] = decimal_digit(&d, d.point - n + i);
		return digits_to_i64(digits, (size_t)n, d.neg, out) ? 0 : -1;
	}
	return -1;
}

static int col_bigint(row *r, const jv *v, const char *field, bool not_null)
{
	int64_t value;

	if (is_absent(v))
		return not_null ? fail_missing(r->c, field, v) : col_null(r);
	if (jv_to_i64(v, &value) < 0)
		return fail_value(r->c, field, "not an integer", v);
	return v->type == JV_INT ? col_int_node(r, v) : col_i64(r, value);
}

static int col_int(row *r, const jv *v, const char *field)
{
	int64_t value;

	if (is_absent(v))
		return col_null(r);
	if (jv_to_i64(v, &value) < 0)
		return fail_value(r->c, field, "not an integer", v);
	if (value < INT32_MIN || value > INT32_MAX)
		return fail_value(r->c, field, "out of range for integer", v);
	return col_i64(r, value);
}

static int col_text(row *r, const jv *v, const char *field, bool not_null)
{
	size_t len;

	if (!v || jv_is_null(v))
		return not_null ? fail_missing(r->c, field, v) : col_null(r);
	if (!jv_is_string(v))
		return fail_value(r->c, field, "not a string", v);
	len = v->u.str.len;
	if (len == 0 && !not_null)
		return col_null(r);
	if (col_start(r) < 0 || buf_append_copy(r->buf, v->u.str.s, len) < 0)
		return fail_nomem(r->c);
	return 0;
}

static int col_bool(row *r, const jv *v, const char *field, bool not_null)
{
	if (!v || jv_is_null(v))
		return not_null ? fail_missing(r->c, field, v) : col_null(r);
	if (!jv_is_boolean(v))
		return fail_value(r->c, field, "not a boolean", v);
	return col_bool_value(r, jv_is(v, JV_TRUE));
}

/* A JSON number into a numeric column: the value the API wrote, digit for
 * digit (a double would keep 15 to 17 of them), in one canonical form so
 * equal numbers give the same text whoever read them and however the API
 * wrote them: no exponent, no leading or trailing zeros, no minus zero
 * ("1.0" is 1, "1E-5" is 0.00001, "-0.0" is 0). numeric_in would take the
 * JSON text itself, but keeps its scale, and refuses some texts whose
 * value it holds (see numeric_fit_of). A number numeric cannot hold
 * rejects the record. */
static int col_numeric(row *r, const jv *v, const char *field)
{
	decimal d;

	if (is_absent(v))
		return col_null(r);
	if (jv_is_integer(v))
		return col_int_node(r, v);
	if (!jv_is_real(v))
		return fail_value(r->c, field, "not a number", v);
	decimal_read(v->text, v->textlen, &d);
	if (!decimal_fits_numeric(&d))
		return fail_value(r->c, field, "out of range for numeric", v);
	if (col_start(r) < 0 || put_decimal(r->buf, &d) < 0)
		return fail_nomem(r->c);
	return 0;
}

/* -------------------------------------------------------------- dates */

/* Reads exactly n digits at s[*pos]; returns -1 when they are not there. */
static int read_digits(const char *s, size_t len, size_t *pos, int n)
{
	int value = 0;

	if (*pos + (size_t)n > len)
		return -1;
	for (int i = 0; i < n; i++) {
		char ch = s[*pos + (size_t)i];
		if (ch < '0' || ch > '9')
			return -1;
		value = value * 10 + (ch - '0');
	}
	*pos += (size_t)n;
	return value;
}

static bool expect(const char *s, size_t len, size_t *pos, char ch)
{
	if (*pos < len && s[*pos] == ch) {
		(*pos)++;
		return true;
	}
	return false;
}

static int days_in_month(int year, int month)
{
	static const int days[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
	bool leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
	return month == 2 && leap ? 29 : days[month - 1];
}

/* Writes value (0..99) as two digits: timestamps are many, printf is slow. */
static char *put2(char *p, int value)
{
	*p++ = (char)('0' + value / 10);
	*p++ = (char)('0' + value % 10);
	return p;
}

/* Parses the time zone suffix at s[*pos] (none, "Z", "+HH:MM", "+HHMM")
 * into out ("+00" for none and Z; at least 7 bytes). Returns -1 when
 * malformed. */
static int parse_offset(const char *s, size_t len, size_t *pos, char *out)
{
	char sign;
	int hh, mm;

	if (*pos == len || expect(s, len, pos, 'Z')) {
		memcpy(out, "+00", 4);
		return 0;
	}
	sign = s[*pos];
	if (sign != '+' && sign != '-')
		return -1;
	(*pos)++;
	if ((hh = read_digits(s, len, pos, 2)) < 0)
		return -1;
	expect(s, len, pos, ':');
	if ((mm = read_digits(s, len, pos, 2)) < 0)
		return -1;
	/* PostgreSQL refuses displacements beyond 15:59 */
	if (hh > 15 || mm > 59)
		return -1;
	out[0] = sign;
	out = put2(out + 1, hh);
	*out++ = ':';
	*put2(out, mm) = '\0';
	return 0;
}

/* Normalises a .NET date string into out as "YYYY-MM-DD HH:MM:SS[.fffffff]+00"
 * (or with the given offset). Returns the length, or -1 when it is not a
 * date this mapping accepts. */
static int format_timestamp(const char *s, size_t len, char *out, size_t outlen)
{
	size_t pos = 0, frac_start = 0, frac_len = 0, n;
	int year, month, day, hour = 0, minute = 0, second = 0;
	char offset[8], *p;

	if ((year = read_digits(s, len, &pos, 4)) < 1 || !expect(s, len, &pos, '-') ||
	    (month = read_digits(s, len, &pos, 2)) < 1 || month > 12 || !expect(s, len, &pos, '-') ||
	    (day = read_digits(s, len, &pos, 2)) < 1 || day > days_in_month(year, month))
		return -1;
	if (expect(s, len, &pos, 'T')) {
		if ((hour = read_digits(s, len, &pos, 2)) < 0 || hour > 23 || !expect(s, len, &pos, ':') ||
		    (minute = read_digits(s, len, &pos, 2)) < 0 || minute > 59)
			return -1;
		if (expect(s, len, &pos, ':')) {
			if ((second = read_digits(s, len, &pos, 2)) < 0 || second > 59)
				return -1;
			if (expect(s, len, &pos, '.')) {
				frac_start = pos;
				while (pos < len && s[pos] >= '0' && s[pos] <= '9')
					pos++;
				frac_len = pos - frac_start;
				/* all of them go to PostgreSQL, which rounds to its
				 * microseconds as it does the same text typed in SQL
				 * (.NET writes seven digits: cutting would be off by
				 * one microsecond half the time) */
				if (frac_len < 1 || frac_len > 9)
					return -1;
				/* but the last instant of year 9999 (.NET's
				 * DateTime.MaxValue, written for "never") stays in
				 * it: rounding would carry it into year 10000 */
				if (year == 9999 && month == 12 && day == 31 && hour == 23 && minute == 59 &&
				    second == 59 && frac_len > 6 && memcmp(s + frac_start, "999999", 6) == 0)
					frac_len = 6;
			}
		}
		if (parse_offset(s, len, &pos, offset) < 0)
			return -1;
	} else {
		memcpy(offset, "+00", 4);
	}
	if (pos != len || outlen < 40)
		return -1;
	/* "%04d-%02d-%02d %02d:%02d:%02d[.frac]offset" */
	p = put2(put2(out, year / 100), year % 100);
	*p++ = '-';
	p = put2(p, month);
	*p++ = '-';
	p = put2(p, day);
	*p++ = ' ';
	p = put2(p, hour);
	*p++ = ':';
	p = put2(p, minute);
	*p++ = ':';
	p = put2(p, second);
	if (frac_len) {
		*p++ = '.';
		memcpy(p, s + frac_start, frac_len);
		p += frac_len;
	}
	n = strlen(offset);
	memcpy(p, offset, n + 1);
	return (int)(p + n - out);
}

static int col_timestamp(row *r, const jv *v, const char *field)
{
	char ts[48];
	int n;

	if (!v || jv_is_null(v))
		return col_null(r);
	if (!jv_is_string(v))
		return fail_value(r->c, field, "not a date", v);
	if (v->u.str.len == 0)
		return col_null(r);
	n = format_timestamp(v->u.str.s, v->u.str.len, ts, sizeof(ts));
	if (n < 0)
		return fail_value(r->c, field, "not a date", v);
	return col_put(r, ts, (size_t)n);
}

/* ------------------------------------------------------------ raw, rows */

/* The first member of container v that holds a number jsonb cannot hold
 * (v->unstorable says there is one). */
static const jv *first_unstorable(const jv *v)
{
	const jv *m = v->u.kids.first;

	while (!m->unstorable)
		m = m->next;
	return m;
}

/* Fails a record that raw cannot hold: names the member of obj that holds
 * the first number jsonb cannot hold, and that number. */
static int fail_unstorable(ctx *c, const jv *obj)
{
	const jv *member = first_unstorable(obj), *number = member;
	char desc[128];

	while (number->type == JV_OBJ || number->type == JV_ARR)
		number = first_unstorable(number);
	describe(number, desc, sizeof(desc));
	return fail(c, "%.*s: out of range for jsonb: %s", (int)member->keylen, member->key ? member->key : "", desc);
}

/* Writes the raw column (compact JSON, COPY-escaped), the newline, and
 * counts the row. A record with a number jsonb cannot hold fails: raw
 * would refuse the whole batch's COPY. */
static int row_finish(row *r, const jv *obj)
{
	const mirror_target *t = mirror_target_get(r->target);

	assert(r->ncols + 1 == t->ncols);
	(void)t;
	if (obj->unstorable)
		return fail_unstorable(r->c, obj);
	if (col_start(r) < 0)
		return -1;
	r->raw_start = r->buf->len;
	/* compact, numbers as the API wrote them (see jv_dump) */
	if (jv_dump(r->buf, obj, true) < 0 || buf_putc(r->buf, '\n') < 0)
		return fail_nomem(r->c);
	r->c->out->nrows[r->target]++;
	return 0;
}

static int add_child(ctx *c, bloom_unit_kind kind, int64_t ref)
{
	bloom_result *out = c->out;

	if (out->nchildren == out->children_cap) {
		size_t cap = out->children_cap ? out->children_cap * 2 : 16;
		bloom_unit *units = realloc(out->children, cap * sizeof(*units));
		if (!units)
			return fail_nomem(c);
		out->children = units;
		out->children_cap = cap;
	}
	out->children[out->nchildren].kind = kind;
	out->children[out->nchildren].ref = ref;
	out->nchildren++;
	return 0;
}

static int add_children(ctx *c, const bloom_unit_kind *kinds, size_t nkinds, int64_t ref)
{
	for (size_t i = 0; i < nkinds; i++)
		if (add_child(c, kinds[i], ref) < 0)
			return -1;
	return 0;
}

#define get(obj, key) jv_get(obj, key)

/* Reads obj.key as an int64 id for children; the row was already checked. */
static int64_t get_id(const jv *obj)
{
	int64_t id = 0;
	(void)jv_to_i64(get(obj, "Id"), &id);
	return id;
}

/* Queues the children of a user or meeting whose Id is usable, whatever
 * became of its row (outcome): a row rejected for another column must not
 * hide what lies under it, which a complete run would then mark deleted. */
static map_outcome with_children(ctx *c, const jv *obj, map_outcome outcome, const bloom_unit_kind *kinds,
				 size_t nkinds)
{
	int64_t id;

	if (jv_to_i64(get(obj, "Id"), &id) < 0)
		return outcome;
	if (add_children(c, kinds, nkinds, id) < 0)
		return MAP_REJECT;
	return outcome;
}

/* Returns MAP_REJECT when a column failed (rolling the row back). */
static map_outcome row_fail(row *r)
{
	row_abort(r);
	return MAP_REJECT;
}

/* ------------------------------------------------------------- mappers */

static bool string_equals(const jv *v, const char *s)
{
	size_t n = strlen(s);
	return jv_is_string(v) && v->u.str.len == n && memcmp(v->u.str.s, s, n) == 0;
}

static map_outcome map_user(ctx *c, const jv *obj)
{
	const jv *email = get(obj, "Email");
	bool placeholder;
	map_outcome outcome = MAP_ROW;
	row r;

	if (!string_equals(get(obj, "ResultType"), "User"))
		return MAP_SKIP;
	placeholder = !email || jv_is_null(email) || (jv_is_string(email) && email->u.str.len == 0) ||
	              string_equals(get(obj, "ImageUrl"), "/i/userplaceholder");
	row_begin(&r, c, MIRROR_T_USERS);
	if (col_bigint(&r, get(obj, "Id"), "Id", true) < 0 || col_text(&r, get(obj, "Name"), "Name", true) < 0 ||
	    col_text(&r, email, "Email", false) < 0 || col_text(&r, get(obj, "Description"), "Description", false) < 0 ||
	    col_text(&r, get(obj, "ImageUrl"), "ImageUrl", false) < 0 ||
	    col_bigint(&r, get(obj, "OrganizationId"), "OrganizationId", false) < 0 ||
	    col_bool_value(&r, placeholder) < 0 || row_finish(&r, obj) < 0)
		outcome = row_fail(&r);
	return with_children(c, obj, outcome, user_kids, KIDS_COUNT(user_kids));
}

static map_outcome map_meeting_list(ctx *c, const jv *obj)
{
	map_outcome outcome = MAP_ROW;
	row r;

	row_begin(&r, c, MIRROR_T_MEETINGS_LIST);
	if (col_bigint(&r, get(obj, "Id"), "Id", true) < 0 || col_text(&r, get(obj, "Name"), "Name", false) < 0 ||
	    col_text(&r, get(obj, "Type"), "Type", false) < 0 || col_text(&r, get(obj, "Key"), "Key", false) < 0 ||
	    row_finish(&r, obj) < 0)
		outcome = row_fail(&r);
	return with_children(c, obj, outcome, meeting_kids, KIDS_COUNT(meeting_kids));
}

static map_outcome map_meeting_detail(ctx *c, const jv *obj)
{
	const jv *id = get(obj, "Id");
	const jv *basics = get(obj, "Basics");
	row r;

	row_begin(&r, c, MIRROR_T_MEETINGS_DETAIL);
	if (basics && !jv_is_null(basics) && !jv_is_object(basics)) {
		fail_value(c, "Basics", "not an object", basics);
		return row_fail(&r);
	}
	if ((!id || jv_is_null(id) ? col_i64(&r, c->unit->ref) : col_bigint(&r, id, "Id", true)) < 0 ||
	    col_text(&r, get(basics, "Name"), "Basics.Name", false) < 0 ||
	    col_timestamp(&r, get(obj, "StartDateUtc"), "StartDateUtc") < 0 ||
	    col_timestamp(&r, get(obj, "CreateTime"), "CreateTime") < 0 ||
	    col_bigint(&r, get(obj, "OrganizationId"), "OrganizationId", false) < 0 || row_finish(&r, obj) < 0)
		return row_fail(&r);
	return MAP_ROW;
}

static map_outcome map_attendee(ctx *c, const jv *obj)
{
	row r;

	row_begin(&r, c, MIRROR_T_ATTENDEES);
	if (col_i64(&r, c->unit->ref) < 0 || col_bigint(&r, get(obj, "Id"), "Id", true) < 0 || row_finish(&r, obj) < 0)
		return row_fail(&r);
	return MAP_ROW;
}

/* Owner.Id; when Owner names no one (null or missing, or an object whose
 * Id is null or missing), fallback_ref if have_fallback, else NULL. */
static int col_owner(row *r, const jv *obj, bool have_fallback, int64_t fallback_ref)
{
	const jv *owner = get(obj, "Owner"), *id;

	if (owner && !jv_is_null(owner) && !jv_is_object(owner))
		return fail_value(r->c, "Owner", "not an object", owner);
	id = get(owner, "Id");
	if (!id || jv_is_null(id))
		return have_fallback ? col_i64(r, fallback_ref) : col_null(r);
	return col_bigint(r, id, "Owner.Id", false);
}

static map_outcome map_todo(ctx *c, const jv *obj)
{
	int64_t id;
	bool user_list = c->unit->kind == BLOOM_UNIT_USER_TODOS;
	row r;

	if (jv_to_i64(get(obj, "Id"), &id) == 0 && id < 0)
		return MAP_SKIP; /* a milestone */
	/* two targets: only a user's list knows the owner of a todo without
	 * one, so only it may replace a stored owner with its own (mirror.c) */
	row_begin(&r, c, user_list ? MIRROR_T_USER_TODOS : MIRROR_T_TODOS);
	if (col_bigint(&r, get(obj, "Id"), "Id", true) < 0 || col_text(&r, get(obj, "Name"), "Name", true) < 0 ||
	    col_text(&r, get(obj, "DetailsUrl"), "DetailsUrl", false) < 0 ||
	    col_timestamp(&r, get(obj, "DueDate"), "DueDate") < 0 ||
	    col_timestamp(&r, get(obj, "CreateTime"), "CreateTime") < 0 ||
	    col_timestamp(&r, get(obj, "CompleteTime"), "CompleteTime") < 0 ||
	    col_timestamp(&r, get(obj, "CloseTime"), "CloseTime") < 0 ||
	    col_bool(&r, get(obj, "Complete"), "Complete", true) < 0 ||
	    col_bigint(&r, get(obj, "OriginId"), "OriginId", false) < 0 ||
	    col_text(&r, get(obj, "Origin"), "Origin", false) < 0 ||
	    col_owner(&r, obj, user_list, c->unit->ref) < 0 || row_finish(&r, obj) < 0)
		return row_fail(&r);
	return MAP_ROW;
}

static bool is_divider(const jv *obj)
{
	const jv *id = get(obj, "Id"), *name = get(obj, "Name");

	return !id || jv_is_null(id) || !name || jv_is_null(name) || (jv_is_string(name) && name->u.str.len == 0);
}

/* The meeting_measurables row, reusing the raw text already escaped into
 * the measurables row m. */
static int meeting_measurable_row(ctx *c, const row *m, int64_t measurable_id)
{
	const bloom_buf *src = m->buf;
	size_t raw_len = src->len - m->raw_start; /* includes the newline */
	row r;

	row_begin(&r, c, MIRROR_T_MEETING_MEASURABLES);
	if (col_i64(&r, c->unit->ref) < 0 || col_i64(&r, measurable_id) < 0 || col_start(&r) < 0 ||
	    buf_append(r.buf, src->data + m->raw_start, raw_len) < 0) {
		row_abort(&r);
		return fail_nomem(c);
	}
	c->out->nrows[MIRROR_T_MEETING_MEASURABLES]++;
	return 0;
}

static map_outcome map_measurable(ctx *c, const jv *obj)
{
	row r;

	if (is_divider(obj))
		return MAP_SKIP;
	row_begin(&r, c, MIRROR_T_MEASURABLES);
	if (col_bigint(&r, get(obj, "Id"), "Id", true) < 0 || col_text(&r, get(obj, "Name"), "Name", false) < 0 ||
	    col_numeric(&r, get(obj, "Target"), "Target") < 0 ||
	    col_text(&r, get(obj, "Modifiers"), "Modifiers", false) < 0 ||
	    col_text(&r, get(obj, "Direction"), "Direction", false) < 0 || col_owner(&r, obj, false, 0) < 0 ||
	    row_finish(&r, obj) < 0)
		return row_fail(&r);
	if (meeting_measurable_row(c, &r, get_id(obj)) < 0) {
		c->out->nrows[MIRROR_T_MEASURABLES]--;
		return row_fail(&r);
	}
	return MAP_ROW;
}

static map_outcome map_score(ctx *c, const jv *obj)
{
	row r;

	row_begin(&r, c, MIRROR_T_SCORES);
	if (col_bigint(&r, get(obj, "Id"), "Id", true) < 0 ||
	    col_bigint(&r, get(obj, "MeasurableId"), "MeasurableId", false) < 0 ||
	    col_bigint(&r, get(obj, "AccountableUserId"), "AccountableUserId", false) < 0 ||
	    col_text(&r, get(obj, "MeasurableName"), "MeasurableName", false) < 0 ||
	    col_numeric(&r, get(obj, "Target"), "Target") < 0 || col_numeric(&r, get(obj, "Measured"), "Measured") < 0 ||
	    col_text(&r, get(obj, "Week"), "Week", false) < 0 || col_int(&r, get(obj, "ForWeek"), "ForWeek") < 0 ||
	    col_timestamp(&r, get(obj, "DateEntered"), "DateEntered") < 0 || row_finish(&r, obj) < 0)
		return row_fail(&r);
	return MAP_ROW;
}

/* A boolean that defaults to false when absent or null (Archived). */
static int col_flag(row *r, const jv *v, const char *field)
{
	if (!v || jv_is_null(v))
		return col_bool_value(r, false);
	return col_bool(r, v, field, true);
}

/* The goal_meetings rows of a goal: one per element of Origins (absent or
 * null: none). Each row's raw is the origin object. */
static int goal_meeting_rows(ctx *c, const jv *goal, int64_t goal_id)
{
	const jv *origins = get(goal, "Origins");
	const jv *origin;
	row r;

	if (!origins || jv_is_null(origins))
		return 0;
	if (!jv_is_array(origins))
		return fail_value(c, "Origins", "not an array", origins);
	for (origin = origins->u.kids.first; origin; origin = origin->next) {
		if (!jv_is_object(origin))
			return fail_value(c, "Origins[]", "not an object", origin);
		row_begin(&r, c, MIRROR_T_GOAL_MEETINGS);
		if (col_i64(&r, goal_id) < 0 || col_bigint(&r, get(origin, "Id"), "Origins[].Id", true) < 0 ||
		    row_finish(&r, origin) < 0) {
			row_abort(&r);
			return -1;
		}
	}
	return 0;
}

static map_outcome map_goal(ctx *c, const jv *obj)
{
	bool archived_list = c->unit->kind == BLOOM_UNIT_ARCHIVED_GOALS;
	bloom_buf *links = &c->out->copy[MIRROR_T_GOAL_MEETINGS];
	size_t links_mark = links->len, links_rows = c->out->nrows[MIRROR_T_GOAL_MEETINGS];
	row r;

	row_begin(&r, c, MIRROR_T_GOALS);
	if (col_bigint(&r, get(obj, "Id"), "Id", true) < 0 || col_text(&r, get(obj, "Name"), "Name", true) < 0 ||
	    col_owner(&r, obj, true, c->unit->ref) < 0 || col_timestamp(&r, get(obj, "DueDate"), "DueDate") < 0 ||
	    col_timestamp(&r, get(obj, "CreateTime"), "CreateTime") < 0 ||
	    col_bool(&r, get(obj, "Complete"), "Complete", true) < 0 ||
	    col_text(&r, get(obj, "Completion"), "Completion", false) < 0 ||
	    (archived_list ? col_bool_value(&r, true) : col_flag(&r, get(obj, "Archived"), "Archived")) < 0 ||
	    row_finish(&r, obj) < 0)
		return row_fail(&r);
	if (goal_meeting_rows(c, obj, get_id(obj)) < 0) {
		buf_truncate(links, links_mark);
		c->out->nrows[MIRROR_T_GOAL_MEETINGS] = links_rows;
		c->out->nrows[MIRROR_T_GOALS]--;
		return row_fail(&r);
	}
	return MAP_ROW;
}

/* meeting_id and meeting_name of an issue or a headline: a meeting's list
 * is about the meeting asked (its rows may lack OriginId); a user's list
 * says OriginId. meeting_name is Origin either way. */
static int col_origin(row *r, const jv *obj, bool meeting_list)
{
	if ((meeting_list ? col_i64(r, r->c->unit->ref) : col_bigint(r, get(obj, "OriginId"), "OriginId", false)) < 0)
		return -1;
	return col_text(r, get(obj, "Origin"), "Origin", false);
}

static map_outcome map_issue(ctx *c, const jv *obj)
{
	bool meeting_list = c->unit->kind == BLOOM_UNIT_MEETING_ISSUES;
	row r;

	row_begin(&r, c, meeting_list ? MIRROR_T_ISSUES : MIRROR_T_USER_ISSUES);
	if (col_bigint(&r, get(obj, "Id"), "Id", true) < 0 || col_text(&r, get(obj, "Name"), "Name", true) < 0 ||
	    col_text(&r, get(obj, "DetailsUrl"), "DetailsUrl", false) < 0 || col_owner(&r, obj, false, 0) < 0 ||
	    col_origin(&r, obj, meeting_list) < 0 || col_timestamp(&r, get(obj, "CreateTime"), "CreateTime") < 0 ||
	    col_timestamp(&r, get(obj, "CloseTime"), "CloseTime") < 0 ||
	    col_timestamp(&r, get(obj, "CompleteTime"), "CompleteTime") < 0 ||
	    col_bool(&r, get(obj, "Complete"), "Complete", true) < 0 ||
	    col_flag(&r, get(obj, "Archived"), "Archived") < 0 || row_finish(&r, obj) < 0)
		return row_fail(&r);
	return MAP_ROW;
}

static map_outcome map_headline(ctx *c, const jv *obj)
{
	bool meeting_list = c->unit->kind == BLOOM_UNIT_MEETING_HEADLINES;
	row r;

	/* two targets: a user's list owns raw and is_archived (mirror.c) */
	row_begin(&r, c, meeting_list ? MIRROR_T_HEADLINES : MIRROR_T_USER_HEADLINES);
	if (col_bigint(&r, get(obj, "Id"), "Id", true) < 0 || col_text(&r, get(obj, "Name"), "Name", true) < 0 ||
	    col_text(&r, get(obj, "DetailsUrl"), "DetailsUrl", false) < 0 || col_owner(&r, obj, false, 0) < 0 ||
	    col_origin(&r, obj, meeting_list) < 0 ||
	    col_timestamp(&r, get(obj, "CreateTime"), "CreateTime") < 0 ||
	    col_timestamp(&r, get(obj, "CloseTime"), "CloseTime") < 0 ||
	    col_flag(&r, get(obj, "Archived"), "Archived") < 0 || row_finish(&r, obj) < 0)
		return row_fail(&r);
	return MAP_ROW;
}

typedef map_outcome (*mapper)(ctx *c, const jv *obj);

static mapper mapper_for(bloom_unit_kind kind)
{
	switch (kind) {
	case BLOOM_UNIT_USERS: return map_user;
	case BLOOM_UNIT_USER_MEETINGS: return map_meeting_list;
	case BLOOM_UNIT_MEETING: return map_meeting_detail;
	case BLOOM_UNIT_ATTENDEES: return map_attendee;
	case BLOOM_UNIT_MEETING_TODOS:
	case BLOOM_UNIT_USER_TODOS: return map_todo;
	case BLOOM_UNIT_MEASURABLES: return map_measurable;
	case BLOOM_UNIT_MEETING_SCORES:
	case BLOOM_UNIT_USER_SCORES: return map_score;
	case BLOOM_UNIT_GOALS:
	case BLOOM_UNIT_ARCHIVED_GOALS: return map_goal;
	case BLOOM_UNIT_MEETING_ISSUES:
	case BLOOM_UNIT_USER_ISSUES: return map_issue;
	case BLOOM_UNIT_MEETING_HEADLINES:
	case BLOOM_UNIT_USER_HEADLINES: return map_headline;
	default: return NULL;
	}
}

/* ------------------------------------------------------------- rejects */

/* The rejected element's key, built as its row's would be (see the
 * mappers): its Id, or the unit's meeting for a meeting detail without one;
 * for meeting_attendees (of the targets a unit maps to, the only one keyed
 * by two columns) the unit's meeting, then the Id. Also as text, as
 * the loader writes record_id: the columns joined by '/', '?' for an Id
 * that is not an integer (so the meeting is still named). Returns whether
 * there is text at all. */
static bool reject_key(const ctx *c, const jv *elem, bloom_reject *rej, char *buf, size_t buflen)
{
	const jv *id = get(elem, "Id");
	int64_t own = 0;
	bool have = jv_to_i64(id, &own) == 0;
	char owntext[24] = "?";
	bool attendee = rej->target == MIRROR_T_ATTENDEES;

	if (!have && rej->target == MIRROR_T_MEETINGS_DETAIL && (!id || jv_is_null(id))) {
		own = c->unit->ref;
		have = true;
	}
	if (have)
		snprintf(owntext, sizeof(owntext), "%" PRId64, own);
	if (attendee) {
		rej->key[0] = c->unit->ref;
		rej->key[1] = own;
		snprintf(buf, buflen, "%" PRId64 "/%s", c->unit->ref, owntext);
	} else {
		rej->key[0] = own;
		snprintf(buf, buflen, "%s", owntext);
	}
	rej->has_key = have;
	return have || attendee;
}

/* A new reject of the unit's target, counted at once (so that
 * bloom_result_free frees whatever gets filled in); NULL when out of memory. */
static bloom_reject *new_reject(ctx *c)
{
	bloom_result *out = c->out;
	bloom_reject *rej;

	if (out->nrejects == out->rejects_cap) {
		size_t cap = out->rejects_cap ? out->rejects_cap * 2 : 8;
		bloom_reject *rejects = realloc(out->rejects, cap * sizeof(*rejects));
		if (!rejects)
			return NULL;
		out->rejects = rejects;
		out->rejects_cap = cap;
	}
	rej = &out->rejects[out->nrejects++];
	memset(rej, 0, sizeof(*rej));
	rej->target = unit_infos[c->unit->kind].target;
	rej->stream = strdup(mirror_target_get(rej->target)->stream);
	return rej->stream ? rej : NULL;
}

static int add_reject(ctx *c, const jv *elem)
{
	char idtext[48];
	bool has_id;
	bloom_reject *rej = new_reject(c);
	bloom_buf raw = {0};

	if (!rej)
		return -1;
	has_id = reject_key(c, elem, rej, idtext, sizeof(idtext));
	rej->reason = strdup(c->reason);
	if (jv_dump(&raw, elem, false) == 0 && raw.len > 0)
		rej->raw = raw.data;
	else
		free(raw.data);
	if (has_id)
		rej->id = strdup(idtext);
	if (!rej->reason || !rej->raw || (has_id && !rej->id))
		return -1;
	return 0;
}

/* A copy of text fit for a text column: NULs dropped, each byte that does
 * not begin valid UTF-8 replaced by U+FFFD. NULL when out of memory. */
static char *text_for_column(const char *text, size_t len)
{
	char *copy = malloc(len * 3 + 1), *d = copy;

	if (!copy)
		return NULL;
	for (size_t i = 0; i < len;) {
		const unsigned char *u = (const unsigned char *)text + i;
		size_t n = *u < 0x80 ? 1 : utf8_length(u, len - i);
		if (n == 0) {
			d += utf8_put(d, 0xFFFD);
			i++;
			continue;
		}
		if (*u != 0) {
			memcpy(d, u, n);
			d += n;
		}
		i += n;
	}
	*d = '\0';
	return copy;
}

/* An element of a list that is well delimited but that no JSON reader
 * accepts (a lone surrogate escape, a byte that is not UTF-8): rejected
 * whole, with the reader's reason and its text, so the rest of the list is
 * kept and the run goes on. It has no key. */
static int add_unreadable(ctx *c, const char *text, size_t len, const char *why)
{
	bloom_reject *rej = new_reject(c);
	size_t reason_len = strlen(why) + sizeof "unreadable JSON: ";

	if (!rej)
		return -1;
	rej->reason = malloc(reason_len);
	rej->raw = text_for_column(text, len);
	if (!rej->reason || !rej->raw)
		return -1;
	snprintf(rej->reason, reason_len, "unreadable JSON: %s", why);
	return 0;
}

/* Maps one element (its NULs already removed): a row, a skip or a reject.
 * Returns -1 only when out of memory. */
static int map_element(ctx *c, mapper map, const jv *elem)
{
	size_t nuls = elem->nuls;
	map_outcome outcome;

	c->nomem = false;
	if (!jv_is_object(elem)) {
		fail(c, "element is not an object");
		outcome = MAP_REJECT;
	} else {
		outcome = map(c, elem);
	}
	if (c->nomem)
		return -1;
	if (outcome == MAP_SKIP) {
		c->out->skipped++;
		return 0;
	}
	c->out->nul_removed += nuls;
	if (outcome == MAP_REJECT)
		return add_reject(c, elem);
	return 0;
}

/* ------------------------------------------------------------- parsing */

static bool is_array_kind(bloom_unit_kind kind)
{
	return kind != BLOOM_UNIT_MEETING && kind != BLOOM_UNIT_MEETING_SCORES && kind != BLOOM_UNIT_USER_SCORES;
}

static const char *jv_type_name(const jv *v)
{
	switch (v->type) {
	case JV_OBJ: return "an object";
	case JV_ARR: return "an array";
	case JV_STR: return "a string";
	case JV_INT:
	case JV_REAL: return "a number";
	case JV_TRUE:
	case JV_FALSE: return "a boolean";
	default: return "null";
	}
}

/* Whether jansson failed for want of memory rather than for the text. */
static bool jansson_out_of_memory(const json_error_t *jerr)
{
#if JANSSON_VERSION_HEX >= 0x020b00
	return json_error_code(jerr) == json_error_out_of_memory;
#else
	(void)jerr;
	return false;
#endif
}

/* Whether strtod, as jansson calls it, overflows on the number text[0..len)
 * (text[len] is writable: it is NUL-terminated for strtod meanwhile). */
static bool beyond_double(char *text, size_t len)
{
	char saved = text[len];
	double value;
	bool overflow;

	text[len] = '\0';
	errno = 0;
	value = strtod(text, NULL);
	overflow = errno == ERANGE && (value == HUGE_VAL || value == -HUGE_VAL);
	text[len] = saved;
	return overflow;
}

/* jansson reads every number as a double, and refuses one past a double's
 * range ("real number overflow", also for a 400-digit integer), though it
 * is valid JSON that numeric and jsonb hold. Overwrites each such number in
 * text (len bytes and a NUL, writable) with a 0 and spaces, so that jansson
 * reads the text at the same offsets; jv_locate then gives every number
 * its text from the body as received. Strings are skipped; what is not a
 * valid number is left for jansson to judge. */
static void blank_big_numbers(char *text, size_t len)
{
	size_t i = 0;

	while (i < len) {
		size_t start = i;
		bool fraction, exponent;
		if (text[i] == '"') {
			for (i++; i < len && text[i] != '"'; i += text[i] == '\\' ? 2 : 1)
				;
			i++;
			continue;
		}
		if (text[i] != '-' && !is_digit(text[i])) {
			i++;
			continue;
		}
		while (i < len && (is_digit(text[i]) || text[i] == '-' || text[i] == '+' || text[i] == '.' ||
		                   text[i] == 'e' || text[i] == 'E'))
			i++;
		if (scan_number(text + start, text + i, &fraction, &exponent) == i - start &&
		    beyond_double(text + start, i - start)) {
			text[start] = '0';
			memset(text + start + 1, ' ', i - start - 1);
		}
	}
}

/* Whether jansson refused a text for what a copy can mend: a NUL in a key
 * or a number past a double's range (see strip_key_nuls and
 * blank_big_numbers). */
static bool jansson_mendable(const json_error_t *jerr)
{
	return strstr(jerr->text, "NUL byte in object key") || strstr(jerr->text, "real number overflow");
}

/* Parses body with jansson (flags: JSON_DECODE_ANY for an array element,
 * which may be a scalar). On failure returns NULL with the reason in err
 * and *nomem (may be NULL) set when memory, not the text, was wanting. */
static json_t *load_json(const char *body, size_t len, size_t flags, bloom_result *out, char *err, size_t errlen,
			 bool *nomem)
{
	json_error_t jerr;
	/* integers as reals: jansson refuses those beyond int64 ("too big
	 * integer"), which jp_number reads; jv_locate makes the others integers
	 * again from their text */
	flags |= JSON_ALLOW_NUL | JSON_DECODE_INT_AS_REAL;
	json_t *root = json_loadb(body ? body : "", body ? len : 0, flags, &jerr);
	bool no_memory = false;

	/* mended once, for both at once: the second error may be the other */
	if (!root && body && jansson_mendable(&jerr)) {
		size_t fixed_len = 0, removed = 0;
		char *fixed = strip_key_nuls(body, len, &fixed_len, &removed);
		if (!fixed) {
			snprintf(err, errlen, "out of memory");
			no_memory = true;
		} else {
			blank_big_numbers(fixed, fixed_len);
			root = json_loadb(fixed, fixed_len, flags, &jerr);
			free(fixed);
			if (root)
				out->nul_removed += removed;
		}
	}
	if (!root && !no_memory) {
		no_memory = jansson_out_of_memory(&jerr);
		snprintf(err, errlen, "invalid json at line %d column %d: %s", jerr.line, jerr.column, jerr.text);
	}
	if (nomem)
		*nomem = no_memory;
	return root;
}

static json_t *load_body(const char *body, size_t len, bloom_result *out, char *err, size_t errlen)
{
	return load_json(body, len, 0, out, err, errlen, NULL);
}

/* Finds the array of elements in root for unit kind; *elements is NULL when
 * there are none (a scorecard without Scores). Returns -1 on a wrong shape. */
static int find_elements(bloom_unit_kind kind, const jv *root, const jv **elements, char *err, size_t errlen)
{
	const jv *scores;

	*elements = NULL;
	if (is_array_kind(kind)) {
		if (!jv_is_array(root))
			goto wrong;
		*elements = root;
		return 0;
	}
	if (!jv_is_object(root))
		goto wrong;
	if (kind == BLOOM_UNIT_MEETING)
		return 0;
	scores = jv_get(root, "Scores");
	if (!scores || jv_is_null(scores))
		return 0;
	if (!jv_is_array(scores)) {
		snprintf(err, errlen, "expected Scores to be an array, got %s", jv_type_name(scores));
		return -1;
	}
	*elements = scores;
	return 0;
wrong:
	snprintf(err, errlen, "expected %s at the top level, got %s", is_array_kind(kind) ? "an array" : "an object",
	         jv_type_name(root));
	return -1;
}

/* How far a result had grown, so a body that turns out bad half-way can be
 * taken back out of it. */
typedef struct mark {
	size_t len[MIRROR_T_COUNT], nrows[MIRROR_T_COUNT];
	size_t nchildren, nrejects, skipped, nul_removed;
} mark;

static void mark_take(const bloom_result *r, mark *m)
{
	for (int t = 0; t < MIRROR_T_COUNT; t++) {
		m->len[t] = r->copy[t].len;
		m->nrows[t] = r->nrows[t];
	}
	m->nchildren = r->nchildren;
	m->nrejects = r->nrejects;
	m->skipped = r->skipped;
	m->nul_removed = r->nul_removed;
}

static void mark_restore(bloom_result *r, const mark *m)
{
	for (int t = 0; t < MIRROR_T_COUNT; t++) {
		r->copy[t].len = m->len[t];
		if (r->copy[t].data)
			r->copy[t].data[m->len[t]] = '\0';
		r->nrows[t] = m->nrows[t];
	}
	for (size_t i = m->nrejects; i < r->nrejects; i++) {
		free(r->rejects[i].stream);
		free(r->rejects[i].id);
		free(r->rejects[i].reason);
		free(r->rejects[i].raw);
	}
	r->nrejects = m->nrejects;
	r->nchildren = m->nchildren;
	r->skipped = m->skipped;
	r->nul_removed = m->nul_removed;
}

static size_t skip_ws(const char *b, size_t len, size_t i)
{
	while (i < len && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r'))
		i++;
	return i;
}

/* The index just past the JSON value that starts at b[i], found by its
 * structure alone (json_loadb then validates the slice); i when there is no
 * value there, 0 when the body ends inside it. */
static size_t value_end(const char *b, size_t len, size_t i)
{
	int depth = 0;
	bool in_string = false;
	for (; i < len; i++) {
		if (in_string) {
			if (b[i] == '\\') {
				i++;
			} else if (b[i] == '"') {
				in_string = false;
				if (depth == 0)
					return i + 1;
			}
			continue;
		}
		switch (b[i]) {
		case '"': in_string = true; break;
		case '{':
		case '[': depth++; break;
		case '}':
		case ']':
			if (depth == 0)
				return i; /* the end of the enclosing array: a scalar ends here */
			if (--depth == 0)
				return i + 1;
			break;
		case ',':
			if (depth == 0)
				return i;
			break;
		default: break;
		}
	}
	return 0;
}

/* A top-level array body, one element at a time: only one element's JSON
 * tree exists at once, so a list of 20,000 users costs its body and rows,
 * not a tree of it. Returns 1 when the body is not an array (the caller
 * parses it whole for the error message), -1 on a bad body, -2 when out of
 * memory. */
static int map_array_body(ctx *c, mapper map, const char *body, size_t len, size_t *n, char *err, size_t errlen)
{
	size_t i = skip_ws(body, len, 0);
	if (i >= len || body[i] != '[')
		return 1;
	i = skip_ws(body, len, i + 1);
	if (i < len && body[i] == ']') {
		i++;
	} else {
		for (;;) {
			size_t end = 0;
			int rc;
			pool_reset(c->pool);
			jv *elem = c->jansson_only ? NULL : jv_parse_element(c->pool, body, len, i, &end);
			if (elem) {
				rc = map_element(c, map, elem);
			} else {
				end = value_end(body, len, i);
				if (end <= i) {
					snprintf(err, errlen, "invalid json: %s at byte %zu",
					         end ? "no value" : "body ends inside a value", i);
					return -1;
				}
				bool nomem = false;
				json_t *jelem = load_json(body + i, end - i, JSON_DECODE_ANY, c->out, err, errlen, &nomem);
				if (nomem)
					return -2;
				if (!jelem) {
					/* delimited, so the rest of the list still reads */
					rc = add_unreadable(c, body + i, end - i, err);
					err[0] = '\0';
				} else {
					pool_reset(c->pool);
					elem = jv_from_json_text(c->pool, jelem, body + i, end - i);
					rc = elem ? map_element(c, map, elem) : -1;
					json_decref(jelem);
				}
			}
			if (rc < 0)
				return -2;
			(*n)++;
			i = skip_ws(body, len, end);
			if (i < len && body[i] == ',') {
				i = skip_ws(body, len, i + 1);
				continue;
			}
			if (i < len && body[i] == ']') {
				i++;
				break;
			}
			snprintf(err, errlen, "invalid json: expected ',' or ']' at byte %zu", i);
			return -1;
		}
	}
	if (skip_ws(body, len, i) != len) {
		snprintf(err, errlen, "invalid json: data after the array at byte %zu", i);
		return -1;
	}
	return 0;
}

/* Whether every bracket of the body closes the one it should, outside
 * strings (value_end counts depth only: "[ ... }" passes it). */
static bool brackets_match(const char *b, size_t len)
{
	char open[2048]; /* jansson's own limit */
	size_t depth = 0;
	bool in_string = false;
	for (size_t i = 0; i < len; i++) {
		if (in_string) {
			if (b[i] == '\\')
				i++;
			else if (b[i] == '"')
				in_string = false;
			continue;
		}
		switch (b[i]) {
		case '"': in_string = true; break;
		case '{':
		case '[':
			if (depth == sizeof(open))
				return false;
			open[depth++] = b[i];
			break;
		case '}':
		case ']':
			if (depth == 0 || open[--depth] != (b[i] == '}' ? '{' : '['))
				return false;
			break;
		default: break;
		}
	}
	return depth == 0 && !in_string;
}

/* Where a member's value is in an object body read by its structure alone
 * (see value_end): [start, end) of the last member named key, 0 and 0 when
 * there is none. Returns -1 when the body is not an object by its
 * structure (a cut body, say), or a member's name holds an escape (it
 * might spell key). */
static int find_member(const char *body, size_t len, const char *key, size_t *start, size_t *end)
{
	size_t i = skip_ws(body, len, 0), keylen = strlen(key);
	*start = *end = 0;
	if (!brackets_match(body, len))
		return -1;
	if (i >= len || body[i] != '{')
		return -1;
	i = skip_ws(body, len, i + 1);
	if (i < len && body[i] == '}')
		return skip_ws(body, len, i + 1) == len ? 0 : -1;
	for (;;) {
		if (i >= len || body[i] != '"')
			return -1;
		size_t key_end = value_end(body, len, i);
		if (key_end <= i || memchr(body + i, '\\', key_end - i))
			return -1;
		size_t v = skip_ws(body, len, key_end);
		if (v >= len || body[v] != ':')
			return -1;
		v = skip_ws(body, len, v + 1);
		size_t v_end = value_end(body, len, v);
		if (v_end <= v)
			return -1;
		if (key_end - i == keylen + 2 && memcmp(body + i + 1, key, keylen) == 0) {
			*start = v;
			*end = v_end;
		}
		i = skip_ws(body, len, v_end);
		if (i < len && body[i] == ',') {
			i = skip_ws(body, len, i + 1);
			continue;
		}
		if (i < len && body[i] == '}')
			return skip_ws(body, len, i + 1) == len ? 0 : -1;
		return -1;
	}
}

/* An object body whole by its structure that no reader takes whole (a lone
 * surrogate, as .NET writes for a string cut inside an emoji; invalid
 * UTF-8; a raw control character): what is readable is kept, as in a list.
 * A scorecard's Scores are read one element at a time, so a bad score is
 * rejected and the others stored (other members are not read, bad or
 * not); a meeting detail, one record, is rejected under its meeting's id.
 * Returns 0 when done so, 1 when the body stays bad (a cut body is fetched
 * again), -2 when out of memory. */
static int salvage_object_body(ctx *c, mapper map, const char *body, size_t len, size_t *n, const char *why)
{
	size_t start, end;
	if (find_member(body, len, "Scores", &start, &end) < 0)
		return 1;
	if (c->unit->kind == BLOOM_UNIT_MEETING) {
		if (add_unreadable(c, body, len, why) < 0)
			return -2;
		bloom_reject *rej = &c->out->rejects[c->out->nrejects - 1];
		char id[24];
		snprintf(id, sizeof(id), "%" PRId64, c->unit->ref);
		if (!(rej->id = strdup(id)))
			return -2;
		rej->has_key = true;
		rej->key[0] = c->unit->ref;
		*n = 1;
		return 0;
	}
	if (end == 0)
		return 1; /* no Scores, in a body no reader takes: not taken for none */
	if (end - start == 4 && memcmp(body + start, "null", 4) == 0)
		return 0; /* no scores */
	char scratch[256];
	int st = map_array_body(c, map, body + start, end - start, n, scratch, sizeof(scratch));
	return st == -2 ? -2 : st == 0 ? 0 : 1;
}

/* Set by tests only (see bloom.h). */
static bool reference_reader;

void bloom_use_reference_reader(bool on)
{
	reference_reader = on;
}

/* Maps the elements of one body into out (rows, rejects and children are
 * appended). -1 with err: bad body (out as it was) or out of memory. */
static int parse_into(const bloom_unit *u, const char *body, size_t len, bloom_result *out, size_t *nelements,
		      char *err, size_t errlen)
{
	mapper map = mapper_for(u->kind);
	json_t *jroot = NULL;
	const jv *root = NULL, *elements = NULL;
	pool nodes = {0};
	ctx c = {.unit = u, .out = out, .pool = &nodes, .jansson_only = reference_reader};
	int rc = -1;
	mark before;
	bool marked = false;

	*nelements = 0;
	if (errlen > 0)
		err[0] = '\0';
	if (!map) {
		snprintf(err, errlen, "unknown unit kind %d", (int)u->kind);
		goto cleanup;
	}
	mark_take(out, &before);
	marked = true;
	if (is_array_kind(u->kind) && body) {
		int st = map_array_body(&c, map, body, len, nelements, err, errlen);
		if (st == 0) {
			rc = 0;
			goto cleanup;
		}
		if (st == -2)
			goto nomem;
		mark_restore(out, &before);
		*nelements = 0;
		if (st < 0)
			goto cleanup;
	}
	pool_reset(&nodes);
	root = body && !c.jansson_only ? jv_parse_body(&nodes, body, len) : NULL;
	if (!root) {
		jroot = load_body(body, len, out, err, errlen);
		if (!jroot && body && !is_array_kind(u->kind)) {
			int st = salvage_object_body(&c, map, body, len, nelements, err);
			if (st == -2)
				goto nomem;
			if (st == 0) {
				err[0] = '\0';
				rc = 0;
			}
			goto cleanup;
		}
		if (!jroot)
			goto cleanup;
		pool_reset(&nodes);
		if (!(root = jv_from_json_text(&nodes, jroot, body, len)))
			goto nomem;
	}
	if (find_elements(u->kind, root, &elements, err, errlen) < 0)
		goto cleanup;
	if (u->kind == BLOOM_UNIT_MEETING) {
		*nelements = 1;
		if (map_element(&c, map, root) < 0)
			goto nomem;
	} else if (elements) {
		*nelements = elements->u.kids.n;
		for (const jv *elem = elements->u.kids.first; elem; elem = elem->next)
			if (map_element(&c, map, elem) < 0)
				goto nomem;
	}
	rc = 0;
	goto cleanup;
nomem:
	snprintf(err, errlen, "out of memory");
	rc = BLOOM_NOMEM;
cleanup:
	if (rc != 0 && marked) {
		/* a failed page leaves the result as it was, NULs stripped from
		 * keys uncounted too: the page is fetched again */
		mark_restore(out, &before);
		*nelements = 0;
	}
	json_decref(jroot);
	pool_free(&nodes);
	return rc;
}

int bloom_parse(const bloom_unit *u, const char *body, size_t len, bloom_result *out, char *err, size_t errlen)
{
	size_t nelements;

	memset(out, 0, sizeof(*out));
	out->unit = *u;
	int rc = parse_into(u, body, len, out, &nelements, err, errlen);
	if (rc < 0)
		bloom_result_free(out);
	return rc < 0 ? -1 : 0;
}

int bloom_parse_page(const bloom_unit *u, const char *body, size_t len, bloom_result *out, size_t *elements,
		     char *err, size_t errlen)
{
	return parse_into(u, body, len, out, elements, err, errlen);
}

bool bloom_unit_pages(bloom_unit_kind kind)
{
	switch (kind) {
	case BLOOM_UNIT_USERS:
	case BLOOM_UNIT_USER_MEETINGS:
	case BLOOM_UNIT_ATTENDEES:
	case BLOOM_UNIT_MEETING_TODOS:
	case BLOOM_UNIT_MEASURABLES:
	case BLOOM_UNIT_USER_TODOS:
		return true;
	default:
		return false;
	}
}

void bloom_result_free(bloom_result *out)
{
	if (!out)
		return;
	for (size_t i = 0; i < MIRROR_T_COUNT; i++)
		free(out->copy[i].data);
	free(out->children);
	for (size_t i = 0; i < out->nrejects; i++) {
		free(out->rejects[i].stream);
		free(out->rejects[i].id);
		free(out->rejects[i].reason);
		free(out->rejects[i].raw);
	}
	free(out->rejects);
	memset(out, 0, sizeof(*out));
}

static size_t str_size(const char *s)
{
	return s ? strlen(s) + 1 : 0;
}

size_t bloom_result_size(const bloom_result *r)
{
	size_t size = sizeof(*r);

	for (size_t i = 0; i < MIRROR_T_COUNT; i++)
		size += r->copy[i].cap;
	size += r->children_cap * sizeof(*r->children);
	size += r->rejects_cap * sizeof(*r->rejects);
	for (size_t i = 0; i < r->nrejects; i++)
		size += str_size(r->rejects[i].stream) + str_size(r->rejects[i].id) + str_size(r->rejects[i].reason) +
		        str_size(r->rejects[i].raw);
	return size;
}
