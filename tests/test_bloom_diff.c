/* test_bloom_diff.c — bloom.c reads most bodies with its own JSON parser and
 * leaves the rest to jansson; the result must not depend on which one read
 * a body. Each body of a corpus is parsed twice per unit kind, once by each
 * reader (bloom_use_reference_reader forces jansson), with bloom_parse and,
 * for the kinds that page, with bloom_parse_page onto a result that already
 * holds a page. The two outcomes must be equal: COPY text and row count per
 * target, children, rejects (stream, id, reason, raw), skipped and NUL
 * counts, return code, error text, element count.
 *
 * The corpus is built here: odd values (escapes, NULs, surrogates, UTF-8
 * good and bad, dates, numbers at and past the limits, nesting past both
 * parsers' limits, duplicate and escaped keys, malformed JSON) as a body,
 * an element, a key, and in each field of each endpoint's shape
 * (design/bloom-api.md); then random bodies of those shapes with random
 * values, dropped, retyped and duplicated fields, odd whitespace and damage
 * (cut, inserted and replaced bytes). Small bodies are parsed as every
 * kind; shaped ones, to keep the run short under ASan, as the kinds that
 * read the shape plus one or two others (a kind that reads another shape
 * only rejects or skips, and every kind still gets all sorts of bodies).
 * The PRNG is seeded: BLOOM_DIFF_SEED and BLOOM_DIFF_BODIES change the
 * random part for longer hunts. Bodies are copied to buffers of their exact
 * length, so ASan sees a read past the end.
 * Not covered: allocation failure (as in test_bloom.c). */
#include <inttypes.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "bloom.h"

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))
#define PICK(a) ((a)[below(COUNT(a))])

/* -------------------------------------------------------------- builder */

typedef struct sb {
	char *data;
	size_t len, cap;
} sb;

static void sb_put(sb *b, const void *s, size_t n)
{
	if (b->len + n + 1 > b->cap) {
		size_t cap = b->cap ? b->cap : 256;
		while (cap < b->len + n + 1)
			cap *= 2;
		b->data = realloc(b->data, cap);
		assert_non_null(b->data);
		b->cap = cap;
	}
	memcpy(b->data + b->len, s, n);
	b->len += n;
	b->data[b->len] = '\0';
}

static void sb_puts(sb *b, const char *s)
{
	sb_put(b, s, strlen(s));
}

