/* bloom.c — Bloom Growth v1 units and the mapping of their JSON to mirror
 * rows in PostgreSQL COPY text format (see bloom.h, mirror.h and
 * ../shared/design/mirror-schema.md). */
#include "bloom.h"

#include <assert.h>
#include <inttypes.h>
#include <jansson.h>
#include <math.h>
#include <stdarg.h>
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
	[BLOOM_UNIT_USER_TODOS] = {"user_todos", MIRROR_T_TODOS, "todo/user/", ""},
	[BLOOM_UNIT_USER_SCORES] = {"user_scores", MIRROR_T_SCORES, "scorecard/user/", ""},
	[BLOOM_UNIT_GOALS] = {"goals", MIRROR_T_GOALS, "rocks/user/", "?include_origin=true"},
	[BLOOM_UNIT_ARCHIVED_GOALS] = {"archived_goals", MIRROR_T_GOALS, "archivedrocks/user/", ""},
	[BLOOM_UNIT_MEETING_ISSUES] = {"meeting_issues", MIRROR_T_ISSUES, "L10/", "/issues?INCLUDE_RESOLVED=true"},
	[BLOOM_UNIT_USER_ISSUES] = {"user_issues", MIRROR_T_USER_ISSUES, "issues/users/", ""},
	[BLOOM_UNIT_MEETING_HEADLINES] = {"meeting_headlines", MIRROR_T_HEADLINES, "L10/",
					  "/headlines?Include_Origin=true"},
	[BLOOM_UNIT_USER_HEADLINES] = {"user_headlines", MIRROR_T_HEADLINES, "headline/users/", ""},
};