static void sb_printf(sb *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void sb_printf(sb *b, const char *fmt, ...)
{
	char small[128];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(small, sizeof(small), fmt, ap);
	va_end(ap);
	assert_true(n >= 0 && (size_t)n < sizeof(small));
	sb_put(b, small, (size_t)n);
}

static void sb_repeat(sb *b, const char *s, size_t times)
{
	for (size_t i = 0; i < times; i++)
		sb_puts(b, s);
}

/* ----------------------------------------------------------------- PRNG */

static uint64_t rng_state;

/* splitmix64: one 64-bit state, good enough spread for a fuzzer. */
static uint64_t rnd(void)
{
	uint64_t z = (rng_state += 0x9E3779B97F4A7C15ULL);
	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
	z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
	return z ^ (z >> 31);
}

static size_t below(size_t n)
{
	return (size_t)(rnd() % n);
}

static bool chance(unsigned percent)
{
	return below(1000) < percent * 10;
}

/* ------------------------------------------------------------ odd values */

/* JSON strings jansson takes. */
static const char *const good_strings[] = {
	"\"\"", "\"plain\"", "\"\\u0000\"", "\"a\\u0000b\\u0000\"", "\"\\u0000\\u0000\\u0000x\"", "\"x\\\\u0000\"",
	"\"\\ud83d\\ude00\"", "\"\\uD83D\\uDE00\"", "\"\\uDBFF\\uDFFF\\uD800\\uDC00\"", "\"\\ud83D\\uDe80 mixed case\"",
	"\"\\u00e9\\u00E9\\u00c9\"", "\"\\u20ac \\u20AC\"", "\"\\u0041\\u0062\\u007A\"",
	"\"\\u001f\\u001F\\u0001\\u0002\\u0010\"", "\"\\u001F\"", "\"\\u0008\\u000c\\u000a\\u000d\\u0009\"",
	"\"\\u0008\\u000C\\u000A\\u000D\\u0009\"", "\"\\u007f\\u007F\\u0080\\u07ff\\u0800\\uffff\\uFFFE\\uFEFF\"",
	"\"\\u2028\\u2029\"", "\"\\u0022\\u005c\\u005C\\u002f\\u002F\"", "\"\\/\\\\\\\"\\b\\f\\n\\r\\t\"", "\"a/b\"",
	"\"\\\\N\"", "\"\\\\\"", "\"tab\\there\\nnewline\\rcr\"", "\"é 日本語 שלום 😀 \xf0\x9f\x9a\x80\"", "\"\x7f\"",
	"\"\xef\xbf\xbf\xef\xbb\xbf\"", "\"\xf4\x8f\xbf\xbf\"", "\"\xc2\x80\xdf\xbf\xe0\xa0\x80\"", "\"  spaces  \"",
	"\"12\"", "\"-5\"", "\"1e3\"", "\"true\"", "\"null\"", "\"User\"", "\"user\"", "\"Team\"", "\"User\\u0000\"",
	"\"Us\\u0065r\"", "\"/i/userplaceholder\"", "\"/i/userplaceholder\\u0000\"", "\"\\/i\\/userplaceholder\"",
	"\"2024-W25\"", "\"{\\\"Id\\\":1}\"", "\"]}[{,:\"",
};

/* JSON texts jansson refuses (as a value; some are fine as text). */
static const char *const bad_values[] = {
	"\"\\uD800\"", "\"\\uDC00\"", "\"\\udfff x\"", "\"\\uD800\\u0041\"", "\"\\uD800x\"", "\"\\uD800\\uD800\"",
	"\"\\uD800\\\"", "\"\\u12\"", "\"\\u12G4\"", "\"\\x41\"", "\"\\a\"", "\"\\U0041\"", "\"\xff\"", "\"\xc0\x80\"",
	"\"\xc1\xbf\"", "\"\xe0\x80\xaf\"", "\"\xed\xa0\x80\"", "\"\xf4\x90\x80\x80\"", "\"\xf5\x80\x80\x80\"",
	"\"\xe6\x97\"", "\"\x80\"", "\"a\x01" "b\"", "\"a\tb\"", "\"a\nb\"", "\"unterminated", "'single'", "tru", "nul",
	"True", "NULL", "nulll", "falsey", "1e400", "-1e400", "1e999999999999", "01", "-01", "00", "1.", ".5", "+1", "-", "1e", "1e+", "1.e5", "NaN",
	"Infinity", "-Infinity", "0x10", "1.5.5", "--1", "{", "[", "}", "]", "{\"a\"}", "{\"a\":}", "[1,]",
	"{\"a\":1,}", "{,}", "[,1]", "{\"a\":1 \"b\":2}", "[1 2]", "{a:1}", "",
};

static const char *const good_numbers[] = {
	"0", "-0", "1", "-1", "42", "2147483647", "2147483648", "-2147483648", "-2147483649", "4294967296",
	"9007199254740993", "9223372036854775807", "-9223372036854775808", "1000000000000000000", "99.99", "0.1", "0.2",
	"0.3", "0.30000000000000004", "0.1e1", "1e300", "-1e300", "1e-300", "1e-400", "1.7976931348623157e308",
	"4.9e-324", "5e-324", "2.2250738585072014e-308", "-0.0", "0.0", "-0.5", "1E5", "1e5", "1e+5", "1E-5", "1e05",
	"1E+05", "1.5e3", "12.5", "5.0", "5.5", "1.0", "-1.0", "100.50", "100.0", "0.0001", "0.00001", "0.000123",
	"0.00012", "0.001000", "123456789012345.0", "1234567890123456.0", "123456789012345.6", "12345678901234.5",
	"999999999999999.9", "0.123456789012345", "0.1234567890123456", "0.0001234567890123", "3.141592653589793",
	"2.5", "1e15", "1e16", "1e20", "1e21", "100000000000000000000.0", "9223372036854775807.0",
	"9223372036854775808.0", "-9223372036854775808.0", "9.223372036854776e18", "-9.2233720368547758e18",
	"123456789.123456789", "0.000000000000000000000000000001", "1.00000000000000000000001", "2425", "2425.0",
	"3000000000", "9223372036854775808", "-9223372036854775809", "99999999999999999999", "18446744073709551616",
	"79228162514264337593543950335", "-79228162514264337593543950335.5", "33.333333333333333333333333333", "1E-999", "1e-1000", "-0.0e-0", "12345678901234567890e-10",
	/* past a double's range (jansson alone refuses them), past what jsonb
	 * holds, and texts jsonb refuses for values it holds */
	"2e1000", "-2e1000", "1.5E+0005", "123456789012345678.5e-0005", "1E-0005", "-1e-16383", "1e-16384",
	"1e131071", "1e131072", "9.99e131071", "0e1073741822", "0e1073741823", "1.0000e-16379", "1.0000e-16380",
};

static const char *const dates[] = {
	"\"2024-06-01T10:00:00Z\"", "\"2024-06-01T10:00:00\"", "\"2024-06-01T10:00:00.123\"",
	"\"2024-06-01T10:00:00.123Z\"", "\"2024-06-01T10:00:00.1234567Z\"", "\"2024-06-01T10:00:00.7654321\"",
	"\"2024-06-01T10:00:00.123456789Z\"", "\"2024-06-01T10:00:00.1234567890Z\"", "\"2024-06-01T10:00:00.Z\"",
	"\"2024-12-31\"", "\"\"", "\"2024-06-01T10:00:00+02:00\"", "\"2024-06-01T10:00:00-05:30\"",
	"\"2024-06-20T08:30:00+0200\"", "\"2024-06-01T10:00:00+16:00\"", "\"2024-06-01T10:00:00+15:59\"",
	"\"2024-06-01T10:00:00+15:60\"", "\"2024-06-01T10:00:00+1\"", "\"2024-06-01T10:00:00+01:0\"",
	"\"2024-06-01T10:00Z\"", "\"2024-06-01T10:00\"", "\"2024-06-01T10\"", "\"2024-06-01T\"",
	"\"2024-06-01T24:00:00\"", "\"2024-06-01T23:60:00\"", "\"2024-06-01T23:59:60\"", "\"2024-02-29\"",
	"\"2023-02-29\"", "\"1900-02-29\"", "\"2000-02-29\"", "\"2024-02-30\"", "\"2024-04-31\"", "\"2024-13-01\"",
	"\"2024-00-10\"", "\"2024-01-00\"", "\"0000-01-01\"", "\"0001-01-01\"", "\"9999-12-31T23:59:59.999999Z\"",
	"\"2024-06-01 10:00:00\"", "\"2024-06-01T10:00:00z\"", "\"2024-06-01t10:00:00\"", "\"2024-6-1\"",
	"\"24-06-01\"", "\"yesterday\"", "\"31/12/2024\"", "\"2024-W25\"", "\"2024\\u002d06\\u002d01\"",
	"\"2024-06-01T10:00:00\\u005A\"", "\"2024-06-01\\u0000\"", "\"2024-06\\u0000-01\"", "\"\\u0000\"",
	"\" 2024-06-01\"", "\"2024-06-01T10:00:00Z \"", "\"2024-06-01T10:00:00Z\\n\"", "\"２０２４-06-01\"",
	"\"2024-06-01T10:00:00.123+02:00\"", "\"2024-06-01T10:00:00.123-0000\"", "\"2024-06-01T10:00:00Z+02:00\"",
};

static const char *const other_values[] = {
	"true", "false", "null", "{}", "[]", "{ }", "[ ]", "{\"Id\":1}", "{\"Id\":1,\"Name\":\"x\"}",
	"[1,\"a\",null,true,1.5]", "[[[]]]", "{\"a\":{\"b\":[1,{\"c\":null}]}}", "{\"Id\":1,\"Id\":2}",
	"{\"a\":1,\"b\":2,\"a\":3}", "{\"a\\u0000b\":1}", "{\"\\u0000\":\"\\u0000\"}", "{\"\\u0049d\":5}",
	"{\"k\":1,\"\\u006b\":2}", "{\"\":1}", "{\"\":1,\"\":2}", "{\"\\ud83d\\ude00\":\"\\u00e9\"}",
	"{\"a\\tb\":\"\\/\"}", "{\"Name\":\"\\u0001\"}", "[\"\\u0000\",{\"x\":\"\\u0000\"}]",
	"{ \"Id\" : 1 , \"Name\" : \"x\" }", "[ 1 , 2 ]", "{\"Id\":\n1\r\n}",
};

/* Values made by code: long strings, long numbers, deep nesting, big objects. */
static char **made_values;
static size_t nmade;

static void add_made(sb *b)
{
	made_values = realloc(made_values, (nmade + 1) * sizeof(*made_values));
	assert_non_null(made_values);
	made_values[nmade++] = b->data;
	memset(b, 0, sizeof(*b));
}

static void nest(sb *b, size_t depth, bool objects, const char *inner)
{
	for (size_t i = 0; i < depth; i++)
		sb_puts(b, objects ? "{\"k\":" : "[");
	sb_puts(b, inner);
	for (size_t i = 0; i < depth; i++)
		sb_puts(b, objects ? "}" : "]");
}

static void make_values(void)
{
	sb b = {0};
	/* past the fast reader's depth (64) and jansson's (2048), counting the
	 * body's array and the element around the value */
	static const size_t depths[] = {60, 61, 62, 63, 64, 2044, 2045, 2046, 2047};

	sb_puts(&b, "\"");
	sb_repeat(&b, "x", 40000);
	sb_puts(&b, "\"");
	add_made(&b);
	sb_puts(&b, "\"");
	sb_repeat(&b, "a\\tb\\u00e9\\\"\\\\ ", 2000);
	sb_puts(&b, "\\u0000\"");
	add_made(&b);
	sb_puts(&b, "\"");
	sb_repeat(&b, "山田é😀", 1500);
	sb_puts(&b, "\"");
	add_made(&b);
	sb_puts(&b, "\"");
	sb_repeat(&b, "\\u0000", 300);
	sb_puts(&b, "\"");
	add_made(&b);
	sb_puts(&b, "\"2024-06-01");
	sb_repeat(&b, "é", 60);
	sb_puts(&b, "\"");
	add_made(&b);
	/* numbers around 256 bytes (the fast reader once left longer ones to
	 * jansson, and raw got them as a double prints them) */
	for (size_t len = 252; len <= 258; len++) {
		sb_puts(&b, "0.");
		for (size_t i = 2; i < len; i++)
			sb_printf(&b, "%d", (int)(i % 9) + 1);
		add_made(&b);
		sb_puts(&b, "-1");
		sb_repeat(&b, "0", len - 6);
		sb_puts(&b, "e-30");
		add_made(&b);
	}
	sb_repeat(&b, "1", 19);
	add_made(&b);
	for (size_t len = 254; len <= 257; len++) { /* integers: the fast reader's, or jansson's */
		sb_repeat(&b, "7", len);
		add_made(&b);
	}
	/* past the 16383 fraction digits numeric takes (and jsonb with it) */
	sb_puts(&b, "0.");
	sb_repeat(&b, "0", 16384);
	sb_puts(&b, "1");
	add_made(&b);
	sb_puts(&b, "1.");
	sb_repeat(&b, "0", 16384);
	add_made(&b);
	sb_repeat(&b, "9", 60);
	sb_puts(&b, ".5");
	add_made(&b);
	/* past a double's range, as digits: 400 of them, before the point or
	 * after it; the most fraction digits jsonb takes, in a long text */
	sb_repeat(&b, "4", 400);
	add_made(&b);
	sb_puts(&b, "-0.");
	sb_repeat(&b, "6", 400);
	add_made(&b);
	sb_puts(&b, "0.");
	sb_repeat(&b, "0", 16382);
	sb_puts(&b, "1");
	add_made(&b);
	for (size_t i = 0; i < COUNT(depths); i++) {
		nest(&b, depths[i], i % 2 == 1, "1");
		add_made(&b);
	}
	nest(&b, 3000, false, "");
	add_made(&b);
	/* the fast reader takes objects up to 1024 members */
	for (size_t n = 1023; n <= 1025; n++) {
		sb_puts(&b, "{");
		for (size_t i = 0; i < n; i++)
			sb_printf(&b, "%s\"k%zu\":%zu", i ? "," : "", i, i);
		sb_puts(&b, "}");
		add_made(&b);
	}
	sb_puts(&b, "{");
	for (size_t i = 0; i < 1000; i++)
		sb_printf(&b, "\"k%zu\":%zu,", i, i);
	sb_puts(&b, "\"k999\":0}");
	add_made(&b);
}

/* ---------------------------------------------------------------- shapes */

typedef enum {
	V_ID,
	V_REF, /* an id that may be null (OrganizationId, OriginId ...) */
	V_TEXT,
	V_DATE,
	V_BOOL,
	V_NUM,
	V_INT,
	V_OWNER,
	V_ORIGINS,
	V_BASICS,
	V_RESULT_TYPE,
	V_ANY,
} vkind;

typedef struct field {
	const char *key;
	vkind kind;
} field;

typedef struct shape {
	const field *fields;
	size_t nfields;
} shape;

static const field user_fields[] = {
	{"Id", V_ID}, {"Name", V_TEXT}, {"Email", V_TEXT}, {"Description", V_TEXT}, {"ImageUrl", V_TEXT},
	{"OrganizationId", V_REF}, {"ResultType", V_RESULT_TYPE},
};
static const field list_fields[] = {{"Id", V_ID}, {"Type", V_TEXT}, {"Key", V_TEXT}, {"Name", V_TEXT}};
static const field detail_fields[] = {
	{"Id", V_ID}, {"Basics", V_BASICS}, {"CreateTime", V_DATE}, {"StartDateUtc", V_DATE}, {"OrganizationId", V_REF},
	{"AttendeeCount", V_ANY},
};
static const field attendee_fields[] = {{"Id", V_ID}, {"Name", V_TEXT}, {"ImageUrl", V_TEXT}};
static const field todo_fields[] = {
	{"Id", V_ID}, {"Name", V_TEXT}, {"DetailsUrl", V_TEXT}, {"DueDate", V_DATE}, {"CreateTime", V_DATE},
	{"CompleteTime", V_DATE}, {"CloseTime", V_DATE}, {"Complete", V_BOOL}, {"Origin", V_TEXT}, {"OriginId", V_REF},
	{"Owner", V_OWNER}, {"TodoType", V_TEXT},
};
static const field measurable_fields[] = {
	{"Id", V_ID}, {"Name", V_TEXT}, {"Target", V_NUM}, {"AltTarget", V_NUM}, {"Direction", V_TEXT},
	{"Modifiers", V_TEXT}, {"Owner", V_OWNER}, {"Admin", V_OWNER}, {"IsDivider", V_BOOL}, {"Disabled", V_BOOL},
};
static const field score_fields[] = {
	{"Id", V_ID}, {"MeasurableId", V_REF}, {"AccountableUserId", V_REF}, {"MeasurableName", V_TEXT},
	{"Target", V_NUM}, {"Measured", V_NUM}, {"Week", V_TEXT}, {"ForWeek", V_INT}, {"DateEntered", V_DATE},
};
static const field goal_fields[] = {
	{"Id", V_ID}, {"Name", V_TEXT}, {"DueDate", V_DATE}, {"Complete", V_BOOL}, {"Completion", V_TEXT},
	{"CreateTime", V_DATE}, {"Archived", V_BOOL}, {"Owner", V_OWNER}, {"Origins", V_ORIGINS},
};
static const field issue_fields[] = {
	{"Id", V_ID}, {"Name", V_TEXT}, {"DetailsUrl", V_TEXT}, {"Complete", V_BOOL}, {"CreateTime", V_DATE},
	{"CloseTime", V_DATE}, {"CompleteTime", V_DATE}, {"Archived", V_BOOL}, {"Owner", V_OWNER}, {"Origin", V_TEXT},
	{"OriginId", V_REF},
};
static const field headline_fields[] = {
	{"Id", V_ID}, {"Name", V_TEXT}, {"DetailsUrl", V_TEXT}, {"Owner", V_OWNER}, {"CreateTime", V_DATE},
	{"CloseTime", V_DATE}, {"Archived", V_BOOL}, {"Origin", V_TEXT}, {"OriginId", V_REF},
};

/* In the order of shape_kinds' table. */
#define SHAPE(f) {f, COUNT(f)}
static const shape shapes[] = {
	SHAPE(user_fields), SHAPE(list_fields), SHAPE(attendee_fields), SHAPE(todo_fields), SHAPE(measurable_fields),
	SHAPE(score_fields), SHAPE(goal_fields), SHAPE(issue_fields), SHAPE(headline_fields), SHAPE(detail_fields),
};
#define SHAPE_SCORE 5  /* elements of a scorecard's Scores */
#define SHAPE_DETAIL 9 /* a whole body, not an array element */

/* ------------------------------------------------------- random values */

/* Per body: how often whitespace goes between tokens, how often a string
 * piece or a value is one jansson refuses (per mille), and how much of the
 * odd values a field gets that make the record rejected (percent). */
static unsigned ws_rate, bad_rate, odd_rate;

static void ws(sb *b)
{
	static const char *const spaces[] = {" ", "\n", "\t", "\r\n", "  ", " \t\n\r "};

	if (ws_rate && chance(ws_rate))
		sb_puts(b, PICK(spaces));
}

static bool bad(void)
{
	return bad_rate && below(1000) < bad_rate;
}

/* chance(percent) scaled by odd_rate. */
static bool odd(unsigned percent)
{
	return below(10000) < percent * odd_rate;
}

static void put_utf8(sb *b, uint32_t cp)
{
	char s[4];
	size_t n;

	if (cp < 0x80) {
		s[0] = (char)cp;
		n = 1;
	} else if (cp < 0x800) {
		s[0] = (char)(0xC0 | cp >> 6);
		s[1] = (char)(0x80 | (cp & 0x3F));
		n = 2;
	} else if (cp < 0x10000) {
		s[0] = (char)(0xE0 | cp >> 12);
		s[1] = (char)(0x80 | (cp >> 6 & 0x3F));
		s[2] = (char)(0x80 | (cp & 0x3F));
		n = 3;
	} else {
		s[0] = (char)(0xF0 | cp >> 18);
		s[1] = (char)(0x80 | (cp >> 12 & 0x3F));
		s[2] = (char)(0x80 | (cp >> 6 & 0x3F));
		s[3] = (char)(0x80 | (cp & 0x3F));
		n = 4;
	}
	sb_put(b, s, n);
}

/* A code point that is not a surrogate, from all the UTF-8 lengths. */
static uint32_t random_cp(void)
{
	uint32_t cp;

	switch (below(4)) {
	case 0: return 0x20 + (uint32_t)below(0x5F);
	case 1: return 0x80 + (uint32_t)below(0x780);
	case 2:
		do
			cp = 0x800 + (uint32_t)below(0xF800);
		while (cp >= 0xD800 && cp <= 0xDFFF);
		return cp;
	default: return 0x10000 + (uint32_t)below(0x100000);
	}
}

/* \uXXXX with hex letters in either case. */
static void put_u_escape(sb *b, uint32_t unit)
{
	char s[8];
	bool upper = chance(50);

	snprintf(s, sizeof(s), upper ? "\\u%04X" : "\\u%04x", unit);
	sb_puts(b, s);
}

static void random_string_body(sb *b)
{
	static const uint32_t specials[] = {0, 0x22, 0x5C, 0x2F, 0x7F, 0x41, 0xE9};
	static const char *const shorts[] = {"\\\"", "\\\\", "\\/", "\\b", "\\f", "\\n", "\\r", "\\t", "\\\\N"};
	static const char *const invalid[] = {"\xff", "\xc0\x80", "\xed\xa0\x80", "\xf4\x90\x80\x80", "\xe6\x97",
	                                      "\x80", "\x01", "\t", "\\uD800", "\\udc00", "\\q", "\\u00G0"};
	size_t pieces = below(8);

	if (below(1000) == 0) {
		size_t n = 1000 + below(30000);
		const char *unit = chance(50) ? "x" : "é";
		sb_repeat(b, unit, n / strlen(unit));
	}
	for (size_t i = 0; i < pieces; i++) {
		uint32_t cp, hi;
		if (bad()) {
			sb_puts(b, PICK(invalid));
			continue;
		}
		switch (below(10)) {
		case 0:
		case 1:
		case 2: {
			size_t n = 1 + below(12);
			for (size_t k = 0; k < n; k++) {
				char ch = (char)(0x20 + below(0x5F));
				if (ch == '"' || ch == '\\')
					ch = '_';
				sb_put(b, &ch, 1);
			}
			break;
		}
		case 3: sb_puts(b, PICK(shorts)); break;
		case 4: put_u_escape(b, (uint32_t)below(0x21)); break; /* controls, NUL and space */
		case 5:
			cp = random_cp();
			if (cp < 0x10000) {
				put_u_escape(b, cp);
			} else {
				cp -= 0x10000;
				hi = 0xD800 + (cp >> 10);
				put_u_escape(b, hi);
				put_u_escape(b, 0xDC00 + (cp & 0x3FF));
			}
			break;
		case 6:
		case 7: put_utf8(b, random_cp()); break;
		case 8: put_u_escape(b, PICK(specials)); break;
		default: sb_puts(b, "\\u0000"); break;
		}
	}
}

static void random_string(sb *b)
{
	sb_puts(b, "\"");
	random_string_body(b);
	sb_puts(b, "\"");
}

/* The draws below are made one per statement: the order in which function
 * arguments are evaluated is unspecified, and the corpus must not depend on
 * the compiler. */

static double random_double(void)
{
	double mant = (double)(rnd() >> 11) / 9007199254740992.0;
	int exp = (int)below(240) - 120;
	double sign = chance(30) ? -1 : 1;

	return ldexp(mant, exp) * sign;
}

/* Any size, the sign bit included. */
static int64_t random_i64(void)
{
	uint64_t v = rnd();
	unsigned shift = (unsigned)below(64);

	return (int64_t)(v >> shift);
}

static void random_number(sb *b)
{
	static const char *const exps[] = {"e", "E", "e+", "e-", "E-"};
	int a = (int)below(100000), prec = 1 + (int)below(17);
	bool neg = chance(20);
	uint64_t frac = rnd() % 100000000000000000ULL; /* up to 17 digits */
	double d = random_double();
	const char *e = PICK(exps);
	int x = (int)below(400) - 200;

	switch (below(9)) {
	case 0: sb_puts(b, PICK(good_numbers)); break;
	case 1: sb_printf(b, "%" PRId64, random_i64()); break;
	case 2: sb_printf(b, "%d", a % 2000 - 1000); break;
	case 3: sb_printf(b, "%.*g", prec, d); break;
	case 4: sb_printf(b, "%.17g", d); break;
	case 5: sb_printf(b, "%s%d.%0*" PRIu64, neg ? "-" : "", a, prec, frac % (uint64_t)pow(10, prec)); break;
	case 6: sb_printf(b, "%d%s%d", a % 100, e, x < 0 ? -x : x); break;
	case 7: sb_printf(b, "%d.%de%d", a % 10, a % 1000, x / 10); break;
	default: sb_printf(b, "0.%0*d", 1 + prec % 8, 1 + a % 999); break;
	}
}

static void random_date(sb *b)
{
	static const char *const offsets[] = {"", "Z", "+02:00", "-05:30", "+0200", "+15:59", "+16:00", "-00:00"};
	int year = odd(5) ? (int)below(10000) : 2000 + (int)below(40);
	int month = odd(5) ? (int)below(14) : 1 + (int)below(12);
	int day = odd(5) ? (int)below(33) : 1 + (int)below(28);

	if (odd(30)) {
		sb_puts(b, PICK(dates));
		return;
	}
	sb_printf(b, "\"%04d-%02d-%02d", year, month, day);
	if (chance(80)) {
		int hour = (int)below(25), minute = (int)below(61);
		sb_printf(b, "T%02d:%02d", hour, minute);
		if (chance(90))
			sb_printf(b, ":%02d", (int)below(61));
		if (chance(40)) {
			size_t digits = below(11);
			sb_puts(b, ".");
			for (size_t i = 0; i < digits; i++)
				sb_printf(b, "%d", (int)below(10));
		}
		sb_puts(b, PICK(offsets));
	}
	sb_puts(b, "\"");
}

static void random_value(sb *b, int depth);

static void random_key(sb *b)
{
	static const char *const keys[] = {"\"Id\"", "\"Name\"", "\"Type\"", "\"Key\"", "\"\\u0049d\"", "\"a\\u0000\"",
	                                   "\"\"", "\"x\"", "\"Details\"", "\"Meta\""};

	if (chance(50))
		sb_puts(b, PICK(keys));
	else
		random_string(b);
}

static void random_container(sb *b, int depth, bool object)
{
	size_t n = below(5);

	sb_puts(b, object ? "{" : "[");
	ws(b);
	for (size_t i = 0; i < n; i++) {
		if (i) {
			sb_puts(b, ",");
			ws(b);
		}
		if (object) {
			random_key(b);
			ws(b);
			sb_puts(b, ":");
			ws(b);
		}
		random_value(b, depth + 1);
		ws(b);
	}
	sb_puts(b, object ? "}" : "]");
}

static void random_value(sb *b, int depth)
{
	if (bad()) {
		sb_puts(b, PICK(bad_values));
		return;
	}
	switch (below(depth > 3 ? 7 : 9)) {
	case 0:
	case 1: random_string(b); break;
	case 2: random_number(b); break;
	case 3: sb_puts(b, PICK(good_strings)); break;
	case 4: sb_puts(b, PICK(other_values)); break;
	case 5: sb_puts(b, PICK(((const char *const[]){"true", "false", "null"}))); break;
	case 6: sb_puts(b, PICK(dates)); break;
	case 7: random_container(b, depth, true); break;
	default: random_container(b, depth, false); break;
	}
}

/* ------------------------------------------------------- shaped values */

/* "normal" gives the plain value a real response would hold, the same for
 * every call; otherwise a random one, odd now and then. */
static void shaped_value(sb *b, vkind kind, bool normal, int64_t id);

static void owner_value(sb *b, bool normal)
{
	if (normal) {
		sb_puts(b, "{\"Id\":3,\"Name\":\"C\"}");
		return;
	}
	if (odd(10)) {
		sb_puts(b, PICK(((const char *const[]){"5", "\"x\"", "{}", "{\"Id\":null}", "[]", "{\"Id\":\"3\"}"})));
	} else if (chance(10)) {
		sb_puts(b, "null");
	} else {
		sb_puts(b, "{");
		ws(b);
		sb_puts(b, "\"Id\":");
		shaped_value(b, V_ID, false, 3);
		sb_puts(b, ",\"Name\":");
		random_string(b);
		sb_puts(b, "}");
	}
}

static void origins_value(sb *b, bool normal)
{
	size_t n = below(4);

	if (normal) {
		sb_puts(b, "[{\"Id\":456,\"Name\":\"Weekly\"},{\"Id\":457,\"Name\":\"Ops\"}]");
		return;
	}
	if (odd(15)) {
		sb_puts(b, PICK(((const char *const[]){"null", "[]", "{}", "\"x\"", "[1]", "[null]", "[{}]"})));
		return;
	}
	sb_puts(b, "[");
	for (size_t i = 0; i < n; i++) {
		if (i)
			sb_puts(b, ",");
		ws(b);
		if (odd(5)) {
			random_value(b, 2);
			continue;
		}
		sb_puts(b, "{\"Id\":");
		shaped_value(b, V_ID, false, 456);
		sb_puts(b, ",\"Name\":");
		random_string(b);
		sb_puts(b, "}");
	}
	sb_puts(b, "]");
}

static void shaped_value(sb *b, vkind kind, bool normal, int64_t id)
{
	static const char *const result_types[] = {"\"Team\"", "\"Position\"", "\"Organization\"", "\"\"", "null",
	                                           "\"user\"", "\"User\\u0000\"", "\"\\u0055ser\"", "1"};

	if (!normal && odd(4)) {
		random_value(b, 1); /* a value of another type */
		return;
	}
	switch (kind) {
	case V_ID:
	case V_REF:
		if (normal)
			sb_printf(b, "%" PRId64, id);
		else if (kind == V_REF && chance(15))
			sb_puts(b, "null");
		else if (odd(8))
			sb_puts(b, PICK(good_numbers));
		else if (odd(5))
			sb_printf(b, "\"%" PRId64 "\"", id);
		else if (chance(5))
			sb_printf(b, "%" PRId64 ".0", id);
		else if (odd(5))
			sb_puts(b, PICK(((const char *const[]){"true", "null", "-5", "0", "-0", "1e3"})));
		else
			sb_printf(b, "%" PRId64, chance(50) ? id : random_i64());
		break;
	case V_TEXT:
		if (normal)
			sb_puts(b, "\"text\"");
		else if (odd(10))
			sb_puts(b, PICK(((const char *const[]){"null", "\"\"", "\"User\"", "\"/i/userplaceholder\""})));
		else if (chance(15))
			sb_puts(b, PICK(good_strings));
		else
			random_string(b);
		break;
	case V_DATE:
		if (normal)
			sb_puts(b, "\"2024-06-01T10:00:00Z\"");
		else if (odd(10))
			sb_puts(b, PICK(((const char *const[]){"null", "\"\"", "0", "true"})));
		else
			random_date(b);
		break;
	case V_BOOL:
		if (normal)
			sb_puts(b, "false");
		else if (odd(10))
			sb_puts(b, PICK(((const char *const[]){"0", "1", "\"true\"", "null", "1.0", "\"\""})));
		else
			sb_puts(b, chance(50) ? "true" : "false");
		break;
	case V_NUM:
		if (normal)
			sb_puts(b, "12.5");
		else if (odd(10))
			sb_puts(b, PICK(((const char *const[]){"null", "\"12\"", "true", "{}"})));
		else
			random_number(b);
		break;
	case V_INT:
		if (normal)
			sb_puts(b, "2425");
		else if (chance(50))
			sb_printf(b, "%d", (int)below(5000));
		else
			random_number(b);
		break;
	case V_OWNER: owner_value(b, normal); break;
	case V_ORIGINS: origins_value(b, normal); break;
	case V_BASICS:
		if (normal) {
			sb_puts(b, "{\"Name\":\"Team\",\"Settings\":{\"a\":[1,2]}}");
		} else if (odd(10)) {
			sb_puts(b, PICK(((const char *const[]){"null", "{}", "\"x\"", "[]", "5"})));
		} else {
			sb_puts(b, "{\"Name\":");
			shaped_value(b, V_TEXT, false, 0);
			if (chance(50)) {
				sb_puts(b, ",\"Settings\":");
				random_value(b, 2);
			}
			sb_puts(b, "}");
		}
		break;
	case V_RESULT_TYPE:
		if (normal || chance(70))
			sb_puts(b, "\"User\"");
		else
			sb_puts(b, PICK(result_types));
		break;
	default:
		if (normal)
			sb_puts(b, "3");
		else
			random_value(b, 1);
		break;
	}
}

/* An element of shape s. Field subst (when < nfields) holds value instead;
 * with random, values are random and fields dropped, duplicated, retyped,
 * reordered, spelled with escapes, and unknown keys mixed in. */
static void shaped_object(sb *b, const shape *s, size_t subst, const char *value, bool random, int64_t id)
{
	size_t order[16], n = s->nfields;
	bool first = true;

	for (size_t i = 0; i < n; i++)
		order[i] = i;
	if (random && chance(10))
		for (size_t i = n; i > 1; i--) {
			size_t j = below(i), t = order[i - 1];
			order[i - 1] = order[j];
			order[j] = t;
		}
	sb_puts(b, "{");
	ws(b);
	for (size_t k = 0; k < n; k++) {
		const field *f = &s->fields[order[k]];
		size_t times = random && chance(2) ? 2 : 1; /* a duplicate key */

		if (random && odd(8)) /* a field left out */
			continue;
		for (size_t t = 0; t < times; t++) {
			if (!first) {
				sb_puts(b, ",");
				ws(b);
			}
			first = false;
			if (random && chance(2)) /* the same key, escaped: "\u0049d" is "Id" */
				sb_printf(b, "\"\\u%04X%s\"", (unsigned)f->key[0], f->key + 1);
			else
				sb_printf(b, "\"%s\"", f->key);
			ws(b);
			sb_puts(b, ":");
			ws(b);
			if (order[k] == subst)
				sb_puts(b, value);
			else
				shaped_value(b, f->kind, !random, id);
			ws(b);
		}
	}
	if (random && chance(20)) {
		size_t extra = 1 + below(3);
		for (size_t i = 0; i < extra; i++) {
			if (!first)
				sb_puts(b, ",");
			first = false;
			random_key(b);
			sb_puts(b, ":");
			random_value(b, 1);
		}
	}
	sb_puts(b, "}");
}

/* ---------------------------------------------------------- comparison */

typedef struct outcome {
	int rc;
	size_t elements;
	char err[256];
	bloom_result r;
} outcome;

static const char array_seed[] = "[{\"Id\":1,\"Name\":\"seed\",\"Complete\":false,\"ResultType\":\"User\"}]";
static const char object_seed[] = "{\"Id\":1,\"Scores\":[{\"Id\":1}]}";

static struct {
	size_t bodies, parses, ok, rows, rejects, mismatches;
	size_t kind_rows[BLOOM_UNIT_KIND_END]; /* rows each kind mapped, to see none went untested */
} stats;

/* Sets of unit kinds, one bit per kind. */
#define ALL_KINDS (((1u << BLOOM_UNIT_KIND_END) - 1) & ~1u)
#define KIND(k) (1u << (k))

/* Parses body (as a page when page) with one reader. */
static void run(bool reference, const bloom_unit *u, const char *body, size_t len, bool page, outcome *o)
{
	bloom_use_reference_reader(reference);
	memset(o->err, '#', sizeof(o->err) - 1);
	o->err[sizeof(o->err) - 1] = '\0';
	o->elements = (size_t)-1;
	if (page) {
		const char *seed = u->kind == BLOOM_UNIT_MEETING || u->kind == BLOOM_UNIT_MEETING_SCORES ||
		                           u->kind == BLOOM_UNIT_USER_SCORES
		                       ? object_seed
		                       : array_seed;
		char err[256];
		assert_int_equal(bloom_parse(u, seed, strlen(seed), &o->r, err, sizeof(err)), 0);
		o->rc = bloom_parse_page(u, body, len, &o->r, &o->elements, o->err, sizeof(o->err));
	} else {
		o->rc = bloom_parse(u, body, len, &o->r, o->err, sizeof(o->err));
	}
	bloom_use_reference_reader(false);
}

/* Prints at most max bytes of s as a C string literal. */
static void show(const char *label, const char *s, size_t n, size_t max)
{
	fprintf(stderr, "  %s (%zu bytes): \"", label, n);
	for (size_t i = 0; i < n && i < max; i++) {
		unsigned char ch = (unsigned char)s[i];
		if (ch == '\\' || ch == '"')
			fprintf(stderr, "\\%c", ch);
		else if (ch >= 0x20 && ch < 0x7F)
			fputc(ch, stderr);
		else
			fprintf(stderr, "\\x%02x\"\"", ch); /* "" so that no hex digit follows */
	}
	fprintf(stderr, "\"%s\n", n > max ? "..." : "");
}

static bool str_same(const char *a, const char *b)
{
	return (!a && !b) || (a && b && strcmp(a, b) == 0);
}

/* Names the first difference between the outcomes, NULL when none; for a
 * byte difference *where gets the target (or reject) and *at the offset. */
static const char *first_difference(const outcome *f, const outcome *j, int *where, size_t *at)
{
	const bloom_result *a = &f->r, *b = &j->r;

	*where = -1;
	*at = 0;
	if (f->rc != j->rc)
		return "return code";
	if (strcmp(f->err, j->err) != 0)
		return "error text";
	if (f->elements != j->elements)
		return "element count";
	if (a->unit.kind != b->unit.kind || a->unit.ref != b->unit.ref)
		return "unit";
	for (int t = 0; t < MIRROR_T_COUNT; t++) {
		*where = t;
		if (a->nrows[t] != b->nrows[t])
			return "row count";
		if (a->copy[t].len != b->copy[t].len || (a->copy[t].len && memcmp(a->copy[t].data, b->copy[t].data,
		                                                                   a->copy[t].len) != 0)) {
			size_t n = a->copy[t].len < b->copy[t].len ? a->copy[t].len : b->copy[t].len;
			while (*at < n && a->copy[t].data[*at] == b->copy[t].data[*at])
				(*at)++;
			return "copy text";
		}
	}
	*where = -1;
	if (a->nchildren != b->nchildren)
		return "child count";
	for (size_t i = 0; i < a->nchildren; i++)
		if (a->children[i].kind != b->children[i].kind || a->children[i].ref != b->children[i].ref)
			return "children";
	if (a->nrejects != b->nrejects)
		return "reject count";
	for (size_t i = 0; i < a->nrejects; i++) {
		*where = (int)i;
		if (!str_same(a->rejects[i].stream, b->rejects[i].stream))
			return "reject stream";
		if (!str_same(a->rejects[i].id, b->rejects[i].id))
			return "reject id";
		if (!str_same(a->rejects[i].reason, b->rejects[i].reason))
			return "reject reason";
		if (!str_same(a->rejects[i].raw, b->rejects[i].raw))
			return "reject raw";
	}
	*where = -1;
	if (a->skipped != b->skipped)
		return "skipped count";
	if (a->nul_removed != b->nul_removed)
		return "NUL count";
	return NULL;
}

static void report(const char *what, int where, size_t at, const bloom_unit *u, bool page, const char *body,
                   size_t len, const outcome *f, const outcome *j)
{
	fprintf(stderr, "readers differ: %s (%d) for %s%s\n", what, where, bloom_unit_kind_name(u->kind),
	        page ? " (page)" : "");
	show("body", body, len, 1500);
	fprintf(stderr, "  (fast / jansson) rc %d / %d, err \"%s\" / \"%s\"\n", f->rc, j->rc, f->err, j->err);
	if (page)
		fprintf(stderr, "  elements %zu / %zu\n", f->elements, j->elements);
	fprintf(stderr, "  nrejects %zu / %zu, skipped %zu / %zu, nul_removed %zu / %zu\n", f->r.nrejects,
	        j->r.nrejects, f->r.skipped, j->r.skipped, f->r.nul_removed, j->r.nul_removed);
	if (strcmp(what, "copy text") == 0) {
		const bloom_buf *a = &f->r.copy[where], *b = &j->r.copy[where];
		size_t from = at > 60 ? at - 60 : 0;
		show("fast    copy near the difference", a->data ? a->data + from : "", a->len - from, 200);
		show("jansson copy near the difference", b->data ? b->data + from : "", b->len - from, 200);
	} else if (strncmp(what, "reject", 6) == 0 && where >= 0 && (size_t)where < f->r.nrejects) {
		const bloom_reject *a = &f->r.rejects[where], *b = &j->r.rejects[where];
		fprintf(stderr, "  fast:    id %s reason \"%s\"\n", a->id ? a->id : "(null)", a->reason);
		fprintf(stderr, "  jansson: id %s reason \"%s\"\n", b->id ? b->id : "(null)", b->reason);
		if (a->raw)
			show("fast raw", a->raw, strlen(a->raw), 300);
		if (b->raw)
			show("jansson raw", b->raw, strlen(b->raw), 300);
	}
}

/* Parses body for the unit kinds in kinds with both readers, as a whole
 * body and as a page; counts and reports differences. */
static void check_body(const char *text, size_t len, unsigned kinds)
{
	/* an exact copy: a read past len is a read past the allocation */
	char *body = text ? malloc(len ? len : 1) : NULL;

	if (text) {
		assert_non_null(body);
		memcpy(body, text, len);
	}
	stats.bodies++;
	for (int kind = BLOOM_UNIT_USERS; kind < BLOOM_UNIT_KIND_END; kind++) {
		bloom_unit u = {(bloom_unit_kind)kind, kind == BLOOM_UNIT_USERS ? 0 : 7};
		if (!(kinds & KIND(kind)))
			continue;
		/* pages are asked only of the kinds that answer them */
		for (int page = 0; page < (bloom_unit_pages(u.kind) ? 2 : 1); page++) {
			outcome f, j;
			const char *what;
			int where;
			size_t at;

			run(false, &u, body, len, page, &f);
			run(true, &u, body, len, page, &j);
			stats.parses += 2;
			if (f.rc == 0 && !page) {
				stats.ok++;
				for (int t = 0; t < MIRROR_T_COUNT; t++) {
					stats.rows += f.r.nrows[t];
					stats.kind_rows[kind] += f.r.nrows[t];
				}
				stats.rejects += f.r.nrejects;
			}
			what = first_difference(&f, &j, &where, &at);
			if (what && stats.mismatches++ < 8)
				report(what, where, at, &u, page, body, len, &f, &j);
			bloom_result_free(&f.r);
			bloom_result_free(&j.r);
		}
	}
	free(body);
}

static void check_sb(const sb *b, unsigned kinds)
{
	check_body(b->data ? b->data : "", b->len, kinds);
}

/* The kinds whose mapper reads shape s, plus one other (which rejects or
 * skips most of it: printing raw for rejects gets its share). */
static unsigned shape_kinds(size_t s, size_t salt)
{
	static const unsigned own[] = {
		KIND(BLOOM_UNIT_USERS),
		KIND(BLOOM_UNIT_USER_MEETINGS),
		KIND(BLOOM_UNIT_ATTENDEES),
		KIND(BLOOM_UNIT_MEETING_TODOS) | KIND(BLOOM_UNIT_USER_TODOS),
		KIND(BLOOM_UNIT_MEASURABLES),
		KIND(BLOOM_UNIT_MEETING_SCORES) | KIND(BLOOM_UNIT_USER_SCORES),
		KIND(BLOOM_UNIT_GOALS) | KIND(BLOOM_UNIT_ARCHIVED_GOALS),
		KIND(BLOOM_UNIT_MEETING_ISSUES) | KIND(BLOOM_UNIT_USER_ISSUES),
		KIND(BLOOM_UNIT_MEETING_HEADLINES) | KIND(BLOOM_UNIT_USER_HEADLINES),
		KIND(BLOOM_UNIT_MEETING),
	};
	unsigned kinds = s < COUNT(own) ? own[s] : 0;
	return kinds | KIND(BLOOM_UNIT_USERS + (int)(salt % (BLOOM_UNIT_KIND_END - BLOOM_UNIT_USERS)));
}

/* ----------------------------------------------------------------- tests */

/* Bodies written out, NUL bytes included. */
#define LIT(s) {s, sizeof(s) - 1}
static const struct {
	const char *text;
	size_t len;
} raw_bodies[] = {
	LIT(""),
	LIT("[]\0"),
	LIT("[\0]"),
	LIT("[{\"Id\":1}]\0"),
	LIT("[{\"Id\":1,\"Name\":\"a\0b\"}]"),
	LIT("\xef\xbb\xbf[]"),
	LIT(" \t\r\n[ \t\r\n] \t\r\n"),
	LIT("\f[]"),
	LIT(" {\"Scores\" : [ ] } "),
	LIT("{\"Scores\":null}"),
	LIT("{\"Scores\":{}}"),
	LIT("{\"Scores\":[1,null,\"x\",[]]}"),
	LIT("{\"Scores\":[{\"Id\":1}],\"Scores\":[{\"Id\":2}]}"),
	LIT("{\"\\u0053cores\":[{\"Id\":1}]}"),
	LIT("{\"Sco\\u0000res\":[{\"Id\":1}]}"),
	LIT("{\"Scores\\u0000\":[{\"Id\":1}],\"Scores\":[{\"Id\":2}]}"),
	LIT("[{\"Id\":1}] [{\"Id\":2}]"),
	LIT("[{\"Id\":1},]"),
	LIT("[{\"Id\":1}}"),
	LIT("[{\"Id\":1},{\"Id\":2}"),
	LIT("[{\"Id\":1} {\"Id\":2}]"),
	LIT("[{\"Id\":1},,{\"Id\":2}]"),
	LIT("[{\"Id\":1},{\"Id\":2},x]"),
	LIT("[\"\\"),
	LIT("[\"\\u00"),
	LIT("[{\"Id\":1,\"k\\u0000\":\"v\\u0000\"},{\"Id\":2,\"a\":\"\\u0000\",\"a\":\"b\"}]"),
	LIT("[{\"Id\":1,\"k\\u0000\":1,\"k\":2}]"),
	LIT("[{\"Id\":-3,\"Name\":\"\\u0000\"},{\"ResultType\":\"Team\",\"x\":\"\\u0000\"},{\"Id\":4}]"),
	LIT("[{\"Id\":1,\"Name\":\"a\\u0000\",\"ResultType\":\"User\",\"x\\u0000\":1}]"),
	LIT("[{\"Id\":1,\"s\":\"\\u0000\"},\"\\u0000\",{\"Id\":2,\"\\u0000\":\"\\u0000\"}]"),
	LIT("[{\"Id\":1}\n,\n{\"Id\":2}\n]\n"),
	LIT("[1,2,3]"),
	LIT("[null]"),
	LIT("[[]]"),
	LIT("[\"\\u0000\"]"),
};

/* Every odd value as a whole body, as an array element, as a key, and in
 * every field of every shape (one element per field); then raw_bodies. */
static void test_odd_values(void **state)
{
	const char *const *lists[] = {good_strings, bad_values, good_numbers, dates, other_values};
	const size_t sizes[] = {COUNT(good_strings), COUNT(bad_values), COUNT(good_numbers), COUNT(dates),
	                        COUNT(other_values)};
	size_t salt = 0;
	sb b = {0};

	(void)state;
	memset(&stats, 0, sizeof(stats));
	ws_rate = 0;
	bad_rate = 0;
	make_values();
	for (size_t l = 0; l <= COUNT(lists); l++) {
		bool made = l == COUNT(lists);
		size_t n = made ? nmade : sizes[l];
		for (size_t v = 0; v < n; v++) {
			const char *value = made ? made_values[v] : lists[l][v];
			/* big values are slow to parse: an array kind, an object kind and one more */
			unsigned kinds = made ? shape_kinds(SIZE_MAX, salt++) | KIND(BLOOM_UNIT_ATTENDEES) |
			                            KIND(BLOOM_UNIT_MEETING)
			                      : ALL_KINDS;
			b.len = 0;
			sb_puts(&b, value);
			check_sb(&b, kinds);
			b.len = 0;
			sb_puts(&b, "[");
			sb_puts(&b, value);
			sb_puts(&b, "]");
			check_sb(&b, kinds);
			if (value[0] == '"') {
				b.len = 0;
				sb_puts(&b, "[{\"Id\":1,");
				sb_puts(&b, value);
				sb_puts(&b, ":1,\"Name\":\"n\"}]");
				check_sb(&b, kinds);
			}
			for (size_t s = 0; s < COUNT(shapes); s++) {
				const shape *sh = &shapes[s];
				/* big values in one field of one shape, the others everywhere */
				size_t from = made ? v % sh->nfields : 0, to = made ? from + 1 : sh->nfields;
				if (made && s != v % COUNT(shapes))
					continue;
				if (s == SHAPE_DETAIL) { /* an object body: one per field */
					for (size_t f = from; f < to; f++) {
						b.len = 0;
						shaped_object(&b, sh, f, value, false, 789);
						check_sb(&b, shape_kinds(s, salt++));
					}
					continue;
				}
				b.len = 0;
				sb_puts(&b, s == SHAPE_SCORE ? "{\"Scores\":[" : "[");
				for (size_t f = from; f < to; f++) {
					if (f > from)
						sb_puts(&b, ",");
					shaped_object(&b, sh, f, value, false, (int64_t)f + 1);
				}
				sb_puts(&b, s == SHAPE_SCORE ? "],\"Weeks\":[]}" : "]");
				check_sb(&b, shape_kinds(s, salt++));
			}
		}
	}
	check_body(NULL, 0, ALL_KINDS);
	for (size_t i = 0; i < COUNT(raw_bodies); i++)
		check_body(raw_bodies[i].text, raw_bodies[i].len, ALL_KINDS);
	for (size_t i = 0; i < nmade; i++)
		free(made_values[i]);
	free(made_values);
	made_values = NULL;
	nmade = 0;
	free(b.data);
	print_message("odd values: %zu bodies, %zu parses, %zu ok, %zu rows, %zu rejects\n", stats.bodies,
	              stats.parses, stats.ok, stats.rows, stats.rejects);
	assert_int_equal(stats.mismatches, 0);
}

/* Damage: cut short, bytes inserted, removed or replaced, garbage around. */
static void damage(sb *b)
{
	static const char garbage[] = {',', ']', '}', '[', '{', '"', '\\', ':', ' ', 'x', '0', '-', '\0', '\xff', '\n'};
	size_t at = b->len ? below(b->len + 1) : 0;
	char ch = PICK(garbage);

	switch (below(7)) {
	case 0: b->len = at; break;
	case 1:
		sb_put(b, "", 1); /* room for one more */
		memmove(b->data + at + 1, b->data + at, b->len - 1 - at);
		b->data[at] = ch;
		break;
	case 2:
		if (at < b->len) {
			memmove(b->data + at, b->data + at + 1, b->len - at - 1);
			b->len--;
		}
		break;
	case 3:
		if (at < b->len)
			b->data[at] = ch;
		break;
	case 4: sb_put(b, &ch, 1); break;
	case 5: {
		sb copy = {0};
		sb_puts(&copy, "\xef\xbb\xbf");
		sb_put(&copy, b->data, b->len);
		free(b->data);
		*b = copy;
		break;
	}
	default: sb_puts(b, PICK(((const char *const[]){" ", "\n", " x", "]", "}", "null", ",{}"}))); break;
	}
	if (b->data)
		b->data[b->len] = '\0';
}

/* A random body; returns the unit kinds to parse it as. */
static unsigned random_body(sb *b)
{
	size_t s = below(COUNT(shapes) + 1), n = chance(5) ? 20 + below(40) : below(7);
	unsigned kinds;

	ws_rate = chance(70) ? 0 : 1 + (unsigned)below(60);
	bad_rate = chance(75) ? 0 : 1 + (unsigned)below(20);
	odd_rate = PICK(((const unsigned[]){0, 0, 20, 100}));
	b->len = 0;
	if (s == SHAPE_DETAIL) {
		shaped_object(b, &shapes[s], SIZE_MAX, NULL, true, 789);
	} else if (s == COUNT(shapes)) {
		random_value(b, 0); /* not an endpoint's shape */
	} else {
		bool scores = s == SHAPE_SCORE && chance(80), list = true;
		if (scores) {
			sb_puts(b, "{");
			ws(b);
			if (chance(10)) { /* no list of scores */
				sb_puts(b, PICK(((const char *const[]){"\"Scores\":null", "\"Scores\":{}", "\"X\":[]",
				                                       "\"Scores\":\"none\""})));
				list = false;
				n = 0;
			} else {
				sb_puts(b, "\"Scores\":[");
			}
		} else {
			sb_puts(b, "[");
		}
		ws(b);
		for (size_t i = 0; i < n; i++) {
			if (i) {
				sb_puts(b, ",");
				ws(b);
			}
			size_t other = chance(5) ? below(COUNT(shapes)) : s;
			int64_t id = (int64_t)(i + 1) * (chance(10) ? -1 : 1); /* negative: a milestone */
			if (chance(5))
				random_value(b, 1); /* not an object */
			else
				shaped_object(b, &shapes[other], SIZE_MAX, NULL, true, id);
			ws(b);
		}
		if (list)
			sb_puts(b, "]");
		if (scores) {
			if (chance(50))
				sb_puts(b, ",\"Measurables\":[{\"Id\":2}],\"Weeks\":[]");
			sb_puts(b, "}");
		}
		ws(b);
	}
	if (chance(20)) {
		size_t times = 1 + below(2);
		for (size_t i = 0; i < times; i++)
			damage(b);
	}
	kinds = shape_kinds(s, below(100));
	return kinds | KIND(BLOOM_UNIT_USERS + (int)below(BLOOM_UNIT_KIND_END - 1));
}

static void test_random_bodies(void **state)
{
	const char *seed_env = getenv("BLOOM_DIFF_SEED"), *count_env = getenv("BLOOM_DIFF_BODIES");
	uint64_t seed = seed_env ? strtoull(seed_env, NULL, 0) : 20240601;
	size_t count = count_env ? (size_t)strtoull(count_env, NULL, 0) : 3000;
	clock_t start = clock();
	sb b = {0};

	(void)state;
	memset(&stats, 0, sizeof(stats));
	rng_state = seed;
	for (size_t i = 0; i < count; i++) {
		unsigned kinds = random_body(&b);
		check_sb(&b, kinds);
	}
	free(b.data);
	print_message("random bodies (seed %" PRIu64 "): %zu bodies, %zu parses, %zu ok, %zu rows, %zu rejects, "
	              "%.1f s\n",
	              seed, stats.bodies, stats.parses, stats.ok, stats.rows, stats.rejects,
	              (double)(clock() - start) / CLOCKS_PER_SEC);
	assert_int_equal(stats.mismatches, 0);
	for (int kind = BLOOM_UNIT_USERS; kind < BLOOM_UNIT_KIND_END && count >= 1000; kind++)
		if (stats.kind_rows[kind] == 0)
			fail_msg("no %s rows: the corpus misses a kind", bloom_unit_kind_name((bloom_unit_kind)kind));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_odd_values),
		cmocka_unit_test(test_random_bodies),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