static const unit_info *unit_info_get(bloom_unit_kind kind)
{
	if ((int)kind < BLOOM_UNIT_USERS || kind >= BLOOM_UNIT_KIND_END)
		return NULL;
	return &unit_infos[kind];
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

/* Appends s in COPY text escaping; NUL bytes are skipped (there are none
 * once strings went through strip_nuls, but never emit one). */
static int buf_append_copy(bloom_buf *b, const char *s, size_t n)
{
	char *dst;

	if (buf_reserve(b, 2 * n) < 0)
		return -1;
	dst = b->data + b->len;
	for (size_t i = 0; i < n; i++) {
		char ch = s[i];
		switch (ch) {
		case '\\': *dst++ = '\\'; *dst++ = '\\'; break;
		case '\n': *dst++ = '\\'; *dst++ = 'n'; break;
		case '\r': *dst++ = '\\'; *dst++ = 'r'; break;
		case '\t': *dst++ = '\\'; *dst++ = 't'; break;
		case '\0': break;
		default: *dst++ = ch; break;
		}
	}
	b->len = (size_t)(dst - b->data);
	b->data[b->len] = '\0';
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

/* ------------------------------------------------------- mapping context */

typedef enum { MAP_ROW = 0, MAP_SKIP, MAP_REJECT } map_outcome;

typedef struct ctx {
	const bloom_unit *unit;
	bloom_result *out;
	bool nomem;       /* the failure was an allocation, not the record */
	char reason[256]; /* why the record is rejected */
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
	vsnprintf(c->reason, sizeof(c->reason), fmt, ap);
	va_end(ap);
	return -1;
}

static int fail_nomem(ctx *c)
{
	c->nomem = true;
	return fail(c, "out of memory");
}

static int format_double(double d, char *buf, size_t buflen);

/* Describes a JSON value for a reject reason: strings quoted and cut to
 * about 80 bytes on a UTF-8 boundary. */
static void describe(const json_t *v, char *buf, size_t buflen)
{
	if (json_is_string(v)) {
		size_t len = json_string_length(v);
		const char *s = json_string_value(v);
		if (len > 80) {
			len = 80;
			while (len > 0 && ((unsigned char)s[len] & 0xC0) == 0x80)
				len--;
		}
		snprintf(buf, buflen, "\"%.*s\"%s", (int)len, s, len < json_string_length(v) ? "..." : "");
	} else if (json_is_integer(v)) {
		snprintf(buf, buflen, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
	} else if (json_is_real(v)) {
		format_double(json_real_value(v), buf, buflen);
	} else if (json_is_boolean(v)) {
		snprintf(buf, buflen, "%s", json_is_true(v) ? "true" : "false");
	} else if (json_is_object(v)) {
		snprintf(buf, buflen, "an object");
	} else if (json_is_array(v)) {
		snprintf(buf, buflen, "an array");
	} else {
		snprintf(buf, buflen, "null");
	}
}

static int fail_value(ctx *c, const char *field, const char *what, const json_t *v)
{
	char desc[128];

	describe(v, desc, sizeof(desc));
	return fail(c, "%s: %s: %s", field, what, desc);
}

static int fail_missing(ctx *c, const char *field, const json_t *v)
{
	return fail(c, "%s: %s", field, v ? "null" : "missing");
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
	int n = snprintf(num, sizeof(num), "%" PRId64, value);
	return col_put(r, num, (size_t)n);
}

static int col_bool_value(row *r, bool value)
{
	return col_put(r, value ? "t" : "f", 1);
}

/* A JSON integer, or a real with an integral value in int64 range. */
static int json_to_i64(const json_t *v, int64_t *out)
{
	if (json_is_integer(v)) {
		*out = json_integer_value(v);
		return 0;
	}
	if (json_is_real(v)) {
		double d = json_real_value(v);
		if (isfinite(d) && trunc(d) == d && d >= -9223372036854775808.0 && d < 9223372036854775808.0) {
			*out = (int64_t)d;
			return 0;
		}
	}
	return -1;
}

static int col_bigint(row *r, const json_t *v, const char *field, bool not_null)
{
	int64_t value;

	if (!v || json_is_null(v))
		return not_null ? fail_missing(r->c, field, v) : col_null(r);
	if (json_to_i64(v, &value) < 0)
		return fail_value(r->c, field, "not an integer", v);
	return col_i64(r, value);
}

static int col_int(row *r, const json_t *v, const char *field)
{
	int64_t value;

	if (!v || json_is_null(v))
		return col_null(r);
	if (json_to_i64(v, &value) < 0)
		return fail_value(r->c, field, "not an integer", v);
	if (value < INT32_MIN || value > INT32_MAX)
		return fail_value(r->c, field, "out of range for integer", v);
	return col_i64(r, value);
}

static int col_text(row *r, const json_t *v, const char *field, bool not_null)
{
	size_t len;

	if (!v || json_is_null(v))
		return not_null ? fail_missing(r->c, field, v) : col_null(r);
	if (!json_is_string(v))
		return fail_value(r->c, field, "not a string", v);
	len = json_string_length(v);
	if (len == 0 && !not_null)
		return col_null(r);
	if (col_start(r) < 0 || buf_append_copy(r->buf, json_string_value(v), len) < 0)
		return fail_nomem(r->c);
	return 0;
}

static int col_bool(row *r, const json_t *v, const char *field, bool not_null)
{
	if (!v || json_is_null(v))
		return not_null ? fail_missing(r->c, field, v) : col_null(r);
	if (!json_is_boolean(v))
		return fail_value(r->c, field, "not a boolean", v);
	return col_bool_value(r, json_is_true(v));
}

/* The shortest %.{15,16,17}g text that reads back as the same double. */
static int format_double(double d, char *buf, size_t buflen)
{
	int n = 0;

	for (int prec = 15; prec <= 17; prec++) {
		n = snprintf(buf, buflen, "%.*g", prec, d);
		if (strtod(buf, NULL) == d)
			break;
	}
	return n;
}

static int col_numeric(row *r, const json_t *v, const char *field)
{
	char num[40];
	int n;

	if (!v || json_is_null(v))
		return col_null(r);
	if (json_is_integer(v)) {
		n = snprintf(num, sizeof(num), "%" JSON_INTEGER_FORMAT, json_integer_value(v));
		return col_put(r, num, (size_t)n);
	}
	if (!json_is_real(v))
		return fail_value(r->c, field, "not a number", v);
	if (!isfinite(json_real_value(v)))
		return fail_value(r->c, field, "not a finite number", v);
	n = format_double(json_real_value(v), num, sizeof(num));
	return col_put(r, num, (size_t)n);
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

/* Parses the time zone suffix at s[*pos] (none, "Z", "+HH:MM", "+HHMM")
 * into out ("+00" for none and Z). Returns -1 when malformed. */
static int parse_offset(const char *s, size_t len, size_t *pos, char *out, size_t outlen)
{
	char sign;
	int hh, mm;

	if (*pos == len || expect(s, len, pos, 'Z')) {
		snprintf(out, outlen, "+00");
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
	snprintf(out, outlen, "%c%02d:%02d", sign, hh, mm);
	return 0;
}

/* Normalises a .NET date string into out as "YYYY-MM-DD HH:MM:SS[.ffffff]+00"
 * (or with the given offset). Returns the length, or -1 when it is not a
 * date this mapping accepts. */
static int format_timestamp(const char *s, size_t len, char *out, size_t outlen)
{
	size_t pos = 0, frac_start = 0, frac_len = 0;
	int year, month, day, hour = 0, minute = 0, second = 0;
	char offset[8];

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
				if (frac_len < 1 || frac_len > 9)
					return -1;
				if (frac_len > 6)
					frac_len = 6;
			}
		}
		if (parse_offset(s, len, &pos, offset, sizeof(offset)) < 0)
			return -1;
	} else {
		snprintf(offset, sizeof(offset), "+00");
	}
	if (pos != len)
		return -1;
	return snprintf(out, outlen, "%04d-%02d-%02d %02d:%02d:%02d%s%.*s%s", year, month, day, hour, minute, second,
	                frac_len ? "." : "", (int)frac_len, s + frac_start, offset);
}

static int col_timestamp(row *r, const json_t *v, const char *field)
{
	char ts[48];
	int n;

	if (!v || json_is_null(v))
		return col_null(r);
	if (!json_is_string(v))
		return fail_value(r->c, field, "not a date", v);
	if (json_string_length(v) == 0)
		return col_null(r);
	n = format_timestamp(json_string_value(v), json_string_length(v), ts, sizeof(ts));
	if (n < 0)
		return fail_value(r->c, field, "not a date", v);
	return col_put(r, ts, (size_t)n);
}

/* ------------------------------------------------------------ raw, rows */

static int dump_to_copy(const char *chunk, size_t size, void *data)
{
	return buf_append_copy(data, chunk, size);
}

/* Writes the raw column (compact JSON, COPY-escaped), the newline, and
 * counts the row. */
static int row_finish(row *r, const json_t *obj)
{
	const mirror_target *t = mirror_target_get(r->target);

	assert(r->ncols + 1 == t->ncols);
	(void)t;
	if (col_start(r) < 0)
		return -1;
	r->raw_start = r->buf->len;
	/* jansson keeps no number's text: 15 significant digits give back what
	 * the API wrote for every value of up to 15 digits (99.99, not
	 * 99.989999999999995); longer fractions lose their tail in raw only */
	if (json_dump_callback(obj, dump_to_copy, r->buf, JSON_COMPACT | JSON_REAL_PRECISION(15)) < 0 ||
	    buf_putc(r->buf, '\n') < 0)
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

static const json_t *get(const json_t *obj, const char *key)
{
	return json_object_get(obj, key);
}

/* Reads obj.key as an int64 id for children; the row was already checked. */
static int64_t get_id(const json_t *obj)
{
	int64_t id = 0;
	(void)json_to_i64(get(obj, "Id"), &id);
	return id;
}

/* Returns MAP_REJECT when a column failed (rolling the row back). */
static map_outcome row_fail(row *r)
{
	row_abort(r);
	return MAP_REJECT;
}

/* ------------------------------------------------------------- mappers */

static bool string_equals(const json_t *v, const char *s)
{
	size_t n = strlen(s);
	return json_is_string(v) && json_string_length(v) == n && memcmp(json_string_value(v), s, n) == 0;
}

static map_outcome map_user(ctx *c, json_t *obj)
{
	static const bloom_unit_kind kids[] = {BLOOM_UNIT_USER_MEETINGS, BLOOM_UNIT_USER_TODOS,  BLOOM_UNIT_USER_SCORES,
	                                       BLOOM_UNIT_GOALS,         BLOOM_UNIT_ARCHIVED_GOALS, BLOOM_UNIT_USER_ISSUES,
	                                       BLOOM_UNIT_USER_HEADLINES};
	const json_t *email = get(obj, "Email");
	bool placeholder;
	row r;

	if (!string_equals(get(obj, "ResultType"), "User"))
		return MAP_SKIP;
	placeholder = !email || json_is_null(email) || (json_is_string(email) && json_string_length(email) == 0) ||
	              string_equals(get(obj, "ImageUrl"), "/i/userplaceholder");
	row_begin(&r, c, MIRROR_T_USERS);
	if (col_bigint(&r, get(obj, "Id"), "Id", true) < 0 || col_text(&r, get(obj, "Name"), "Name", true) < 0 ||
	    col_text(&r, email, "Email", false) < 0 || col_text(&r, get(obj, "Description"), "Description", false) < 0 ||
	    col_text(&r, get(obj, "ImageUrl"), "ImageUrl", false) < 0 ||
	    col_bigint(&r, get(obj, "OrganizationId"), "OrganizationId", false) < 0 ||
	    col_bool_value(&r, placeholder) < 0 || row_finish(&r, obj) < 0)
		return row_fail(&r);
	if (add_children(c, kids, sizeof(kids) / sizeof(kids[0]), get_id(obj)) < 0)
		return MAP_REJECT;
	return MAP_ROW;
}

static map_outcome map_meeting_list(ctx *c, json_t *obj)
{
	static const bloom_unit_kind kids[] = {BLOOM_UNIT_MEETING,        BLOOM_UNIT_ATTENDEES,
	                                       BLOOM_UNIT_MEETING_TODOS,  BLOOM_UNIT_MEASURABLES,
	                                       BLOOM_UNIT_MEETING_SCORES, BLOOM_UNIT_MEETING_ISSUES,
	                                       BLOOM_UNIT_MEETING_HEADLINES};
	row r;

	row_begin(&r, c, MIRROR_T_MEETINGS_LIST);
	if (col_bigint(&r, get(obj, "Id"), "Id", true) < 0 || col_text(&r, get(obj, "Name"), "Name", false) < 0 ||
	    col_text(&r, get(obj, "Type"), "Type", false) < 0 || col_text(&r, get(obj, "Key"), "Key", false) < 0 ||
	    row_finish(&r, obj) < 0)
		return row_fail(&r);
	if (add_children(c, kids, sizeof(kids) / sizeof(kids[0]), get_id(obj)) < 0)
		return MAP_REJECT;
	return MAP_ROW;
}

static map_outcome map_meeting_detail(ctx *c, json_t *obj)
{
	const json_t *id = get(obj, "Id");
	const json_t *basics = get(obj, "Basics");
	row r;

	row_begin(&r, c, MIRROR_T_MEETINGS_DETAIL);
	if (basics && !json_is_null(basics) && !json_is_object(basics)) {
		fail_value(c, "Basics", "not an object", basics);
		return row_fail(&r);
	}
	if ((!id || json_is_null(id) ? col_i64(&r, c->unit->ref) : col_bigint(&r, id, "Id", true)) < 0 ||
	    col_text(&r, get(basics, "Name"), "Basics.Name", false) < 0 ||
	    col_timestamp(&r, get(obj, "StartDateUtc"), "StartDateUtc") < 0 ||
	    col_timestamp(&r, get(obj, "CreateTime"), "CreateTime") < 0 ||
	    col_bigint(&r, get(obj, "OrganizationId"), "OrganizationId", false) < 0 || row_finish(&r, obj) < 0)
		return row_fail(&r);
	return MAP_ROW;
}

static map_outcome map_attendee(ctx *c, json_t *obj)
{
	row r;

	row_begin(&r, c, MIRROR_T_ATTENDEES);
	if (col_i64(&r, c->unit->ref) < 0 || col_bigint(&r, get(obj, "Id"), "Id", true) < 0 || row_finish(&r, obj) < 0)
		return row_fail(&r);
	return MAP_ROW;
}

/* Owner.Id, or fallback_ref (when have_fallback) for a null/missing Owner. */
static int col_owner(row *r, const json_t *obj, bool have_fallback, int64_t fallback_ref)
{
	const json_t *owner = get(obj, "Owner");

	if (!owner || json_is_null(owner))
		return have_fallback ? col_i64(r, fallback_ref) : col_null(r);
	if (!json_is_object(owner))
		return fail_value(r->c, "Owner", "not an object", owner);
	return col_bigint(r, get(owner, "Id"), "Owner.Id", false);
}

static map_outcome map_todo(ctx *c, json_t *obj)
{
	int64_t id;
	row r;

	if (json_to_i64(get(obj, "Id"), &id) == 0 && id < 0)
		return MAP_SKIP; /* a milestone */
	row_begin(&r, c, MIRROR_T_TODOS);
	if (col_bigint(&r, get(obj, "Id"), "Id", true) < 0 || col_text(&r, get(obj, "Name"), "Name", true) < 0 ||
	    col_text(&r, get(obj, "DetailsUrl"), "DetailsUrl", false) < 0 ||
	    col_timestamp(&r, get(obj, "DueDate"), "DueDate") < 0 ||
	    col_timestamp(&r, get(obj, "CreateTime"), "CreateTime") < 0 ||
	    col_timestamp(&r, get(obj, "CompleteTime"), "CompleteTime") < 0 ||
	    col_timestamp(&r, get(obj, "CloseTime"), "CloseTime") < 0 ||
	    col_bool(&r, get(obj, "Complete"), "Complete", true) < 0 ||
	    col_bigint(&r, get(obj, "OriginId"), "OriginId", false) < 0 ||
	    col_text(&r, get(obj, "Origin"), "Origin", false) < 0 ||
	    col_owner(&r, obj, c->unit->kind == BLOOM_UNIT_USER_TODOS, c->unit->ref) < 0 || row_finish(&r, obj) < 0)
		return row_fail(&r);
	return MAP_ROW;
}

static bool is_divider(const json_t *obj)
{
	const json_t *id = get(obj, "Id"), *name = get(obj, "Name");

	return !id || json_is_null(id) || !name || json_is_null(name) ||
	       (json_is_string(name) && json_string_length(name) == 0);
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

static map_outcome map_measurable(ctx *c, json_t *obj)
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

static map_outcome map_score(ctx *c, json_t *obj)
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
static int col_flag(row *r, const json_t *v, const char *field)
{
	if (!v || json_is_null(v))
		return col_bool_value(r, false);
	return col_bool(r, v, field, true);
}

/* The goal_meetings rows of a goal: one per element of Origins (absent or
 * null: none). Each row's raw is the origin object. */
static int goal_meeting_rows(ctx *c, const json_t *goal, int64_t goal_id)
{
	const json_t *origins = get(goal, "Origins");
	const json_t *origin;
	size_t index;
	row r;

	if (!origins || json_is_null(origins))
		return 0;
	if (!json_is_array(origins))
		return fail_value(c, "Origins", "not an array", origins);
	json_array_foreach(origins, index, origin) {
		if (!json_is_object(origin))
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

static map_outcome map_goal(ctx *c, json_t *obj)
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
static int col_origin(row *r, const json_t *obj, bool meeting_list)
{
	if ((meeting_list ? col_i64(r, r->c->unit->ref) : col_bigint(r, get(obj, "OriginId"), "OriginId", false)) < 0)
		return -1;
	return col_text(r, get(obj, "Origin"), "Origin", false);
}

static map_outcome map_issue(ctx *c, json_t *obj)
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

static map_outcome map_headline(ctx *c, json_t *obj)
{
	row r;

	row_begin(&r, c, MIRROR_T_HEADLINES);
	if (col_bigint(&r, get(obj, "Id"), "Id", true) < 0 || col_text(&r, get(obj, "Name"), "Name", true) < 0 ||
	    col_text(&r, get(obj, "DetailsUrl"), "DetailsUrl", false) < 0 || col_owner(&r, obj, false, 0) < 0 ||
	    col_origin(&r, obj, c->unit->kind == BLOOM_UNIT_MEETING_HEADLINES) < 0 ||
	    col_timestamp(&r, get(obj, "CreateTime"), "CreateTime") < 0 ||
	    col_timestamp(&r, get(obj, "CloseTime"), "CloseTime") < 0 ||
	    col_flag(&r, get(obj, "Archived"), "Archived") < 0 || row_finish(&r, obj) < 0)
		return row_fail(&r);
	return MAP_ROW;
}

typedef map_outcome (*mapper)(ctx *c, json_t *obj);

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

static int add_reject(ctx *c, const json_t *elem)
{
	bloom_result *out = c->out;
	const json_t *id = json_is_object(elem) ? get(elem, "Id") : NULL;
	bloom_reject *rej;

	if (out->nrejects == out->rejects_cap) {
		size_t cap = out->rejects_cap ? out->rejects_cap * 2 : 8;
		bloom_reject *rejects = realloc(out->rejects, cap * sizeof(*rejects));
		if (!rejects)
			return -1;
		out->rejects = rejects;
		out->rejects_cap = cap;
	}
	rej = &out->rejects[out->nrejects];
	memset(rej, 0, sizeof(*rej));
	rej->stream = strdup(mirror_target_get(unit_infos[c->unit->kind].target)->stream);
	rej->reason = strdup(c->reason);
	rej->raw = json_dumps(elem, JSON_COMPACT | JSON_ENCODE_ANY | JSON_REAL_PRECISION(15));
	if (json_is_integer(id)) {
		char idtext[24];
		snprintf(idtext, sizeof(idtext), "%" JSON_INTEGER_FORMAT, json_integer_value(id));
		rej->id = strdup(idtext);
	}
	out->nrejects++; /* counted even when incomplete, so bloom_result_free frees it */
	if (!rej->stream || !rej->reason || !rej->raw || (json_is_integer(id) && !rej->id))
		return -1;
	return 0;
}

/* Maps one element: strips NULs, then a row, a skip or a reject. Returns -1
 * only when out of memory. */
static int map_element(ctx *c, mapper map, json_t *elem)
{
	size_t nuls = strip_nuls(elem);
	map_outcome outcome;

	if (nuls == (size_t)-1)
		return -1;
	c->nomem = false;
	if (!json_is_object(elem)) {
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

static const char *json_type_name(const json_t *v)
{
	switch (json_typeof(v)) {
	case JSON_OBJECT: return "an object";
	case JSON_ARRAY: return "an array";
	case JSON_STRING: return "a string";
	case JSON_INTEGER:
	case JSON_REAL: return "a number";
	case JSON_TRUE:
	case JSON_FALSE: return "a boolean";
	default: return "null";
	}
}

/* flags: JSON_DECODE_ANY for an array element, which may be a scalar. */
static json_t *load_json(const char *body, size_t len, size_t flags, bloom_result *out, char *err, size_t errlen)
{
	json_error_t jerr;
	flags |= JSON_ALLOW_NUL;
	json_t *root = json_loadb(body ? body : "", body ? len : 0, flags, &jerr);

	if (!root && body && strstr(jerr.text, "NUL byte in object key")) {
		size_t fixed_len = 0, removed = 0;
		char *fixed = strip_key_nuls(body, len, &fixed_len, &removed);
		if (!fixed) {
			snprintf(err, errlen, "out of memory");
			return NULL;
		}
		root = json_loadb(fixed, fixed_len, flags, &jerr);
		free(fixed);
		if (root)
			out->nul_removed += removed;
	}
	if (!root)
		snprintf(err, errlen, "invalid json at line %d column %d: %s", jerr.line, jerr.column, jerr.text);
	return root;
}

static json_t *load_body(const char *body, size_t len, bloom_result *out, char *err, size_t errlen)
{
	return load_json(body, len, 0, out, err, errlen);
}

/* Finds the array of elements in root for unit kind; *elements is NULL when
 * there are none (a scorecard without Scores). Returns -1 on a wrong shape. */
static int find_elements(bloom_unit_kind kind, json_t *root, json_t **elements, char *err, size_t errlen)
{
	json_t *scores;

	*elements = NULL;
	if (is_array_kind(kind)) {
		if (!json_is_array(root))
			goto wrong;
		*elements = root;
		return 0;
	}
	if (!json_is_object(root))
		goto wrong;
	if (kind == BLOOM_UNIT_MEETING)
		return 0;
	scores = json_object_get(root, "Scores");
	if (!scores || json_is_null(scores))
		return 0;
	if (!json_is_array(scores)) {
		snprintf(err, errlen, "expected Scores to be an array, got %s", json_type_name(scores));
		return -1;
	}
	*elements = scores;
	return 0;
wrong:
	snprintf(err, errlen, "expected %s at the top level, got %s", is_array_kind(kind) ? "an array" : "an object",
	         json_type_name(root));
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
			size_t end = value_end(body, len, i);
			if (end <= i) {
				snprintf(err, errlen, "invalid json: %s at byte %zu", end ? "no value" : "body ends inside a value", i);
				return -1;
			}
			json_t *elem = load_json(body + i, end - i, JSON_DECODE_ANY, c->out, err, errlen);
			if (!elem)
				return -1;
			int rc = map_element(c, map, elem);
			json_decref(elem);
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

/* Maps the elements of one body into out (rows, rejects and children are
 * appended). -1 with err: bad body (out as it was) or out of memory. */
static int parse_into(const bloom_unit *u, const char *body, size_t len, bloom_result *out, size_t *nelements,
		      char *err, size_t errlen)
{
	mapper map = mapper_for(u->kind);
	json_t *root = NULL, *elements = NULL, *elem;
	ctx c = {.unit = u, .out = out};
	size_t index;
	int rc = -1;
	mark before;

	*nelements = 0;
	if (errlen > 0)
		err[0] = '\0';
	if (!map) {
		snprintf(err, errlen, "unknown unit kind %d", (int)u->kind);
		goto cleanup;
	}
	mark_take(out, &before);
	if (is_array_kind(u->kind) && body) {
		int st = map_array_body(&c, map, body, len, nelements, err, errlen);
		if (st == 0)
			return 0;
		if (st == -2)
			goto nomem;
		mark_restore(out, &before);
		*nelements = 0;
		if (st < 0)
			return -1;
	}
	root = load_body(body, len, out, err, errlen);
	if (!root || find_elements(u->kind, root, &elements, err, errlen) < 0)
		goto cleanup;
	if (u->kind == BLOOM_UNIT_MEETING) {
		*nelements = 1;
		if (map_element(&c, map, root) < 0)
			goto nomem;
	} else if (elements) {
		*nelements = json_array_size(elements);
		json_array_foreach(elements, index, elem) {
			if (map_element(&c, map, elem) < 0)
				goto nomem;
		}
	}
	rc = 0;
	goto cleanup;
nomem:
	snprintf(err, errlen, "out of memory");
	rc = BLOOM_NOMEM;
cleanup:
	json_decref(root);
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
