/* test_bloom.c — unit tests for bloom.c: unit paths, and Bloom Growth JSON
 * mapped to mirror rows in COPY text format, through bloom.h only.
 * Covers: every unit kind's mapping, types (bigint, int, bool, numeric,
 * timestamptz, text), NUL removal, COPY escaping, rejects, skips, children,
 * shape errors. Not covered: allocation failure paths (would need
 * link-time wrapping of malloc/realloc). */
#include <setjmp.h>
#include <stdbool.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "bloom.h"

/* ------------------------------------------------------------- helpers */

static void parse_ok(bloom_unit_kind kind, int64_t ref, const char *json, bloom_result *r)
{
	bloom_unit u = {kind, ref};
	char err[256];

	if (bloom_parse(&u, json, strlen(json), r, err, sizeof(err)) != 0)
		fail_msg("parse failed: %s", err);
	assert_int_equal(r->unit.kind, kind);
	assert_int_equal(r->unit.ref, ref);
}

/* parse_ok by jansson alone (reference) or by the fast reader first. */
static void parse_ok_by(bool reference, bloom_unit_kind kind, int64_t ref, const char *json, bloom_result *r)
{
	bloom_use_reference_reader(reference);
	parse_ok(kind, ref, json, r);
	bloom_use_reference_reader(false);
}

static void parse_fails(bloom_unit_kind kind, const char *json)
{
	bloom_unit u = {kind, 1};
	bloom_result r;
	char err[256] = "";

	assert_int_equal(bloom_parse(&u, json, strlen(json), &r, err, sizeof(err)), -1);
	assert_true(err[0] != '\0');
	assert_int_equal(r.nchildren, 0);
	assert_int_equal(r.nrejects, 0);
	bloom_result_free(&r);
}

static const char *copy_text(const bloom_result *r, mirror_target_id t)
{
	return r->copy[t].len ? r->copy[t].data : "";
}

static void expect_copy(const bloom_result *r, mirror_target_id t, const char *expected)
{
	assert_string_equal(copy_text(r, t), expected);
}

static void expect_children(const bloom_result *r, const bloom_unit *expected, size_t n)
{
	assert_int_equal(r->nchildren, n);
	for (size_t i = 0; i < n; i++) {
		assert_int_equal(r->children[i].kind, expected[i].kind);
		assert_int_equal(r->children[i].ref, expected[i].ref);
	}
}

/* Copies field idx (0-based, tab-separated) of the first line of text. */
static void field_of(const char *text, size_t idx, char *buf, size_t buflen)
{
	const char *p = text, *end;

	for (size_t i = 0; i < idx; i++) {
		p = strchr(p, '\t');
		assert_non_null(p);
		p++;
	}
	end = p + strcspn(p, "\t\n");
	assert_true((size_t)(end - p) < buflen);
	memcpy(buf, p, (size_t)(end - p));
	buf[end - p] = '\0';
}

/* ---------------------------------------------------------------- units */

static void test_unit_paths(void **state)
{
	static const struct {
		bloom_unit u;
		const char *path, *label, *name, *stream;
	} cases[] = {
		{{BLOOM_UNIT_USERS, 0}, "search/all?term=%25", "users", "users", "users"},
		{{BLOOM_UNIT_USER_MEETINGS, 7}, "L10/7/list", "user_meetings:7", "user_meetings", "meetings"},
		{{BLOOM_UNIT_MEETING, 42}, "L10/42", "meeting:42", "meeting", "meetings"},
		{{BLOOM_UNIT_ATTENDEES, 42}, "L10/42/attendees", "attendees:42", "attendees", "meeting_attendees"},
		{{BLOOM_UNIT_MEETING_TODOS, 42}, "L10/42/todos?INCLUDE_CLOSED=true", "meeting_todos:42", "meeting_todos",
		 "todos"},
		{{BLOOM_UNIT_MEASURABLES, 42}, "L10/42/measurables", "measurables:42", "measurables", "measurables"},
		{{BLOOM_UNIT_MEETING_SCORES, 42}, "scorecard/meeting/42", "meeting_scores:42", "meeting_scores", "scores"},
		{{BLOOM_UNIT_USER_TODOS, 9007199254740993}, "todo/user/9007199254740993", "user_todos:9007199254740993",
		 "user_todos", "todos"},
		{{BLOOM_UNIT_USER_SCORES, 7}, "scorecard/user/7", "user_scores:7", "user_scores", "scores"},
		{{BLOOM_UNIT_GOALS, 7}, "rocks/user/7?include_origin=true", "goals:7", "goals", "goals"},
		{{BLOOM_UNIT_ARCHIVED_GOALS, 7}, "archivedrocks/user/7", "archived_goals:7", "archived_goals", "goals"},
		{{BLOOM_UNIT_MEETING_ISSUES, 42}, "L10/42/issues?INCLUDE_RESOLVED=true", "meeting_issues:42",
		 "meeting_issues", "issues"},
		{{BLOOM_UNIT_USER_ISSUES, 7}, "issues/users/7", "user_issues:7", "user_issues", "issues"},
		{{BLOOM_UNIT_MEETING_HEADLINES, 42}, "L10/42/headlines?Include_Origin=true", "meeting_headlines:42",
		 "meeting_headlines", "headlines"},
		{{BLOOM_UNIT_USER_HEADLINES, 7}, "headline/users/7", "user_headlines:7", "user_headlines", "headlines"},
	};
	char buf[128];
	bloom_unit bad = {BLOOM_UNIT_KIND_END, 1};
	bloom_unit meeting = {BLOOM_UNIT_MEETING, 123456};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		assert_int_equal(bloom_unit_path(&cases[i].u, buf, sizeof(buf)), 0);
		assert_string_equal(buf, cases[i].path);
		bloom_unit_label(&cases[i].u, buf, sizeof(buf));
		assert_string_equal(buf, cases[i].label);
		assert_string_equal(bloom_unit_kind_name(cases[i].u.kind), cases[i].name);
		assert_string_equal(bloom_unit_stream(cases[i].u.kind), cases[i].stream);
		assert_int_equal(bloom_unit_404_is_vanished(cases[i].u.kind), cases[i].u.kind != BLOOM_UNIT_USERS);
	}
	assert_int_equal(bloom_unit_path(&meeting, buf, 10), -1); /* "L10/123456" needs 11 */
	assert_int_equal(bloom_unit_path(&meeting, buf, 11), 0);
	assert_int_equal(bloom_unit_path(&bad, buf, sizeof(buf)), -1);
	assert_null(bloom_unit_kind_name(BLOOM_UNIT_KIND_END));
	assert_null(bloom_unit_kind_name((bloom_unit_kind)0));
	assert_null(bloom_unit_stream(BLOOM_UNIT_KIND_END));
	assert_false(bloom_unit_404_is_vanished(BLOOM_UNIT_KIND_END));
}

/* ---------------------------------------------------------------- users */

#define USER_ANN                                                                                                  \
	"{\"Id\":1,\"Name\":\"Ann\",\"Email\":\"ann@x.com\",\"Description\":\"CEO\",\"ImageUrl\":\"/i/a.png\"," \
	"\"OrganizationId\":42,\"ResultType\":\"User\"}"
#define TEAM_A "{\"Id\":2,\"Name\":\"Team A\",\"ResultType\":\"Team\"}"
#define USER_BOB                                                                                                  \
	"{\"Id\":3,\"Name\":\"Bob\",\"Email\":\"\",\"Description\":\"\",\"ImageUrl\":\"/i/b.png\"," \
	"\"OrganizationId\":42,\"ResultType\":\"User\"}"
#define USER_CY                                                                                                   \
	"{\"Id\":4,\"Name\":\"\",\"Email\":\"cy@x.com\",\"Description\":null,\"ImageUrl\":\"/i/userplaceholder\"," \
	"\"ResultType\":\"User\"}"
#define USER_DEE "{\"Id\":5,\"Name\":\"Dee\",\"Email\":null,\"ResultType\":\"User\"}"
#define ORG_X "{\"Id\":6,\"Name\":\"Org\",\"ResultType\":\"Organization\"}"
#define NO_TYPE "{\"Id\":7,\"Name\":\"Nobody\"}"

static void test_users(void **state)
{
	bloom_result r;
#define USER_KIDS(id)                                                                              \
	{BLOOM_UNIT_USER_MEETINGS, id}, {BLOOM_UNIT_USER_TODOS, id}, {BLOOM_UNIT_USER_SCORES, id},     \
	    {BLOOM_UNIT_GOALS, id}, {BLOOM_UNIT_ARCHIVED_GOALS, id}, {BLOOM_UNIT_USER_ISSUES, id}, \
	{                                                                                          \
		BLOOM_UNIT_USER_HEADLINES, id                                                      \
	}
	const bloom_unit kids[] = {USER_KIDS(1), USER_KIDS(3), USER_KIDS(4), USER_KIDS(5)};
#undef USER_KIDS

	(void)state;
	parse_ok(BLOOM_UNIT_USERS, 0,
	         "[" USER_ANN "," TEAM_A "," USER_BOB "," USER_CY "," USER_DEE "," ORG_X "," NO_TYPE "]", &r);
	expect_copy(&r, MIRROR_T_USERS,
	            "1\tAnn\tann@x.com\tCEO\t/i/a.png\t42\tf\t" USER_ANN "\n"
	            "3\tBob\t\\N\t\\N\t/i/b.png\t42\tt\t" USER_BOB "\n"
	            "4\t\tcy@x.com\t\\N\t/i/userplaceholder\t\\N\tt\t" USER_CY "\n"
	            "5\tDee\t\\N\t\\N\t\\N\t\\N\tt\t" USER_DEE "\n");
	assert_int_equal(r.nrows[MIRROR_T_USERS], 4);
	assert_int_equal(r.skipped, 3);
	assert_int_equal(r.nrejects, 0);
	assert_int_equal(r.nul_removed, 0);
	expect_children(&r, kids, sizeof(kids) / sizeof(kids[0]));
	for (int t = 0; t < MIRROR_T_COUNT; t++)
		if (t != MIRROR_T_USERS)
			assert_int_equal(r.nrows[t], 0);
	assert_true(bloom_result_size(&r) >= r.copy[MIRROR_T_USERS].len);
	bloom_result_free(&r);
}

static void test_users_rejects(void **state)
{
	bloom_result r;

	(void)state;
	parse_ok(BLOOM_UNIT_USERS, 0,
	         "[{\"Id\":1,\"Name\":null,\"ResultType\":\"User\"},"
	         "{\"Id\":2,\"ResultType\":\"User\"},"
	         "{\"Id\":3,\"Name\":\"C\",\"Email\":5,\"ResultType\":\"User\"}," USER_ANN "]",
	         &r);
	expect_copy(&r, MIRROR_T_USERS, "1\tAnn\tann@x.com\tCEO\t/i/a.png\t42\tf\t" USER_ANN "\n");
	assert_int_equal(r.nrejects, 3);
	assert_string_equal(r.rejects[0].stream, "users");
	assert_string_equal(r.rejects[0].id, "1");
	assert_string_equal(r.rejects[0].reason, "Name: null");
	assert_string_equal(r.rejects[0].raw, "{\"Id\":1,\"Name\":null,\"ResultType\":\"User\"}");
	assert_string_equal(r.rejects[1].reason, "Name: missing");
	assert_string_equal(r.rejects[2].reason, "Email: not a string: 5");
	/* a rejected user keeps its key, so the run does not mark its row
	 * deleted, and its lists are read all the same: what lies under it
	 * must not look deleted either */
	for (int i = 0; i < 3; i++) {
		assert_true(r.rejects[i].has_key);
		assert_int_equal(r.rejects[i].key[0], i + 1);
		assert_int_equal(r.rejects[i].target, MIRROR_T_USERS);
	}
	assert_int_equal(r.nchildren, 4 * 7);
	assert_int_equal(r.children[7].ref, 2);
	assert_int_equal(r.children[7].kind, BLOOM_UNIT_USER_MEETINGS);
	assert_int_equal(r.children[14].ref, 3);
	bloom_result_free(&r);

	/* without a usable Id there is nothing to read under it, nor a key */
	parse_ok(BLOOM_UNIT_USERS, 0, "[{\"Id\":\"x\",\"Name\":\"X\",\"ResultType\":\"User\"}]", &r);
	assert_int_equal(r.nrejects, 1);
	assert_false(r.rejects[0].has_key);
	assert_null(r.rejects[0].id);
	assert_int_equal(r.nchildren, 0);
	bloom_result_free(&r);
}

/* ------------------------------------------------------------- meetings */

#define MEETING_456 "{\"Id\":456,\"Type\":\"NameId\",\"Key\":\"NameId_456\",\"Name\":\"Weekly\"}"
#define MEETING_457 "{\"Id\":457,\"Type\":\"\",\"Name\":\"\"}"

static void test_user_meetings(void **state)
{
	bloom_result r;
	const bloom_unit kids[] = {
		{BLOOM_UNIT_MEETING, 456},          {BLOOM_UNIT_ATTENDEES, 456},      {BLOOM_UNIT_MEETING_TODOS, 456},
		{BLOOM_UNIT_MEASURABLES, 456},      {BLOOM_UNIT_MEETING_SCORES, 456}, {BLOOM_UNIT_MEETING_ISSUES, 456},
		{BLOOM_UNIT_MEETING_HEADLINES, 456}, {BLOOM_UNIT_MEETING, 457},        {BLOOM_UNIT_ATTENDEES, 457},
		{BLOOM_UNIT_MEETING_TODOS, 457},    {BLOOM_UNIT_MEASURABLES, 457},    {BLOOM_UNIT_MEETING_SCORES, 457},
		{BLOOM_UNIT_MEETING_ISSUES, 457},   {BLOOM_UNIT_MEETING_HEADLINES, 457},
	};

	(void)state;
	parse_ok(BLOOM_UNIT_USER_MEETINGS, 1, "[" MEETING_456 "," MEETING_457 "]", &r);
	expect_copy(&r, MIRROR_T_MEETINGS_LIST,
	            "456\tWeekly\tNameId\tNameId_456\t" MEETING_456 "\n"
	            "457\t\\N\t\\N\t\\N\t" MEETING_457 "\n");
	assert_int_equal(r.nrows[MIRROR_T_MEETINGS_LIST], 2);
	expect_children(&r, kids, sizeof(kids) / sizeof(kids[0]));
	bloom_result_free(&r);

	parse_ok(BLOOM_UNIT_USER_MEETINGS, 1, "[]", &r);
	assert_int_equal(r.copy[MIRROR_T_MEETINGS_LIST].len, 0);
	assert_int_equal(r.nchildren, 0);
	bloom_result_free(&r);
}

#define DETAIL_789                                                                                        \
	"{\"Id\":789,\"Basics\":{\"Name\":\"Team Meeting\"},\"CreateTime\":\"2024-06-01T10:00:00Z\"," \
	"\"StartDateUtc\":null,\"OrganizationId\":42,\"Extra\":[1,{\"a\":true}]}"
#define DETAIL_NO_ID "{\"Basics\":{\"Name\":\"X\"},\"CreateTime\":\"2024-06-01T10:00:00\",\"StartDateUtc\":\"\"}"

static void test_meeting_detail(void **state)
{
	bloom_result r;

	(void)state;
	parse_ok(BLOOM_UNIT_MEETING, 789, DETAIL_789, &r);
	expect_copy(&r, MIRROR_T_MEETINGS_DETAIL, "789\tTeam Meeting\t\\N\t2024-06-01 10:00:00+00\t42\t" DETAIL_789 "\n");
	assert_int_equal(r.nrows[MIRROR_T_MEETINGS_DETAIL], 1);
	assert_int_equal(r.nchildren, 0);
	bloom_result_free(&r);

	/* no Id: the unit's ref; no OrganizationId: NULL */
	parse_ok(BLOOM_UNIT_MEETING, 55, DETAIL_NO_ID, &r);
	expect_copy(&r, MIRROR_T_MEETINGS_DETAIL, "55\tX\t\\N\t2024-06-01 10:00:00+00\t\\N\t" DETAIL_NO_ID "\n");
	bloom_result_free(&r);

	/* no Basics: name NULL */
	parse_ok(BLOOM_UNIT_MEETING, 56, "{\"Id\":56}", &r);
	expect_copy(&r, MIRROR_T_MEETINGS_DETAIL, "56\t\\N\t\\N\t\\N\t\\N\t{\"Id\":56}\n");
	bloom_result_free(&r);

	/* a bad date rejects the meeting */
	parse_ok(BLOOM_UNIT_MEETING, 57, "{\"Id\":57,\"CreateTime\":\"yesterday\"}", &r);
	assert_int_equal(r.nrows[MIRROR_T_MEETINGS_DETAIL], 0);
	assert_int_equal(r.copy[MIRROR_T_MEETINGS_DETAIL].len, 0);
	assert_int_equal(r.nrejects, 1);
	assert_string_equal(r.rejects[0].stream, "meetings");
	assert_string_equal(r.rejects[0].id, "57");
	assert_string_equal(r.rejects[0].reason, "CreateTime: not a date: \"yesterday\"");
	bloom_result_free(&r);
}

static void test_attendees(void **state)
{
	bloom_result r;

	(void)state;
	parse_ok(BLOOM_UNIT_ATTENDEES, 7, "[{\"Id\":123,\"Name\":\"John\",\"ImageUrl\":\"/i/j.png\"},{\"Id\":124}]", &r);
	expect_copy(&r, MIRROR_T_ATTENDEES,
	            "7\t123\t{\"Id\":123,\"Name\":\"John\",\"ImageUrl\":\"/i/j.png\"}\n"
	            "7\t124\t{\"Id\":124}\n");
	assert_int_equal(r.nrows[MIRROR_T_ATTENDEES], 2);
	assert_int_equal(r.nchildren, 0);
	bloom_result_free(&r);

	/* a rejected attendee is named by its meeting too, as the loader's
	 * record_id of meeting_attendees is: meeting_id/user_id */
	parse_ok(BLOOM_UNIT_ATTENDEES, 7, "[{\"Name\":\"no id\"},{\"Id\":null}]", &r);
	assert_int_equal(r.nrejects, 2);
	assert_string_equal(r.rejects[0].stream, "meeting_attendees");
	assert_string_equal(r.rejects[0].id, "7/?");
	assert_string_equal(r.rejects[0].reason, "Id: missing");
	assert_string_equal(r.rejects[1].id, "7/?");
	bloom_result_free(&r);
}

/* ---------------------------------------------------------------- todos */

#define TODO_10                                                                                                   \
	"{\"Id\":10,\"Name\":\"Call\",\"DetailsUrl\":\"https://x/t/10\",\"DueDate\":\"2024-12-31\"," \
	"\"CreateTime\":\"2024-06-01T10:00:00.123\",\"CompleteTime\":null,\"Complete\":false,\"Origin\":\"Weekly\"," \
	"\"OriginId\":456,\"Owner\":{\"Id\":123,\"Name\":\"J\"},\"TodoType\":\"L10\"}"
#define TODO_11                                                                                                   \
	"{\"Id\":11,\"Name\":\"\",\"DetailsUrl\":\"\",\"DueDate\":\"\",\"CreateTime\":\"2024-06-01T10:00:00Z\"," \
	"\"CompleteTime\":\"2024-06-02T11:00:00.1234567Z\",\"CloseTime\":\"2024-06-03T12:00:00+02:00\"," \
	"\"Complete\":true,\"Origin\":\"Individual\",\"OriginId\":null,\"Owner\":null,\"TodoType\":\"Personal\"}"
#define MILESTONE "{\"Id\":-5,\"Name\":\"Launch\",\"Complete\":false,\"TodoType\":\"Milestone\"}"

static void test_meeting_todos(void **state)
{
	bloom_result r;

	(void)state;
	parse_ok(BLOOM_UNIT_MEETING_TODOS, 456, "[" TODO_10 "," MILESTONE "," TODO_11 "]", &r);
	expect_copy(&r, MIRROR_T_TODOS,
	            "10\tCall\thttps://x/t/10\t2024-12-31 00:00:00+00\t2024-06-01 10:00:00.123+00\t\\N\t\\N\tf\t456\t"
	            "Weekly\t123\t" TODO_10 "\n"
	            "11\t\t\\N\t\\N\t2024-06-01 10:00:00+00\t2024-06-02 11:00:00.1234567+00\t"
	            "2024-06-03 12:00:00+02:00\tt\t\\N\tIndividual\t\\N\t" TODO_11 "\n");
	assert_int_equal(r.nrows[MIRROR_T_TODOS], 2);
	assert_int_equal(r.skipped, 1);
	assert_int_equal(r.nchildren, 0);
	bloom_result_free(&r);
}

static void test_user_todos_owner_fallback(void **state)
{
	bloom_result r;
	char owner[32];

	(void)state;
	parse_ok(BLOOM_UNIT_USER_TODOS, 77, "[" TODO_11 "," MILESTONE "," TODO_10 "]", &r);
	assert_int_equal(r.nrows[MIRROR_T_USER_TODOS], 2);
	assert_int_equal(r.skipped, 1);
	field_of(copy_text(&r, MIRROR_T_USER_TODOS), 10, owner, sizeof(owner));
	assert_string_equal(owner, "77"); /* Owner null in a user's list: that user */
	field_of(strchr(copy_text(&r, MIRROR_T_USER_TODOS), '\n') + 1, 10, owner, sizeof(owner));
	assert_string_equal(owner, "123");
	bloom_result_free(&r);

	/* Owner missing, too */
	parse_ok(BLOOM_UNIT_USER_TODOS, 78, "[{\"Id\":1,\"Name\":\"n\",\"Complete\":false}]", &r);
	expect_copy(&r, MIRROR_T_USER_TODOS,
	            "1\tn\t\\N\t\\N\t\\N\t\\N\t\\N\tf\t\\N\t\\N\t78\t{\"Id\":1,\"Name\":\"n\",\"Complete\":false}\n");
	bloom_result_free(&r);
}

/* An Owner object without a usable Id says no more than a null Owner: a
 * user's list (todos, goals) falls back to that user; lists without a
 * fallback write NULL; an Id of the wrong type still rejects. */
static void test_owner_without_id(void **state)
{
	static const char *const owners[] = {"{\"Id\":null}", "{}", "{\"Id\":null,\"Name\":\"N\"}", "{\"Name\":\"N\"}"};
	char body[256], owner[32];
	bloom_result r;

	(void)state;
	for (size_t i = 0; i < sizeof(owners) / sizeof(owners[0]); i++) {
		snprintf(body, sizeof(body), "[{\"Id\":1,\"Name\":\"n\",\"Complete\":false,\"Owner\":%s}]", owners[i]);
		parse_ok(BLOOM_UNIT_USER_TODOS, 78, body, &r);
		assert_int_equal(r.nrejects, 0);
		field_of(copy_text(&r, MIRROR_T_USER_TODOS), 10, owner, sizeof(owner));
		if (strcmp(owner, "78") != 0)
			fail_msg("user todos, Owner %s: owner_id [%s], want [78]", owners[i], owner);
		bloom_result_free(&r);

		parse_ok(BLOOM_UNIT_GOALS, 79, body, &r);
		assert_int_equal(r.nrejects, 0);
		field_of(copy_text(&r, MIRROR_T_GOALS), 2, owner, sizeof(owner));
		if (strcmp(owner, "79") != 0)
			fail_msg("goals, Owner %s: owner_id [%s], want [79]", owners[i], owner);
		bloom_result_free(&r);

		/* no fallback: a meeting's todos, issues, measurables */
		parse_ok(BLOOM_UNIT_MEETING_TODOS, 456, body, &r);
		assert_int_equal(r.nrejects, 0);
		field_of(copy_text(&r, MIRROR_T_TODOS), 10, owner, sizeof(owner));
		assert_string_equal(owner, "\\N");
		bloom_result_free(&r);
		parse_ok(BLOOM_UNIT_USER_ISSUES, 80, body, &r);
		assert_int_equal(r.nrejects, 0);
		field_of(copy_text(&r, MIRROR_T_USER_ISSUES), 3, owner, sizeof(owner));
		assert_string_equal(owner, "\\N");
		bloom_result_free(&r);
	}

	/* an Owner.Id that is there but no id is still an error */
	parse_ok(BLOOM_UNIT_USER_TODOS, 78, "[{\"Id\":1,\"Name\":\"n\",\"Complete\":false,\"Owner\":{\"Id\":\"x\"}}]", &r);
	assert_int_equal(r.nrows[MIRROR_T_USER_TODOS], 0);
	assert_int_equal(r.nrejects, 1);
	assert_string_equal(r.rejects[0].reason, "Owner.Id: not an integer: \"x\"");
	bloom_result_free(&r);
}

static void test_todo_rejects(void **state)
{
	bloom_result r;

	(void)state;
	parse_ok(BLOOM_UNIT_MEETING_TODOS, 456,
	         "[{\"Id\":1,\"Name\":\"no complete\"},"
	         "{\"Id\":2,\"Name\":\"bad\",\"Complete\":\"yes\"},"
	         "{\"Id\":3,\"Name\":\"bad owner\",\"Complete\":true,\"Owner\":5},"
	         "{\"Id\":4,\"Complete\":true}," TODO_10 "]",
	         &r);
	assert_int_equal(r.nrows[MIRROR_T_TODOS], 1);
	assert_int_equal(r.nrejects, 4);
	assert_string_equal(r.rejects[0].reason, "Complete: missing");
	assert_string_equal(r.rejects[1].reason, "Complete: not a boolean: \"yes\"");
	assert_string_equal(r.rejects[2].reason, "Owner: not an object: 5");
	assert_string_equal(r.rejects[3].reason, "Name: missing");
	for (size_t i = 0; i < r.nrejects; i++)
		assert_string_equal(r.rejects[i].stream, "todos");
	bloom_result_free(&r);
}

/* ---------------------------------------------------------- measurables */

#define MEAS_1                                                                                           \
	"{\"Id\":1,\"Name\":\"Revenue\",\"Target\":99.99,\"Modifiers\":\"Dollar\",\"Direction\":\"GreaterThan\"," \
	"\"Owner\":{\"Id\":5,\"Name\":\"O\"}}"
/* raw keeps the number as the API wrote it (15 significant digits) */
#define MEAS_1_RAW                                                                                                  \
	"{\"Id\":1,\"Name\":\"Revenue\",\"Target\":99.99,\"Modifiers\":\"Dollar\",\"Direction\":" \
	"\"GreaterThan\",\"Owner\":{\"Id\":5,\"Name\":\"O\"}}"
#define MEAS_2 "{\"Id\":2,\"Name\":\"Big\",\"Target\":1e20,\"Modifiers\":\"None\",\"Direction\":\"LessThan\"}"
#define MEAS_3 "{\"Id\":3,\"Name\":\"Calls\",\"Target\":50,\"Modifiers\":\"\",\"Owner\":null}"
#define MEAS_4 "{\"Id\":4,\"Name\":\"Open\",\"Target\":null}"
#define DIVIDER_1 "{\"Id\":null,\"Name\":\"----\",\"IsDivider\":true}"
#define DIVIDER_2 "{\"Id\":9,\"Name\":\"\"}"
#define DIVIDER_3 "{\"Id\":10}"
#define DIVIDER_4 "{\"Name\":\"no id\"}"

static void test_measurables(void **state)
{
	bloom_result r;

	(void)state;
	parse_ok(BLOOM_UNIT_MEASURABLES, 456,
	         "[" MEAS_1 "," DIVIDER_1 "," MEAS_2 "," DIVIDER_2 "," MEAS_3 "," DIVIDER_3 "," MEAS_4 "," DIVIDER_4 "]",
	         &r);
	expect_copy(&r, MIRROR_T_MEASURABLES,
	            "1\tRevenue\t99.99\tDollar\tGreaterThan\t5\t" MEAS_1_RAW "\n"
	            "2\tBig\t100000000000000000000\tNone\tLessThan\t\\N\t" MEAS_2 "\n"
	            "3\tCalls\t50\t\\N\t\\N\t\\N\t" MEAS_3 "\n"
	            "4\tOpen\t\\N\t\\N\t\\N\t\\N\t" MEAS_4 "\n");
	expect_copy(&r, MIRROR_T_MEETING_MEASURABLES,
	            "456\t1\t" MEAS_1_RAW "\n"
	            "456\t2\t" MEAS_2 "\n"
	            "456\t3\t" MEAS_3 "\n"
	            "456\t4\t" MEAS_4 "\n");
	assert_int_equal(r.nrows[MIRROR_T_MEASURABLES], 4);
	assert_int_equal(r.nrows[MIRROR_T_MEETING_MEASURABLES], 4);
	assert_int_equal(r.skipped, 4);
	assert_int_equal(r.nrejects, 0);
	bloom_result_free(&r);

	/* a rejected measurable writes neither target */
	parse_ok(BLOOM_UNIT_MEASURABLES, 456, "[{\"Id\":1,\"Name\":\"x\",\"Target\":\"12\"}," MEAS_4 "]", &r);
	expect_copy(&r, MIRROR_T_MEASURABLES, "4\tOpen\t\\N\t\\N\t\\N\t\\N\t" MEAS_4 "\n");
	expect_copy(&r, MIRROR_T_MEETING_MEASURABLES, "456\t4\t" MEAS_4 "\n");
	assert_int_equal(r.nrejects, 1);
	assert_string_equal(r.rejects[0].stream, "measurables");
	assert_string_equal(r.rejects[0].reason, "Target: not a number: \"12\"");
	bloom_result_free(&r);
}

/* Parses a measurable with the given Target JSON text, by the fast reader
 * or by jansson alone; writes the target column, or "reject: <reason>".
 * Returns a malloc'd string. */
static char *target_of(const char *value, bool reference)
{
	size_t blen = strlen(value) + 128;
	char *body = malloc(blen), *out;
	bloom_result r;

	assert_non_null(body);
	snprintf(body, blen, "[{\"Id\":1,\"Name\":\"m\",\"Target\":%s},{\"Id\":2,\"Name\":\"k\",\"Target\":7}]", value);
	parse_ok_by(reference, BLOOM_UNIT_MEASURABLES, 456, body, &r);
	/* one odd number never costs the other row */
	assert_non_null(strstr(copy_text(&r, MIRROR_T_MEASURABLES), "2\tk\t7\t"));
	if (r.nrejects) {
		assert_int_equal(r.nrejects, 1);
		assert_int_equal(r.nrows[MIRROR_T_MEASURABLES], 1);
		assert_string_equal(r.rejects[0].id, "1");
		out = malloc(strlen(r.rejects[0].reason) + 9);
		assert_non_null(out);
		sprintf(out, "reject: %s", r.rejects[0].reason);
	} else {
		const char *line = copy_text(&r, MIRROR_T_MEASURABLES);
		const char *start = strchr(strchr(line, '\t') + 1, '\t') + 1;
		size_t n = strcspn(start, "\t");
		assert_int_equal(r.nrows[MIRROR_T_MEASURABLES], 2);
		out = malloc(n + 1);
		assert_non_null(out);
		memcpy(out, start, n);
		out[n] = '\0';
	}
	bloom_result_free(&r);
	free(body);
	return out;
}

/* "0." then zeros, a one at the given decimal place; malloc'd. */
static char *tiny(size_t place)
{
	char *s = malloc(place + 3);

	assert_non_null(s);
	memcpy(s, "0.", 2);
	memset(s + 2, '0', place - 1);
	s[place + 1] = '1';
	s[place + 2] = '\0';
	return s;
}

/* A numeric column gets the number the API wrote, digit for digit, not
 * what a double makes of it, whichever reader read it (objects with a
 * duplicate key are read by jansson); in one canonical form (no exponent, no trailing fraction zeros,
 * no minus zero) so equal numbers always give the same text. A number
 * PostgreSQL's numeric cannot hold rejects its record only. */
static void test_numeric_exact(void **state)
{
	char *t400 = tiny(400), *t16383 = tiny(16383);
	const struct {
		const char *json, *expected;
	} cases[] = {
		{"33.333333333333333333333333333", "33.333333333333333333333333333"},
		{"-33.333333333333333333333333333", "-33.333333333333333333333333333"},
		{"0.30000000000000004", "0.30000000000000004"},
		{"123456789.123456789", "123456789.123456789"},
		{"3.14159265358979323846264338327950288419716939937510582097494459",
		 "3.14159265358979323846264338327950288419716939937510582097494459"},
		{"99.99", "99.99"},
		{"0.1", "0.1"},
		{"-0.5", "-0.5"},
		{"12.5", "12.5"},
		{"1.0", "1"},
		{"100.50", "100.5"},
		{"-0.0", "0"},
		{"0.000", "0"},
		{"-0", "0"},
		{"50", "50"},
		{"-9223372036854775808", "-9223372036854775808"},
		/* beyond int64 (jansson alone refuses them: "too big integer") */
		{"-9223372036854775809", "-9223372036854775809"},
		{"79228162514264337593543950335", "79228162514264337593543950335"},
		{"1E-5", "0.00001"},
		{"1e20", "100000000000000000000"},
		{"1e+5", "100000"},
		{"1.5e3", "1500"},
		{"12.34e-1", "1.234"},
		{"-0.00120e2", "-0.12"},
		{"1.00000000000000000000001", "1.00000000000000000000001"},
		{"0e99999", "0"},
		{"0.0e-99999", "0"},
		{"1e-400", t400},
		{"1e-16383", t16383},
		{"1e-16384", "reject: Target: out of range for numeric: 1e-16384"},
		{"-1e-999999999999", "reject: Target: out of range for numeric: -1e-999999999999"},
		{"0.1e-99999999999999999999999", "reject: Target: out of range for numeric: 0.1e-99999999999999999999999"},
		/* a duplicate key: jansson keeps the last value */
		{"1.25,\"Target\":0.33333333333333333333", "0.33333333333333333333"},
		{"{\"x\":1.5},\"Target\":2.000000000000000000001,\"Target\":-7.25", "-7.25"},
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		for (int reference = 0; reference < 2; reference++) {
			char *got = target_of(cases[i].json, reference);
			if (strcmp(got, cases[i].expected) != 0)
				fail_msg("Target %.60s (%s reader): got [%.80s], want [%.80s]", cases[i].json,
				         reference ? "jansson" : "fast", got, cases[i].expected);
			free(got);
		}
	}
	free(t400);
	free(t16383);
}

/* A long number goes into raw as written, however long, as long as jsonb
 * takes it (these once went in as a double prints them, 1.0 and 0.0): X has
 * the most fraction digits jsonb takes (16383; past that, see
 * test_numbers_past_jsonb). The numeric column gets every digit too. */
static void test_long_numbers_in_raw(void **state)
{
	size_t cap = 2 * 16384 + 256;
	char *body = malloc(cap), *p = body, *element;
	size_t elen;

	(void)state;
	assert_non_null(body);
	p += sprintf(p, "[");
	element = p;
	p += sprintf(p, "{\"Id\":1,\"Name\":\"m\",\"Target\":1.");
	memset(p, '0', 16000);
	p += 16000;
	p += sprintf(p, "5,\"X\":0.");
	memset(p, '0', 16382);
	p += 16382;
	p += sprintf(p, "1}");
	elen = (size_t)(p - element);
	p += sprintf(p, "]");
	for (int reference = 0; reference < 2; reference++) {
		bloom_result r;
		const char *text, *raw;
		parse_ok_by(reference, BLOOM_UNIT_MEASURABLES, 456, body, &r);
		assert_int_equal(r.nrejects, 0);
		assert_true(r.copy[MIRROR_T_MEASURABLES].len > 16000 + 6);
		text = r.copy[MIRROR_T_MEASURABLES].data;
		assert_int_equal(strncmp(text, "1\tm\t1.", 6), 0);
		assert_int_equal(strspn(text + 6, "0"), 16000);
		assert_int_equal(strncmp(text + 6 + 16000, "5\t\\N\t\\N\t\\N\t", 11), 0);
		raw = text + 6 + 16000 + 11;
		assert_int_equal(strlen(raw), elen + 1);
		assert_int_equal(strncmp(raw, element, elen), 0);
		assert_string_equal(raw + elen, "\n");
		bloom_result_free(&r);
	}
	free(body);
}

/* ------------------------------------------- numbers past a double's range */

/* Strings a test builds, freed together by free_built. */
static char *built[256];
static size_t nbuilt;

static const char *keep_built(char *s)
{
	assert_non_null(s);
	assert_true(nbuilt < sizeof(built) / sizeof(built[0]));
	built[nbuilt++] = s;
	return s;
}

static void free_built(void)
{
	while (nbuilt)
		free(built[--nbuilt]);
}

/* head, n copies of ch, tail: kept until free_built. */
static const char *spell(const char *head, char ch, size_t n, const char *tail)
{
	size_t hl = strlen(head), tl = strlen(tail);
	char *s = malloc(hl + n + tl + 1);

	assert_non_null(s);
	memcpy(s, head, hl);
	memset(s + hl, ch, n);
	memcpy(s + hl + n, tail, tl + 1);
	return keep_built(s);
}

/* The strings joined (NULL ends the list): kept until free_built. */
static const char *join(const char *first, ...)
{
	va_list ap;
	size_t len = 0;
	char *s;

	va_start(ap, first);
	for (const char *p = first; p; p = va_arg(ap, const char *))
		len += strlen(p);
	va_end(ap);
	s = malloc(len + 1);
	assert_non_null(s);
	s[0] = '\0';
	va_start(ap, first);
	for (const char *p = first; p; p = va_arg(ap, const char *))
		strcat(s, p);
	va_end(ap);
	return keep_built(s);
}

/* A valid number past a double's range (1e400, a 400-digit integer) in a
 * scorecard, an object body: once the body failed (jansson: "real number
 * overflow"), its unit and so every run. The rows are stored, the numeric
 * columns exact, raw as the API wrote the numbers; whichever reader reads
 * the body (a duplicate key sends a body to jansson). */
static void test_numbers_past_double_in_object_body(void **state)
{
	const char *s1 = "{\"Id\":1,\"MeasurableId\":5,\"Measured\":1e400,\"ForWeek\":2425}";
	const char *s2 = "{\"Id\":2,\"MeasurableId\":5,\"Target\":-1e400,\"Measured\":2e1000}";
	const char *s3 = "{\"Id\":3,\"Target\":1e-1000,\"Measured\":1.5E+0005}";
	const char *e400 = spell("1", '0', 400, ""), *e1000 = spell("2", '0', 1000, "");
	const char *expected =
	    join("1\t5\t\\N\t\\N\t\\N\t", e400, "\t\\N\t2425\t\\N\t", s1, "\n",
	         "2\t5\t\\N\t\\N\t-", e400, "\t", e1000, "\t\\N\t\\N\t\\N\t", s2, "\n",
	         "3\t\\N\t\\N\t\\N\t", spell("0.", '0', 999, "1"), "\t150000\t\\N\t\\N\t\\N\t", s3, "\n", NULL);
	const char *body = join("{\"Scores\":[", s1, ",", s2, ",", s3, "],\"Weeks\":[]}", NULL);
	const char *body_dup = join("{\"Weeks\":[],\"Scores\":[", s1, ",", s2, ",", s3, "],\"Weeks\":[]}", NULL);

	(void)state;
	for (int reference = 0; reference < 2; reference++) {
		for (int dup = 0; dup < 2; dup++) {
			bloom_result r;
			parse_ok_by(reference, BLOOM_UNIT_MEETING_SCORES, 101, dup ? body_dup : body, &r);
			assert_int_equal(r.nrejects, 0);
			assert_int_equal(r.nrows[MIRROR_T_SCORES], 3);
			expect_copy(&r, MIRROR_T_SCORES, expected);
			bloom_result_free(&r);
		}
	}
	free_built();
}

/* The same in a list body, where such an element was rejected whole as
 * unreadable, without its key (which held the table's deletes): integers
 * and fractions of 400 digits too, and an element jansson reads (a
 * duplicate key). */
static void test_numbers_past_double_in_list_body(void **state)
{
	const char *int400 = spell("9", '8', 399, ""), *frac400 = spell("-0.", '3', 398, "7");
	const char *m1 = "{\"Id\":1,\"Name\":\"a\",\"Target\":1e400,\"AltTarget\":-1e400}";
	const char *m2 = join("{\"Id\":2,\"Name\":\"b\",\"Target\":", int400, ",\"AltTarget\":", frac400, "}", NULL);
	const char *m3 = "{\"Id\":3,\"Name\":\"c\",\"Name\":\"c\",\"Target\":2e1000}";
	const char *m3_raw = "{\"Id\":3,\"Name\":\"c\",\"Target\":2e1000}"; /* jansson keeps one Name */
	const char *body = join("[", m1, ",", m2, ",", m3, "]", NULL);
	const char *expected = join("1\ta\t", spell("1", '0', 400, ""), "\t\\N\t\\N\t\\N\t", m1, "\n",
	                            "2\tb\t", int400, "\t\\N\t\\N\t\\N\t", m2, "\n",
	                            "3\tc\t", spell("2", '0', 1000, ""), "\t\\N\t\\N\t\\N\t", m3_raw, "\n", NULL);

	(void)state;
	for (int reference = 0; reference < 2; reference++) {
		bloom_result r;
		parse_ok_by(reference, BLOOM_UNIT_MEASURABLES, 456, body, &r);
		assert_int_equal(r.nrejects, 0);
		expect_copy(&r, MIRROR_T_MEASURABLES, expected);
		assert_int_equal(r.nrows[MIRROR_T_MEETING_MEASURABLES], 3);
		bloom_result_free(&r);
	}
	free_built();
}

/* The measurable row of a body whose Target has the given JSON text, by one
 * reader; kept until free_built. */
static const char *measurable_line(const char *target, bool reference)
{
	const char *body = join("[{\"Id\":1,\"Name\":\"m\",\"Target\":", target, "}]", NULL);
	bloom_result r;
	const char *line;

	parse_ok_by(reference, BLOOM_UNIT_MEASURABLES, 456, body, &r);
	assert_int_equal(r.nrejects, 0);
	line = join(copy_text(&r, MIRROR_T_MEASURABLES), NULL);
	bloom_result_free(&r);
	return line;
}

/* raw holds each number as the API wrote it: jsonb keeps its value exactly
 * (as a numeric), as the numeric column does. Exponents of four digits and
 * more, and numbers of 256 characters and more, once went into raw as a
 * double prints them (15 digits, 0.0 for 1e-1000). */
static void test_raw_keeps_number_text(void **state)
{
	const struct {
		const char *json, *column;
	} cases[] = {
		{"123456789012345678.5e-0005", "1234567890123.456785"},
		{"1e-1000", spell("0.", '0', 999, "1")},
		{"1E-0005", "0.00001"},
		{"1.5E+0005", "150000"},
		{"-2.5e0010", "-25000000000"},
		{"1e400", spell("1", '0', 400, "")},
		{"-1e400", spell("-1", '0', 400, "")},
		{spell("7", '1', 299, ""), spell("7", '1', 299, "")},
		{spell("0.", '1', 300, ""), spell("0.", '1', 300, "")},
		{spell("-4", '0', 399, ".5"), spell("-4", '0', 399, ".5")},
		{spell("0.", '9', 400, "e-2"), spell("0.00", '9', 400, "")},
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const char *want = join("1\tm\t", cases[i].column, "\t\\N\t\\N\t\\N\t{\"Id\":1,\"Name\":\"m\",\"Target\":",
		                        cases[i].json, "}\n", NULL);
		for (int reference = 0; reference < 2; reference++) {
			const char *got = measurable_line(cases[i].json, reference);
			if (strcmp(got, want) != 0)
				fail_msg("Target %.60s (%s reader): got [%.200s], want [%.200s]", cases[i].json,
				         reference ? "jansson" : "fast", got, want);
		}
	}
	free_built();
}

/* A number a key column cannot take (an Id past bigint, a ForWeek past
 * integer) rejects its record only, with its stream and its Id when that
 * reads; the body and the other records are kept. */
static void test_numbers_past_columns_reject_the_record(void **state)
{
	const char *body = "{\"Scores\":[{\"Id\":7,\"MeasurableId\":1e400},{\"Id\":8,\"ForWeek\":-2e1000},"
	                   "{\"Id\":1e400,\"Measured\":1},{\"Id\":9,\"Measured\":1e400}]}";

	(void)state;
	for (int reference = 0; reference < 2; reference++) {
		bloom_result r;
		parse_ok_by(reference, BLOOM_UNIT_MEETING_SCORES, 101, body, &r);
		assert_int_equal(r.nrows[MIRROR_T_SCORES], 1);
		assert_int_equal(strncmp(copy_text(&r, MIRROR_T_SCORES), "9\t", 2), 0);
		assert_int_equal(r.nrejects, 3);
		for (size_t i = 0; i < r.nrejects; i++)
			assert_string_equal(r.rejects[i].stream, "scores");
		assert_string_equal(r.rejects[0].id, "7");
		assert_true(r.rejects[0].has_key);
		assert_string_equal(r.rejects[0].reason, "MeasurableId: not an integer: 1e400");
		assert_string_equal(r.rejects[0].raw, "{\"Id\":7,\"MeasurableId\":1e400}");
		assert_string_equal(r.rejects[1].id, "8");
		assert_string_equal(r.rejects[1].reason, "ForWeek: not an integer: -2e1000");
		assert_null(r.rejects[2].id);
		assert_false(r.rejects[2].has_key);
		assert_string_equal(r.rejects[2].reason, "Id: not an integer: 1e400");
		assert_string_equal(r.rejects[2].raw, "{\"Id\":1e400,\"Measured\":1}");
		bloom_result_free(&r);
	}
}

/* jsonb holds what numeric holds: at most 131072 digits before the point
 * and 16383 after. A number whose value is past that rejects its record,
 * wherever it is (AltTarget is in no column): raw could only hold another
 * number. One whose text numeric_in refuses but whose value it holds
 * (fraction digits that are trailing zeros) goes into raw as that value. */
static void test_numbers_past_jsonb(void **state)
{
	const char *tiny_x = spell("0.", '0', 16383, "1"); /* 16384 fraction digits */
	const char *long_one = spell("1.", '0', 16384, "");
	const char *body = join("[{\"Id\":1,\"Name\":\"a\",\"AltTarget\":", tiny_x, "},",
	                        "{\"Id\":2,\"Name\":\"b\",\"Owner\":{\"Id\":5,\"X\":[1e131072]}},",
	                        "{\"Id\":3,\"Name\":\"c\",\"AltTarget\":", long_one, ",\"Y\":0e1073741823},",
	                        "{\"Id\":4,\"Name\":\"d\",\"AltTarget\":1e131071}]", NULL);
	const char *raw4 = "{\"Id\":4,\"Name\":\"d\",\"AltTarget\":1e131071}";

	(void)state;
	for (int reference = 0; reference < 2; reference++) {
		bloom_result r;
		parse_ok_by(reference, BLOOM_UNIT_MEASURABLES, 456, body, &r);
		expect_copy(&r, MIRROR_T_MEASURABLES,
		            join("3\tc\t\\N\t\\N\t\\N\t\\N\t{\"Id\":3,\"Name\":\"c\",\"AltTarget\":1,\"Y\":0}\n",
		                 "4\td\t\\N\t\\N\t\\N\t\\N\t", raw4, "\n", NULL));
		assert_int_equal(r.nrejects, 2);
		assert_string_equal(r.rejects[0].id, "1");
		assert_string_equal(r.rejects[0].reason,
		                    join("AltTarget: out of range for jsonb: ", spell("0.", '0', 78, "..."), NULL));
		assert_string_equal(r.rejects[0].raw, join("{\"Id\":1,\"Name\":\"a\",\"AltTarget\":", tiny_x, "}", NULL));
		assert_string_equal(r.rejects[1].id, "2");
		assert_string_equal(r.rejects[1].reason, "Owner: out of range for jsonb: 1e131072");
		bloom_result_free(&r);
	}
	free_built();
}

/* --------------------------------------------------------------- scores */

#define SCORE_1                                                                                               \
	"{\"Id\":1,\"MeasurableId\":2,\"AccountableUserId\":3,\"MeasurableName\":\"Rev\",\"Target\":100," \
	"\"Measured\":null,\"Week\":\"2024-W25\",\"ForWeek\":2425,\"DateEntered\":\"2024-06-20T08:30:00+0200\"}"
#define SCORE_2                                                                                             \
	"{\"Id\":2,\"MeasurableId\":2,\"AccountableUserId\":null,\"MeasurableName\":\"\",\"Target\":null," \
	"\"Measured\":12.5,\"Week\":\"2024-06-16T00:00:00\",\"ForWeek\":null,\"DateEntered\":null}"

static void test_scores(void **state)
{
	const char *body = "{\"Scores\":[" SCORE_1 "," SCORE_2 "],\"Measurables\":[{\"Id\":2}],\"Weeks\":[]}";
	const char *expected = "1\t2\t3\tRev\t100\t\\N\t2024-W25\t2425\t2024-06-20 08:30:00+02:00\t" SCORE_1 "\n"
	                       "2\t2\t\\N\t\\N\t\\N\t12.5\t2024-06-16T00:00:00\t\\N\t\\N\t" SCORE_2 "\n";
	bloom_result r;

	(void)state;
	parse_ok(BLOOM_UNIT_MEETING_SCORES, 456, body, &r);
	expect_copy(&r, MIRROR_T_SCORES, expected);
	assert_int_equal(r.nrows[MIRROR_T_SCORES], 2);
	assert_int_equal(r.nchildren, 0);
	bloom_result_free(&r);

	parse_ok(BLOOM_UNIT_USER_SCORES, 3, body, &r);
	expect_copy(&r, MIRROR_T_SCORES, expected);
	bloom_result_free(&r);

	/* no Scores, or null: no rows */
	parse_ok(BLOOM_UNIT_USER_SCORES, 3, "{\"Measurables\":[]}", &r);
	assert_int_equal(r.nrows[MIRROR_T_SCORES], 0);
	assert_int_equal(r.copy[MIRROR_T_SCORES].len, 0);
	bloom_result_free(&r);
	parse_ok(BLOOM_UNIT_MEETING_SCORES, 3, "{\"Scores\":null}", &r);
	assert_int_equal(r.nrows[MIRROR_T_SCORES], 0);
	bloom_result_free(&r);
}

static void test_score_rejects(void **state)
{
	bloom_result r;

	(void)state;
	parse_ok(BLOOM_UNIT_MEETING_SCORES, 456,
	         "{\"Scores\":[{\"Id\":5,\"Week\":202425},"
	         "{\"Id\":6,\"ForWeek\":3000000000},"
	         "{\"Id\":7,\"ForWeek\":2.5},"
	         "{\"Id\":8,\"Measured\":true},"
	         "[1,2],"
	         "{\"Id\":9,\"ForWeek\":-2147483648,\"Measured\":-0.5}]}",
	         &r);
	expect_copy(&r, MIRROR_T_SCORES,
	            "9\t\\N\t\\N\t\\N\t\\N\t-0.5\t\\N\t-2147483648\t\\N\t{\"Id\":9,\"ForWeek\":-2147483648,"
	            "\"Measured\":-0.5}\n");
	assert_int_equal(r.nrejects, 5);
	assert_string_equal(r.rejects[0].reason, "Week: not a string: 202425");
	assert_string_equal(r.rejects[1].reason, "ForWeek: out of range for integer: 3000000000");
	assert_string_equal(r.rejects[2].reason, "ForWeek: not an integer: 2.5");
	assert_string_equal(r.rejects[3].reason, "Measured: not a number: true");
	assert_string_equal(r.rejects[4].reason, "element is not an object");
	assert_null(r.rejects[4].id);
	assert_string_equal(r.rejects[4].raw, "[1,2]");
	assert_string_equal(r.rejects[4].stream, "scores");
	bloom_result_free(&r);
}

/* ------------------------------------------------- NULs, escapes, text */

static void test_nul_removed(void **state)
{
	bloom_result r;

	(void)state;
	parse_ok(BLOOM_UNIT_USERS, 0,
	         "[{\"Id\":1,\"Name\":\"A\\u0000nn\",\"Email\":\"\\u0000\",\"ResultType\":\"User\","
	         "\"Deep\":[{\"x\":\"\\u0000\\u0000y\"}]},"
	         "{\"Id\":2,\"Name\":\"T\\u0000\",\"ResultType\":\"Team\"}]",
	         &r);
	/* Email "\u0000" becomes "": NULL, and so a placeholder */
	expect_copy(&r, MIRROR_T_USERS,
	            "1\tAnn\t\\N\t\\N\t\\N\t\\N\tt\t{\"Id\":1,\"Name\":\"Ann\",\"Email\":\"\",\"ResultType\":\"User\","
	            "\"Deep\":[{\"x\":\"y\"}]}\n");
	assert_int_equal(r.nul_removed, 4); /* the skipped team's NUL is not stored, not counted */
	assert_int_equal(r.skipped, 1);
	bloom_result_free(&r);

	/* NUL in a key (jansson refuses those: the body is cleaned and reloaded) */
	parse_ok(BLOOM_UNIT_ATTENDEES, 7, "[{\"Id\":5,\"X\\u0000y\":\"a\\u0000b\",\"q\":\"\\\\u0000\"}]", &r);
	expect_copy(&r, MIRROR_T_ATTENDEES, "7\t5\t{\"Id\":5,\"Xy\":\"ab\",\"q\":\"\\\\\\\\u0000\"}\n");
	assert_int_equal(r.nul_removed, 2);
	bloom_result_free(&r);

	/* NULs in a rejected record are removed from its raw too */
	parse_ok(BLOOM_UNIT_ATTENDEES, 7, "[{\"Id\":\"1\\u00002\"}]", &r);
	assert_int_equal(r.nrejects, 1);
	assert_string_equal(r.rejects[0].raw, "{\"Id\":\"12\"}");
	assert_string_equal(r.rejects[0].reason, "Id: not an integer: \"12\"");
	assert_string_equal(r.rejects[0].id, "7/?"); /* the meeting, and no usable Id */
	assert_int_equal(r.nul_removed, 1);
	bloom_result_free(&r);
}

static void test_copy_escaping(void **state)
{
	bloom_result r;

	(void)state;
	/* Name: tab, newline, backslash, carriage return; Type: the text \N;
	 * Key: quotes */
	parse_ok(BLOOM_UNIT_USER_MEETINGS, 1,
	         "[{\"Id\":1,\"Name\":\"a\\tb\\nc\\\\d\\re\",\"Type\":\"\\\\N\",\"Key\":\"say \\\"hi\\\"\"}]", &r);
	expect_copy(&r, MIRROR_T_MEETINGS_LIST,
	            "1\ta\\tb\\nc\\\\d\\re\t\\\\N\tsay \"hi\"\t"
	            "{\"Id\":1,\"Name\":\"a\\\\tb\\\\nc\\\\\\\\d\\\\re\",\"Type\":\"\\\\\\\\N\","
	            "\"Key\":\"say \\\\\"hi\\\\\"\"}\n");
	bloom_result_free(&r);
}

static void test_unicode_kept(void **state)
{
	bloom_result r;

	(void)state;
	parse_ok(BLOOM_UNIT_USER_MEETINGS, 1,
	         "[{\"Id\":1,\"Name\":\"\xf0\x9f\x98\x80 日本語 שלום\",\"Type\":\"\\ud83d\\ude80\\u05d0\"}]", &r);
	expect_copy(&r, MIRROR_T_MEETINGS_LIST,
	            "1\t\xf0\x9f\x98\x80 日本語 שלום\t\xf0\x9f\x9a\x80\xd7\x90\t\\N\t"
	            "{\"Id\":1,\"Name\":\"\xf0\x9f\x98\x80 日本語 שלום\",\"Type\":\"\xf0\x9f\x9a\x80\xd7\x90\"}\n");
	bloom_result_free(&r);
}

static void test_long_string(void **state)
{
	enum { LONG = 40 * 1024 };
	char *name = malloc(LONG + 1), *body = malloc(LONG + 64), *expected = malloc(2 * LONG + 128);
	bloom_result r;

	(void)state;
	assert_non_null(name);
	assert_non_null(body);
	assert_non_null(expected);
	for (size_t i = 0; i < LONG; i++)
		name[i] = (char)('a' + i % 26);
	name[LONG] = '\0';
	snprintf(body, LONG + 64, "[{\"Id\":1,\"Name\":\"%s\"}]", name);
	snprintf(expected, 2 * LONG + 128, "1\t%s\t\\N\t\\N\t{\"Id\":1,\"Name\":\"%s\"}\n", name, name);
	parse_ok(BLOOM_UNIT_USER_MEETINGS, 1, body, &r);
	expect_copy(&r, MIRROR_T_MEETINGS_LIST, expected);
	assert_true(bloom_result_size(&r) > 2 * LONG);
	bloom_result_free(&r);
	free(name);
	free(body);
	free(expected);
}

/* ---------------------------------------------------------------- dates */

/* Parses a todo with the given DueDate JSON value; writes the due_date
 * column, or "reject: <reason>". */
static void due_date(const char *value, char *out, size_t outlen)
{
	char body[512];
	bloom_result r;

	snprintf(body, sizeof(body), "[{\"Id\":1,\"Name\":\"t\",\"Complete\":false,\"DueDate\":%s}]", value);
	parse_ok(BLOOM_UNIT_MEETING_TODOS, 2, body, &r);
	if (r.nrejects) {
		assert_int_equal(r.nrows[MIRROR_T_TODOS], 0);
		assert_string_equal(r.rejects[0].id, "1");
		snprintf(out, outlen, "reject: %s", r.rejects[0].reason);
	} else {
		assert_int_equal(r.nrows[MIRROR_T_TODOS], 1);
		field_of(copy_text(&r, MIRROR_T_TODOS), 3, out, outlen);
	}
	bloom_result_free(&r);
}

static void test_dates(void **state)
{
	static const struct {
		const char *json, *expected;
	} cases[] = {
		{"\"2024-06-01T10:00:00Z\"", "2024-06-01 10:00:00+00"},
		{"\"2024-06-01T10:00:00\"", "2024-06-01 10:00:00+00"},
		{"\"2024-06-01T10:00:00.123\"", "2024-06-01 10:00:00.123+00"},
		{"\"2024-06-01T10:00:00.1234567\"", "2024-06-01 10:00:00.1234567+00"},
		{"\"2024-06-01T10:00:00.1234567Z\"", "2024-06-01 10:00:00.1234567+00"},
		{"\"2024-06-01T10:00:00.123456789\"", "2024-06-01 10:00:00.123456789+00"},
		{"\"2024-06-01T10:00:00.5+01:00\"", "2024-06-01 10:00:00.5+01:00"},
		{"\"2024-06-01T10:00:00-0730\"", "2024-06-01 10:00:00-07:30"},
		{"\"2024-06-01T10:00\"", "2024-06-01 10:00:00+00"},
		{"\"2024-06-01T10:00Z\"", "2024-06-01 10:00:00+00"},
		{"\"2024-12-31\"", "2024-12-31 00:00:00+00"},
		{"\"2024-02-29\"", "2024-02-29 00:00:00+00"},
		{"\"2000-02-29T23:59:59\"", "2000-02-29 23:59:59+00"},
		{"\"0001-01-01T00:00:00\"", "0001-01-01 00:00:00+00"},
		{"\"\"", "\\N"},
		{"null", "\\N"},
		{"\"31/12/2024\"", "reject: DueDate: not a date: \"31/12/2024\""},
		{"\"2023-02-29\"", "reject: DueDate: not a date: \"2023-02-29\""},
		{"\"1900-02-29\"", "reject: DueDate: not a date: \"1900-02-29\""},
		{"\"2024-04-31\"", "reject: DueDate: not a date: \"2024-04-31\""},
		{"\"2024-13-01\"", "reject: DueDate: not a date: \"2024-13-01\""},
		{"\"2024-00-10\"", "reject: DueDate: not a date: \"2024-00-10\""},
		{"\"0000-01-01\"", "reject: DueDate: not a date: \"0000-01-01\""},
		{"\"2024-06-01T24:00:00\"", "reject: DueDate: not a date: \"2024-06-01T24:00:00\""},
		{"\"2024-06-01T10:60:00\"", "reject: DueDate: not a date: \"2024-06-01T10:60:00\""},
		{"\"2024-06-01T10:00:60\"", "reject: DueDate: not a date: \"2024-06-01T10:00:60\""},
		{"\"2024-06-01T10:00:00.\"", "reject: DueDate: not a date: \"2024-06-01T10:00:00.\""},
		{"\"2024-06-01T10:00:00.1234567890\"", "reject: DueDate: not a date: \"2024-06-01T10:00:00.1234567890\""},
		{"\"2024-06-01 10:00:00\"", "reject: DueDate: not a date: \"2024-06-01 10:00:00\""},
		{"\"2024-06-01T10:00:00+5\"", "reject: DueDate: not a date: \"2024-06-01T10:00:00+5\""},
		{"\"2024-06-01T10:00:00Zx\"", "reject: DueDate: not a date: \"2024-06-01T10:00:00Zx\""},
		{"\"2024-6-1\"", "reject: DueDate: not a date: \"2024-6-1\""},
		{"20240601", "reject: DueDate: not a date: 20240601"},
	};
	char got[256];

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		due_date(cases[i].json, got, sizeof(got));
		if (strcmp(got, cases[i].expected) != 0)
			fail_msg("DueDate %s: got [%s], want [%s]", cases[i].json, got, cases[i].expected);
	}
}

static void test_bad_date_rejected_others_kept(void **state)
{
	bloom_result r;
	char body[2048], reason[256], longdate[200];

	(void)state;
	parse_ok(BLOOM_UNIT_MEETING_TODOS, 456,
	         "[" TODO_10 ",{\"Id\":12,\"Name\":\"x\",\"DueDate\":\"31/12/2024\",\"Complete\":false}," TODO_11 "]", &r);
	assert_int_equal(r.nrows[MIRROR_T_TODOS], 2);
	assert_int_equal(strncmp(copy_text(&r, MIRROR_T_TODOS), "10\t", 3), 0);
	assert_non_null(strstr(copy_text(&r, MIRROR_T_TODOS), "\n11\t"));
	assert_int_equal(r.nrejects, 1);
	assert_string_equal(r.rejects[0].stream, "todos");
	assert_string_equal(r.rejects[0].id, "12");
	assert_string_equal(r.rejects[0].reason, "DueDate: not a date: \"31/12/2024\"");
	assert_string_equal(r.rejects[0].raw, "{\"Id\":12,\"Name\":\"x\",\"DueDate\":\"31/12/2024\",\"Complete\":false}");
	bloom_result_free(&r);

	/* the value quoted in the reason is cut on a character boundary */
	memset(longdate, 0, sizeof(longdate));
	for (size_t i = 0; i < 60; i++)
		memcpy(longdate + 2 * i, "\xc3\xa9", 2); /* 120 bytes of é */
	snprintf(body, sizeof(body), "[{\"Id\":1,\"Name\":\"x\",\"Complete\":true,\"DueDate\":\"%s\"}]", longdate);
	parse_ok(BLOOM_UNIT_USER_TODOS, 1, body, &r);
	assert_int_equal(r.nrejects, 1);
	snprintf(reason, sizeof(reason), "DueDate: not a date: \"%.80s\"...", longdate);
	assert_string_equal(r.rejects[0].reason, reason);
	bloom_result_free(&r);
}

/* ------------------------------------------------------------ integers */

static void test_ids(void **state)
{
	bloom_result r;

	(void)state;
	parse_ok(BLOOM_UNIT_ATTENDEES, 7,
	         "[{\"Id\":\"12\"},{\"Id\":5.0},{\"Id\":5.5},{\"Id\":true},{\"Id\":null},{},"
	         "{\"Id\":9223372036854775807},{\"Id\":-9223372036854775808},{\"Id\":1e300}]",
	         &r);
	expect_copy(&r, MIRROR_T_ATTENDEES,
	            "7\t5\t{\"Id\":5.0}\n"
	            "7\t9223372036854775807\t{\"Id\":9223372036854775807}\n"
	            "7\t-9223372036854775808\t{\"Id\":-9223372036854775808}\n");
	assert_int_equal(r.nrejects, 6);
	assert_string_equal(r.rejects[0].reason, "Id: not an integer: \"12\"");
	assert_string_equal(r.rejects[0].id, "7/?"); /* the meeting, and no usable Id */
	assert_string_equal(r.rejects[0].stream, "meeting_attendees");
	assert_string_equal(r.rejects[1].reason, "Id: not an integer: 5.5");
	assert_string_equal(r.rejects[2].reason, "Id: not an integer: true");
	assert_string_equal(r.rejects[3].reason, "Id: null");
	assert_string_equal(r.rejects[4].reason, "Id: missing");
	assert_string_equal(r.rejects[4].raw, "{}");
	assert_string_equal(r.rejects[5].reason, "Id: not an integer: 1e300"); /* as written */
	bloom_result_free(&r);
}

/* A rejected record is named by the key its row would have had, or by
 * none: never by another record's. An Id written as a real is that
 * integer only when its digits say so exactly: 9007199254740993.0 is not
 * 9007199254740992 (what a double makes of it), and 5.0000000000000001 is
 * no integer at all. */
/* The tables held from deletes when a record of a table is rejected
 * without its Id: a user leads to every table, a meeting of a user's list
 * to the meeting's own, a measurable or a goal to its table and its links,
 * any other record to its table alone. */
static uint32_t table_bits(const char *const *tables)
{
	uint32_t mask = 0;
	for (; *tables; tables++) {
		int si = mirror_table_index(*tables);
		assert_true(si >= 0);
		mask |= (uint32_t)1 << si;
	}
	return mask;
}

static void test_tables_under(void **state)
{
	(void)state;
	static const char *const meeting[] = {"meetings", "meeting_attendees", "todos", "measurables",
					      "meeting_measurables", "scores", "issues", "headlines", NULL};
	static const char *const todos[] = {"todos", NULL};
	static const char *const goals[] = {"goals", "goal_meetings", NULL};
	static const char *const measurables[] = {"measurables", "meeting_measurables", NULL};
	static const char *const goal_links[] = {"goal_meetings", NULL};
	static const char *const measurable_links[] = {"meeting_measurables", NULL};
	assert_int_equal(bloom_tables_under("users"), ((uint32_t)1 << MIRROR_TABLE_COUNT) - 1);
	assert_int_equal(bloom_tables_under("meetings"), table_bits(meeting));
	assert_int_equal(bloom_tables_under("todos"), table_bits(todos));
	assert_int_equal(bloom_tables_under("goals"), table_bits(goals));
	assert_int_equal(bloom_tables_under("measurables"), table_bits(measurables));
	assert_int_equal(bloom_tables_under("no_such_table"), 0);
	/* the link rows a record writes beside its own */
	assert_int_equal(bloom_tables_linked("goals"), table_bits(goal_links));
	assert_int_equal(bloom_tables_linked("measurables"), table_bits(measurable_links));
	assert_int_equal(bloom_tables_linked("users"), 0);
	assert_int_equal(bloom_tables_linked("meetings"), 0);
	assert_int_equal(bloom_tables_linked("todos"), 0);
	assert_int_equal(bloom_tables_linked("no_such_table"), 0);
}

/* A row one target wrote stands for the same row of another target only
 * when the other would change nothing: a user's todo list's for its
 * meeting's list's (which fills the owner), not the reverse; a meeting's
 * headline list's (which leaves raw and is_archived alone) for no other. */
static void test_target_covers(void **state)
{
	(void)state;
	for (int t = 0; t < MIRROR_T_COUNT; t++)
		assert_true(mirror_target_covers((mirror_target_id)t, (mirror_target_id)t));
	assert_true(mirror_target_covers(MIRROR_T_USER_TODOS, MIRROR_T_TODOS));
	assert_false(mirror_target_covers(MIRROR_T_TODOS, MIRROR_T_USER_TODOS));
	assert_true(mirror_target_covers(MIRROR_T_USER_HEADLINES, MIRROR_T_HEADLINES));
	assert_false(mirror_target_covers(MIRROR_T_HEADLINES, MIRROR_T_USER_HEADLINES));
	assert_true(mirror_target_covers(MIRROR_T_ISSUES, MIRROR_T_USER_ISSUES));
	assert_false(mirror_target_covers(MIRROR_T_USER_ISSUES, MIRROR_T_ISSUES));
	assert_false(mirror_target_covers(MIRROR_T_MEETINGS_LIST, MIRROR_T_MEETINGS_DETAIL));
	assert_false(mirror_target_covers(MIRROR_T_MEETINGS_DETAIL, MIRROR_T_MEETINGS_LIST));
	assert_false(mirror_target_covers(MIRROR_T_TODOS, MIRROR_T_ISSUES));
}

static void test_reject_keys(void **state)
{
	bloom_result r;

	(void)state;
	/* todos without Complete: rejected for that, keyed by their Id */
	parse_ok(BLOOM_UNIT_MEETING_TODOS, 456,
	         "[{\"Id\":5.0,\"Name\":\"a\"},{\"Id\":9007199254740993.0,\"Name\":\"b\"},{\"Id\":12e1,\"Name\":\"c\"},"
	         "{\"Id\":5.0000000000000001,\"Name\":\"d\"},{\"Id\":2.5,\"Name\":\"e\"},{\"Name\":\"f\"},"
	         "{\"Id\":9223372036854775807.0,\"Name\":\"g\"},{\"Id\":9223372036854775808.0,\"Name\":\"h\"}]",
	         &r);
	assert_int_equal(r.nrows[MIRROR_T_TODOS], 0);
	assert_int_equal(r.nrejects, 8);
	assert_string_equal(r.rejects[0].id, "5");
	assert_string_equal(r.rejects[1].id, "9007199254740993");
	assert_true(r.rejects[1].has_key);
	assert_int_equal(r.rejects[1].key[0], 9007199254740993);
	assert_string_equal(r.rejects[2].id, "120");
	assert_string_equal(r.rejects[6].id, "9223372036854775807");
	for (size_t i = 0; i < r.nrejects; i++) {
		bool keyed = i <= 2 || i == 6;
		assert_int_equal(r.rejects[i].has_key, keyed);
		if (keyed)
			assert_string_equal(r.rejects[i].reason, "Complete: missing");
		else
			assert_null(r.rejects[i].id);
	}
	assert_string_equal(r.rejects[3].reason, "Id: not an integer: 5.0000000000000001");
	assert_string_equal(r.rejects[4].reason, "Id: not an integer: 2.5");
	assert_string_equal(r.rejects[5].reason, "Id: missing");
	assert_string_equal(r.rejects[7].reason, "Id: not an integer: 9223372036854775808.0");
	bloom_result_free(&r);

	/* rows get the same ids, and so do the units under a user */
	parse_ok(BLOOM_UNIT_ATTENDEES, 7, "[{\"Id\":9007199254740993.0},{\"Id\":5.0000000000000001}]", &r);
	assert_int_equal(r.nrows[MIRROR_T_ATTENDEES], 1);
	assert_int_equal(strncmp(copy_text(&r, MIRROR_T_ATTENDEES), "7\t9007199254740993\t", 19), 0);
	assert_int_equal(r.nrejects, 1);
	assert_string_equal(r.rejects[0].id, "7/?");
	assert_false(r.rejects[0].has_key);
	bloom_result_free(&r);
	parse_ok(BLOOM_UNIT_USERS, 0, "[{\"Id\":9007199254740993.0,\"ResultType\":\"User\"}]", &r);
	assert_int_equal(r.nrejects, 1);
	assert_string_equal(r.rejects[0].id, "9007199254740993");
	assert_true(r.nchildren > 0);
	for (size_t i = 0; i < r.nchildren; i++)
		assert_int_equal(r.children[i].ref, 9007199254740993);
	bloom_result_free(&r);

	/* a meeting detail without Id is the meeting asked for, as its row is */
	parse_ok(BLOOM_UNIT_MEETING, 57, "{\"CreateTime\":\"yesterday\"}", &r);
	assert_int_equal(r.nrejects, 1);
	assert_string_equal(r.rejects[0].id, "57");
	assert_true(r.rejects[0].has_key);
	assert_int_equal(r.rejects[0].key[0], 57);
	bloom_result_free(&r);
	/* with an Id that is no integer it has no key */
	parse_ok(BLOOM_UNIT_MEETING, 57, "{\"Id\":57.5}", &r);
	assert_int_equal(r.nrejects, 1);
	assert_null(r.rejects[0].id);
	assert_false(r.rejects[0].has_key);
	bloom_result_free(&r);

	/* the loader reads as many key columns as the reject's target has:
	 * two (the unit's meeting, then the Id) for meeting_attendees, the
	 * only such target a unit maps to, one for the others */
	for (int kind = BLOOM_UNIT_USERS; kind < BLOOM_UNIT_KIND_END; kind++) {
		bool attendee = kind == BLOOM_UNIT_ATTENDEES;
		const char *body = kind == BLOOM_UNIT_MEETING ? "{\"Id\":\"x\"}"
		                   : kind == BLOOM_UNIT_MEETING_SCORES || kind == BLOOM_UNIT_USER_SCORES
		                       ? "{\"Scores\":[1]}"
		                       : "[1]";
		parse_ok((bloom_unit_kind)kind, 7, body, &r);
		assert_int_equal(r.nrejects, 1);
		assert_int_equal(mirror_target_get(r.rejects[0].target)->nkeys, attendee ? 2 : 1);
		assert_false(r.rejects[0].has_key);
		if (attendee)
			assert_string_equal(r.rejects[0].id, "7/?");
		else
			assert_null(r.rejects[0].id);
		bloom_result_free(&r);
	}
}

static void test_non_object_elements(void **state)
{
	bloom_result r;

	(void)state;
	parse_ok(BLOOM_UNIT_ATTENDEES, 7, "[1,{\"Id\":2},\"x\\u0000y\",null]", &r);
	expect_copy(&r, MIRROR_T_ATTENDEES, "7\t2\t{\"Id\":2}\n");
	assert_int_equal(r.nrejects, 3);
	assert_string_equal(r.rejects[0].reason, "element is not an object");
	assert_string_equal(r.rejects[0].raw, "1");
	assert_string_equal(r.rejects[0].id, "7/?"); /* no Id, but the meeting's list */
	assert_string_equal(r.rejects[1].raw, "\"xy\"");
	assert_string_equal(r.rejects[2].raw, "null");
	assert_int_equal(r.nul_removed, 1);
	bloom_result_free(&r);
}

/* ---------------------------------------------------------------- shapes */

static void test_bad_shapes(void **state)
{
	(void)state;
	parse_fails(BLOOM_UNIT_USERS, "[{\"Id\":1,\"Name\":\"Ann\"");
	parse_fails(BLOOM_UNIT_USERS, "");
	parse_fails(BLOOM_UNIT_USERS, "{\"Id\":1}");
	parse_fails(BLOOM_UNIT_USER_MEETINGS, "\"text\"");
	parse_fails(BLOOM_UNIT_ATTENDEES, "null");
	parse_fails(BLOOM_UNIT_MEETING_TODOS, "{}");
	parse_fails(BLOOM_UNIT_MEASURABLES, "{\"Scores\":[]}");
	parse_fails(BLOOM_UNIT_USER_TODOS, "[1,2,]");
	parse_fails(BLOOM_UNIT_MEETING, "[{\"Id\":1}]");
	parse_fails(BLOOM_UNIT_MEETING_SCORES, "[]");
	parse_fails(BLOOM_UNIT_USER_SCORES, "{\"Scores\":{\"Id\":1}}");
	parse_fails(BLOOM_UNIT_USER_SCORES, "{\"Scores\":\"none\"}");
	parse_fails(BLOOM_UNIT_USERS, "[1] [2]");
	parse_fails(BLOOM_UNIT_USERS, "[\"\xff\xfe\"");
	parse_fails(BLOOM_UNIT_KIND_END, "[]");
}

/* An element no JSON reader accepts, in a list that is otherwise sound, is
 * rejected whole with the reader's reason and its text (fit for a text
 * column): the rest of the list is kept, and the run is not failed by one
 * odd record for ever. */
static void test_unreadable_elements_are_rejected(void **state)
{
	bloom_result r;

	(void)state;
	parse_ok(BLOOM_UNIT_USERS, 0,
	         "[\"\xff\xfe\"," USER_ANN ","
	         "{\"Id\":3,\"Name\":\"cut \\ud83d\",\"ResultType\":\"User\"}]",
	         &r);
	expect_copy(&r, MIRROR_T_USERS, "1\tAnn\tann@x.com\tCEO\t/i/a.png\t42\tf\t" USER_ANN "\n");
	assert_int_equal(r.nrejects, 2);
	for (size_t i = 0; i < r.nrejects; i++) {
		assert_string_equal(r.rejects[i].stream, "users");
		assert_null(r.rejects[i].id);
		assert_false(r.rejects[i].has_key);
		if (strncmp(r.rejects[i].reason, "unreadable JSON: ", 17) != 0)
			fail_msg("reject %zu: reason \"%s\"", i, r.rejects[i].reason);
	}
	assert_string_equal(r.rejects[0].raw, "\"\xef\xbf\xbd\xef\xbf\xbd\""); /* two U+FFFD */
	assert_string_equal(r.rejects[1].raw, "{\"Id\":3,\"Name\":\"cut \\ud83d\",\"ResultType\":\"User\"}");
	bloom_result_free(&r);
}

static void test_error_message(void **state)
{
	bloom_unit u = {BLOOM_UNIT_MEETING, 1};
	bloom_result r;
	char err[256];

	(void)state;
	assert_int_equal(bloom_parse(&u, "[]", 2, &r, err, sizeof(err)), -1);
	assert_string_equal(err, "expected an object at the top level, got an array");
	bloom_result_free(&r);
	assert_int_equal(bloom_parse(&u, "{\"Id\":", 6, &r, err, sizeof(err)), -1);
	assert_int_equal(strncmp(err, "invalid json", 12), 0);
	bloom_result_free(&r);
	/* the body need not be NUL-terminated: only len bytes are read */
	assert_int_equal(bloom_parse(&u, "{\"Id\":3}garbage", 8, &r, err, sizeof(err)), 0);
	assert_int_equal(r.nrows[MIRROR_T_MEETINGS_DETAIL], 1);
	bloom_result_free(&r);
}

static void test_result_free_zeroed(void **state)
{
	bloom_result r;

	(void)state;
	memset(&r, 0, sizeof(r));
	bloom_result_free(&r);
	bloom_result_free(&r);
	bloom_result_free(NULL);
	assert_int_equal(r.nchildren, 0);
	assert_null(r.children);
	assert_int_equal(bloom_result_size(&r), sizeof(r));

	parse_ok(BLOOM_UNIT_USERS, 0, "[" USER_ANN ",{\"Id\":\"x\",\"Name\":\"n\",\"ResultType\":\"User\"}]", &r);
	assert_true(bloom_result_size(&r) > sizeof(r));
	bloom_result_free(&r);
	assert_null(r.copy[MIRROR_T_USERS].data);
	assert_null(r.rejects);
	assert_int_equal(r.nrows[MIRROR_T_USERS], 0);
	bloom_result_free(&r);
}

/* Many rows: the buffers grow geometrically and keep every row. */
/* ---------------------------------------------------- goals, issues, headlines */

#define GOAL_1                                                                                                \
	"{\"Id\":11,\"Name\":\"Win\\u0000 EU\",\"DueDate\":\"2024-12-31\",\"Complete\":false,\"Completion\":\"OnTrack\"," \
	"\"CreateTime\":\"2024-06-01T10:00:00.123\",\"Archived\":false,\"Owner\":{\"Id\":3,\"Name\":\"C\"},"                  \
	"\"Origins\":[{\"Id\":456,\"Name\":\"Weekly\"},{\"Id\":457,\"Name\":\"Ops\"}]}"
#define GOAL_1_RAW                                                                                           \
	"{\"Id\":11,\"Name\":\"Win EU\",\"DueDate\":\"2024-12-31\",\"Complete\":false,\"Completion\":\"OnTrack\"," \
	"\"CreateTime\":\"2024-06-01T10:00:00.123\",\"Archived\":false,\"Owner\":{\"Id\":3,\"Name\":\"C\"},"        \
	"\"Origins\":[{\"Id\":456,\"Name\":\"Weekly\"},{\"Id\":457,\"Name\":\"Ops\"}]}"
#define GOAL_2 "{\"Id\":12,\"Name\":\"Q\",\"DueDate\":\"\",\"Complete\":true,\"Completion\":\"\",\"Owner\":null,\"Origins\":[]}"

static void test_goals(void **state)
{
	bloom_result r;

	(void)state;
	parse_ok(BLOOM_UNIT_GOALS, 3, "[" GOAL_1 "," GOAL_2 "]", &r);
	expect_copy(&r, MIRROR_T_GOALS,
	            "11\tWin EU\t3\t2024-12-31 00:00:00+00\t2024-06-01 10:00:00.123+00\tf\tOnTrack\tf\t" GOAL_1_RAW "\n"
	            "12\tQ\t3\t\\N\t\\N\tt\t\\N\tf\t" GOAL_2 "\n");
	expect_copy(&r, MIRROR_T_GOAL_MEETINGS,
	            "11\t456\t{\"Id\":456,\"Name\":\"Weekly\"}\n"
	            "11\t457\t{\"Id\":457,\"Name\":\"Ops\"}\n");
	assert_int_equal(r.nrows[MIRROR_T_GOALS], 2);
	assert_int_equal(r.nrows[MIRROR_T_GOAL_MEETINGS], 2);
	assert_int_equal(r.nul_removed, 1);
	assert_int_equal(r.nchildren, 0);
	bloom_result_free(&r);

	/* archivedrocks: archived whatever Archived says, Origins absent is fine */
	parse_ok(BLOOM_UNIT_ARCHIVED_GOALS, 3, "[{\"Id\":13,\"Name\":\"Old\",\"Complete\":false,\"Archived\":false}]", &r);
	expect_copy(&r, MIRROR_T_GOALS,
	            "13\tOld\t3\t\\N\t\\N\tf\t\\N\tt\t{\"Id\":13,\"Name\":\"Old\",\"Complete\":false,\"Archived\":false}\n");
	assert_int_equal(r.nrows[MIRROR_T_GOAL_MEETINGS], 0);
	bloom_result_free(&r);
}

static void test_goal_rejects(void **state)
{
	bloom_result r;

	(void)state;
	/* a bad origin rejects the goal and its links, the next goal stays */
	parse_ok(BLOOM_UNIT_GOALS, 3,
	         "[{\"Id\":14,\"Name\":\"A\",\"Complete\":false,\"Origins\":[{\"Id\":1},{\"Id\":\"x\"}]},"
	         "{\"Id\":15,\"Name\":\"B\",\"Complete\":false,\"DueDate\":\"soon\"}," GOAL_2 "]",
	         &r);
	assert_int_equal(r.nrows[MIRROR_T_GOALS], 1);
	assert_int_equal(r.nrows[MIRROR_T_GOAL_MEETINGS], 0);
	expect_copy(&r, MIRROR_T_GOAL_MEETINGS, "");
	expect_copy(&r, MIRROR_T_GOALS, "12\tQ\t3\t\\N\t\\N\tt\t\\N\tf\t" GOAL_2 "\n");
	assert_int_equal(r.nrejects, 2);
	assert_string_equal(r.rejects[0].stream, "goals");
	assert_string_equal(r.rejects[0].id, "14");
	assert_string_equal(r.rejects[0].reason, "Origins[].Id: not an integer: \"x\"");
	assert_string_equal(r.rejects[1].reason, "DueDate: not a date: \"soon\"");
	bloom_result_free(&r);
}

#define ISSUE_M                                                                                             \
	"{\"Id\":21,\"Name\":\"Churn\",\"DetailsUrl\":\"\",\"Complete\":true,\"CreateTime\":\"2024-06-01T10:00:00Z\","  \
	"\"CloseTime\":\"2024-06-03T10:00:00\",\"CompleteTime\":\"2024-06-02T10:00:00Z\",\"Archived\":false,\"Owner\":null," \
	"\"Origin\":\"Weekly\"}"
#define ISSUE_U                                                                                              \
	"{\"Id\":22,\"Name\":\"Cost\",\"DetailsUrl\":\"u\",\"Complete\":false,\"CreateTime\":\"\",\"CloseTime\":null,"   \
	"\"Owner\":{\"Id\":3,\"Name\":\"C\"},\"Origin\":\"\",\"OriginId\":457}"

static void test_issues(void **state)
{
	bloom_result r;

	(void)state;
	/* a meeting's list: the meeting is the one asked, even with an OriginId */
	parse_ok(BLOOM_UNIT_MEETING_ISSUES, 456, "[" ISSUE_M "," ISSUE_U "]", &r);
	expect_copy(&r, MIRROR_T_ISSUES,
	            "21\tChurn\t\\N\t\\N\t456\tWeekly\t2024-06-01 10:00:00+00\t2024-06-03 10:00:00+00\t"
	            "2024-06-02 10:00:00+00\tt\tf\t" ISSUE_M "\n"
	            "22\tCost\tu\t3\t456\t\\N\t\\N\t\\N\t\\N\tf\tf\t" ISSUE_U "\n");
	assert_int_equal(r.nrows[MIRROR_T_ISSUES], 2);
	assert_int_equal(r.nrows[MIRROR_T_USER_ISSUES], 0);
	bloom_result_free(&r);

	/* a user's list: OriginId, into the target that keeps the meeting list's raw */
	parse_ok(BLOOM_UNIT_USER_ISSUES, 3, "[" ISSUE_U "," ISSUE_M "]", &r);
	expect_copy(&r, MIRROR_T_USER_ISSUES,
	            "22\tCost\tu\t3\t457\t\\N\t\\N\t\\N\t\\N\tf\tf\t" ISSUE_U "\n"
	            "21\tChurn\t\\N\t\\N\t\\N\tWeekly\t2024-06-01 10:00:00+00\t2024-06-03 10:00:00+00\t"
	            "2024-06-02 10:00:00+00\tt\tf\t" ISSUE_M "\n");
	assert_int_equal(r.nrows[MIRROR_T_ISSUES], 0);
	bloom_result_free(&r);

	/* Complete is required; a non-boolean Archived is rejected */
	parse_ok(BLOOM_UNIT_USER_ISSUES, 3,
	         "[{\"Id\":23,\"Name\":\"x\"},{\"Id\":24,\"Name\":\"y\",\"Complete\":false,\"Archived\":1}]", &r);
	assert_int_equal(r.nrows[MIRROR_T_USER_ISSUES], 0);
	assert_int_equal(r.nrejects, 2);
	assert_string_equal(r.rejects[0].stream, "issues");
	assert_string_equal(r.rejects[0].reason, "Complete: missing");
	assert_string_equal(r.rejects[1].reason, "Archived: not a boolean: 1");
	bloom_result_free(&r);
}

#define HEADLINE_1                                                                                         \
	"{\"Id\":31,\"Name\":\"Won\",\"DetailsUrl\":null,\"Owner\":{\"Id\":3,\"Name\":\"C\"},"                   \
	"\"CreateTime\":\"2024-06-01T10:00:00+02:00\",\"CloseTime\":\"\",\"Archived\":true,\"Origin\":\"Weekly\"," \
	"\"OriginId\":456}"

static void test_headlines(void **state)
{
	bloom_result r;
	const char *row = "31\tWon\t\\N\t3\t456\tWeekly\t2024-06-01 10:00:00+02:00\t\\N\tt\t" HEADLINE_1 "\n";

	(void)state;
	parse_ok(BLOOM_UNIT_MEETING_HEADLINES, 456, "[" HEADLINE_1 "]", &r);
	expect_copy(&r, MIRROR_T_HEADLINES, row);
	bloom_result_free(&r);
	/* a user's list has a target of its own, which owns raw and
	 * is_archived (mirror.c) */
	parse_ok(BLOOM_UNIT_USER_HEADLINES, 3, "[" HEADLINE_1 "]", &r);
	assert_int_equal(r.nrows[MIRROR_T_HEADLINES], 0);
	expect_copy(&r, MIRROR_T_USER_HEADLINES, row);
	bloom_result_free(&r);

	/* no Archived key: false; null Name: rejected */
	parse_ok(BLOOM_UNIT_USER_HEADLINES, 3, "[{\"Id\":32,\"Name\":\"n\",\"OriginId\":457},{\"Id\":33,\"Name\":null}]", &r);
	expect_copy(&r, MIRROR_T_USER_HEADLINES,
	            "32\tn\t\\N\t\\N\t457\t\\N\t\\N\t\\N\tf\t{\"Id\":32,\"Name\":\"n\",\"OriginId\":457}\n");
	assert_int_equal(r.nrejects, 1);
	assert_string_equal(r.rejects[0].reason, "Name: null");
	bloom_result_free(&r);

	parse_fails(BLOOM_UNIT_MEETING_HEADLINES, "{\"Id\":1}");
	parse_fails(BLOOM_UNIT_GOALS, "[");
}

static void test_many_rows(void **state)
{
	enum { N = 20000 };
	size_t cap = (size_t)N * 24 + 8, len = 0;
	char *body = malloc(cap);
	bloom_result r;
	const char *p;
	size_t lines = 0;

	(void)state;
	assert_non_null(body);
	body[len++] = '[';
	for (int i = 0; i < N; i++)
		len += (size_t)snprintf(body + len, cap - len, "%s{\"Id\":%d}", i ? "," : "", i + 1);
	body[len++] = ']';
	body[len] = '\0';
	parse_ok(BLOOM_UNIT_ATTENDEES, 3, body, &r);
	assert_int_equal(r.nrows[MIRROR_T_ATTENDEES], N);
	for (p = copy_text(&r, MIRROR_T_ATTENDEES); (p = strchr(p, '\n')) != NULL; p++)
		lines++;
	assert_int_equal(lines, N);
	assert_non_null(strstr(copy_text(&r, MIRROR_T_ATTENDEES), "3\t20000\t{\"Id\":20000}\n"));
	bloom_result_free(&r);
	free(body);
}

/* An element jansson reads with many duplicate keys: K distinct keys, then
 * the same K keys again, "Target" among them both times. The last value of
 * a duplicate key wins (jansson's rule), its digits as written; finding
 * each number's text stays linear in the body (it was quadratic: this took
 * minutes). */
static void test_many_duplicate_keys(void **state)
{
	enum { K = 200000 };
	size_t cap = (size_t)K * 2 * 16 + 256, len = 0;
	char *body = malloc(cap);

	(void)state;
	assert_non_null(body);
	len += (size_t)snprintf(body + len, cap - len, "[{\"Id\":1,\"Name\":\"m\",\"Target\":1.25");
	for (int round = 0; round < 2; round++) {
		for (int i = 0; i < K; i++)
			len += (size_t)snprintf(body + len, cap - len, ",\"k%d\":%d.5", i, round);
		if (round == 0)
			len += (size_t)snprintf(body + len, cap - len, ",\"Id\":1,\"Name\":\"m\"");
	}
	len += (size_t)snprintf(body + len, cap - len, ",\"Target\":0.33333333333333333333}," MEAS_4 "]");
	assert_true(len < cap);
	for (int reference = 0; reference < 2; reference++) {
		bloom_result r;
		const char *text;
		parse_ok_by(reference, BLOOM_UNIT_MEASURABLES, 456, body, &r);
		assert_int_equal(r.nrejects, 0);
		assert_int_equal(r.nrows[MIRROR_T_MEASURABLES], 2);
		text = copy_text(&r, MIRROR_T_MEASURABLES);
		assert_true(strncmp(text, "1\tm\t0.33333333333333333333\t\\N\t\\N\t\\N\t{", 37) == 0);
		/* the raw column: first place, last value */
		assert_non_null(strstr(text, "{\"Id\":1,\"Name\":\"m\",\"Target\":0.33333333333333333333,\"k0\":1.5,"));
		assert_non_null(strstr(text, ",\"k199999\":1.5}\n"));
		assert_non_null(strstr(text, "4\tOpen\t\\N\t\\N\t\\N\t\\N\t" MEAS_4 "\n"));
		bloom_result_free(&r);
	}
	free(body);
}

/* ---------------------------------------------------------------- pages */

#define ATT(id) "{\"Id\":" #id ",\"Name\":\"a ]}[{ \\\" \\\\\",\"Tags\":[[1],{\"x\":\"]\"}]}"

/* Array bodies are read one element at a time: brackets and escaped quotes
 * inside strings, nested arrays, odd whitespace; and pages appended to one
 * result, a bad page leaving it as it was. */
static void test_pages_and_element_scanner(void **state)
{
	bloom_unit u = {BLOOM_UNIT_ATTENDEES, 9};
	bloom_result r;
	size_t n = 0;
	char err[256];
	const char *page1 = " [ " ATT(1) " ,\n\t" ATT(2) " ] \n";
	const char *page2 = "[" ATT(3) "]";
	const char *cut = "[" ATT(4) ",{\"Id\":5,\"Name\":\"x";
	const char *trailing = "[" ATT(6) "] x";
	const char *empty_slot = "[" ATT(7) ",]";
	const char *nul_key = "{\"a\\u0000\":1}"; /* not an array, and a NUL stripped from a key */

	(void)state;
	parse_ok(BLOOM_UNIT_ATTENDEES, 9, page1, &r);
	assert_int_equal(r.nrows[MIRROR_T_ATTENDEES], 2);
	assert_int_equal(bloom_parse_page(&u, page2, strlen(page2), &r, &n, err, sizeof(err)), 0);
	assert_int_equal(n, 1);
	assert_int_equal(r.nrows[MIRROR_T_ATTENDEES], 3);
	size_t len = r.copy[MIRROR_T_ATTENDEES].len;
	const char *bad[] = {cut, trailing, empty_slot, nul_key};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(bloom_parse_page(&u, bad[i], strlen(bad[i]), &r, &n, err, sizeof(err)), -1);
		assert_true(err[0] != '\0');
		/* nothing of the bad page stays, not even a count */
		assert_int_equal(r.nrows[MIRROR_T_ATTENDEES], 3);
		assert_int_equal(r.copy[MIRROR_T_ATTENDEES].len, len);
		assert_int_equal(r.nul_removed, 0);
	}
	assert_non_null(strstr(r.copy[MIRROR_T_ATTENDEES].data, "9\t3\t"));
	assert_true(bloom_unit_pages(BLOOM_UNIT_USERS));
	assert_false(bloom_unit_pages(BLOOM_UNIT_MEETING));
	bloom_result_free(&r);
}

/* Each target's table index names its table (the loader and the yields
 * use the index, the SQL the name). */
static void test_target_table_index(void **state)
{
	(void)state;
	for (int ti = 0; ti < MIRROR_T_COUNT; ti++) {
		const mirror_target *t = mirror_target_get((mirror_target_id)ti);
		assert_true(t->table_index >= 0 && t->table_index < MIRROR_TABLE_COUNT);
		assert_string_equal(mirror_tables[t->table_index], t->table);
		assert_int_equal(mirror_table_index(t->table), t->table_index);
	}
}

/* An object body that no reader takes whole, though whole by its
 * structure, keeps what is readable: a bad score (a lone surrogate, as .NET
 * writes for a string cut inside an emoji) is rejected alone, a bad member
 * the mapping does not read changes nothing, a meeting detail is rejected
 * under its meeting's id; a body cut short stays a bad body, fetched again. */
static void test_unreadable_object_bodies(void **state)
{
	bloom_result r;

	(void)state;
	for (int reference = 0; reference <= 1; reference++) {
		parse_ok_by(reference, BLOOM_UNIT_MEETING_SCORES, 5,
			    "{\"Scores\":[{\"Id\":77,\"MeasurableId\":5,\"Measured\":1.5,\"ForWeek\":2425},"
			    "{\"Id\":78,\"MeasurableId\":5,\"MeasurableName\":\"Rev\\ud83d\",\"ForWeek\":2425}],"
			    "\"Weeks\":[]}",
			    &r);
		assert_int_equal(r.nrows[MIRROR_T_SCORES], 1);
		assert_int_equal(strncmp(copy_text(&r, MIRROR_T_SCORES), "77\t", 3), 0);
		assert_int_equal(r.nrejects, 1);
		assert_string_equal(r.rejects[0].stream, "scores");
		assert_non_null(strstr(r.rejects[0].reason, "unreadable JSON"));
		bloom_result_free(&r);

		parse_ok_by(reference, BLOOM_UNIT_USER_SCORES, 5,
			    "{\"Measurables\":[{\"Name\":\"\\udc00\"}], \"Scores\" : [{\"Id\":77,\"ForWeek\":1}] }", &r);
		assert_int_equal(r.nrows[MIRROR_T_SCORES], 1);
		assert_int_equal(r.nrejects, 0);
		bloom_result_free(&r);

		parse_ok_by(reference, BLOOM_UNIT_MEETING, 12, "{\"Id\":12,\"Basics\":{\"Name\":\"\\ud800\"}}", &r);
		assert_int_equal(r.nrows[MIRROR_T_MEETINGS_DETAIL], 0);
		assert_int_equal(r.nrejects, 1);
		assert_string_equal(r.rejects[0].stream, "meetings");
		assert_string_equal(r.rejects[0].id, "12");
		assert_true(r.rejects[0].has_key);
		assert_int_equal(r.rejects[0].key[0], 12);
		bloom_result_free(&r);
	}
	parse_fails(BLOOM_UNIT_MEETING_SCORES, "{\"Scores\":[{\"Id\":77,\"Name\":\"\\ud83d\"}");
	parse_fails(BLOOM_UNIT_MEETING_SCORES, "{\"Scores\":[{\"Id\":77,\"Name\":\"\\ud83d\"}]");
	parse_fails(BLOOM_UNIT_MEETING, "{\"Id\":12,\"Basics\":{\"Name\":\"\\ud800\"}");
	parse_fails(BLOOM_UNIT_MEETING_SCORES, "{\"Scores\":{\"Id\":\"\\ud800\"}}");
	/* a body whose Scores cannot be told for sure stays bad: taken as none,
	 * a complete run would mark every score of it deleted */
	parse_fails(BLOOM_UNIT_MEETING_SCORES,
		    "{\"Other\": [, \"Scores\": [{\"Id\":77,\"ForWeek\":1}], \"z\": }}"); /* [ closed by } */
	parse_fails(BLOOM_UNIT_MEETING_SCORES,
		    "{\"Sc\\u006fres\": [{\"Id\":77,\"ForWeek\":1}], \"Name\": \"Rev \\ud83d\"}"); /* escaped name */
	parse_fails(BLOOM_UNIT_MEETING_SCORES, "{\"Weeks\": [\"\\ud83d\"]}"); /* no Scores at all */
}

/* Whether s is valid UTF-8 (no sequence cut short). */
static bool valid_utf8(const char *s)
{
	for (const unsigned char *p = (const unsigned char *)s; *p;) {
		int n = *p < 0x80 ? 0 : (*p & 0xE0) == 0xC0 ? 1 : (*p & 0xF0) == 0xE0 ? 2 : (*p & 0xF8) == 0xF0 ? 3 : -1;
		if (n < 0)
			return false;
		for (p++; n > 0; n--, p++)
			if ((*p & 0xC0) != 0x80)
				return false;
	}
	return true;
}

/* A reason cut to its room is cut between characters: PostgreSQL would
 * refuse half of one, and the batch's rejected records with it. */
static void test_long_reason_cut_between_characters(void **state)
{
	char body[1024], *p = body;
	bloom_result r;

	(void)state;
	p += sprintf(p, "[{\"Id\":10,\"Name\":\"Call\",\"Complete\":false,\"");
	for (int i = 0; i < 130; i++)
		p += sprintf(p, "\xc3\xa9"); /* é */
	sprintf(p, "\":1e131072},{\"Id\":11,\"Name\":\"ok\",\"Complete\":true}]");
	parse_ok(BLOOM_UNIT_MEETING_TODOS, 7, body, &r);
	assert_int_equal(r.nrows[MIRROR_T_TODOS], 1);
	assert_int_equal(r.nrejects, 1);
	assert_true(valid_utf8(r.rejects[0].reason));
	bloom_result_free(&r);
}

/* The API's empty strings for absent values are NULL in number columns
 * too, as in dates and texts; an empty Id is missing. */
static void test_empty_string_numbers_are_null(void **state)
{
	bloom_result r;
	char field[64];

	(void)state;
	parse_ok(BLOOM_UNIT_USERS, 0, "[{\"Id\":5,\"Name\":\"a\",\"ResultType\":\"User\",\"OrganizationId\":\"\"}]", &r);
	assert_int_equal(r.nrejects, 0);
	field_of(copy_text(&r, MIRROR_T_USERS), 5, field, sizeof(field));
	assert_string_equal(field, "\\N");
	bloom_result_free(&r);

	parse_ok(BLOOM_UNIT_MEETING_SCORES, 5, "{\"Scores\":[{\"Id\":1,\"Measured\":\"\",\"ForWeek\":\"\"}]}", &r);
	assert_int_equal(r.nrejects, 0);
	assert_int_equal(r.nrows[MIRROR_T_SCORES], 1);
	field_of(copy_text(&r, MIRROR_T_SCORES), 5, field, sizeof(field));
	assert_string_equal(field, "\\N");
	field_of(copy_text(&r, MIRROR_T_SCORES), 7, field, sizeof(field));
	assert_string_equal(field, "\\N");
	bloom_result_free(&r);

	parse_ok(BLOOM_UNIT_MEETING_TODOS, 7, "[{\"Id\":\"\",\"Name\":\"x\",\"Complete\":false}]", &r);
	assert_int_equal(r.nrows[MIRROR_T_TODOS], 0);
	assert_int_equal(r.nrejects, 1);
	assert_string_equal(r.rejects[0].reason, "Id: empty");
	bloom_result_free(&r);
}

/* .NET's "never" (DateTime.MaxValue) stays in year 9999. */
static void test_max_date_stays_in_its_year(void **state)
{
	bloom_result r;
	char field[64];

	(void)state;
	parse_ok(BLOOM_UNIT_MEETING_TODOS, 7,
		 "[{\"Id\":1,\"Name\":\"x\",\"Complete\":false,\"DueDate\":\"9999-12-31T23:59:59.9999999\"},"
		 "{\"Id\":2,\"Name\":\"y\",\"Complete\":false,\"DueDate\":\"9999-12-30T23:59:59.9999999\"}]",
		 &r);
	field_of(copy_text(&r, MIRROR_T_TODOS), 3, field, sizeof(field));
	assert_string_equal(field, "9999-12-31 23:59:59.999999+00");
	const char *second = strchr(copy_text(&r, MIRROR_T_TODOS), '\n') + 1;
	field_of(second, 3, field, sizeof(field));
	assert_string_equal(field, "9999-12-30 23:59:59.9999999+00"); /* PostgreSQL rounds it to the next day */
	bloom_result_free(&r);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_unit_paths),
		cmocka_unit_test(test_target_table_index),
		cmocka_unit_test(test_users),
		cmocka_unit_test(test_users_rejects),
		cmocka_unit_test(test_user_meetings),
		cmocka_unit_test(test_meeting_detail),
		cmocka_unit_test(test_attendees),
		cmocka_unit_test(test_meeting_todos),
		cmocka_unit_test(test_user_todos_owner_fallback),
		cmocka_unit_test(test_owner_without_id),
		cmocka_unit_test(test_todo_rejects),
		cmocka_unit_test(test_measurables),
		cmocka_unit_test(test_numeric_exact),
		cmocka_unit_test(test_long_numbers_in_raw),
		cmocka_unit_test(test_numbers_past_double_in_object_body),
		cmocka_unit_test(test_numbers_past_double_in_list_body),
		cmocka_unit_test(test_raw_keeps_number_text),
		cmocka_unit_test(test_numbers_past_columns_reject_the_record),
		cmocka_unit_test(test_numbers_past_jsonb),
		cmocka_unit_test(test_scores),
		cmocka_unit_test(test_score_rejects),
		cmocka_unit_test(test_nul_removed),
		cmocka_unit_test(test_copy_escaping),
		cmocka_unit_test(test_unicode_kept),
		cmocka_unit_test(test_long_string),
		cmocka_unit_test(test_dates),
		cmocka_unit_test(test_bad_date_rejected_others_kept),
		cmocka_unit_test(test_ids),
		cmocka_unit_test(test_reject_keys),
		cmocka_unit_test(test_target_covers),
		cmocka_unit_test(test_tables_under),
		cmocka_unit_test(test_non_object_elements),
		cmocka_unit_test(test_bad_shapes),
		cmocka_unit_test(test_unreadable_elements_are_rejected),
		cmocka_unit_test(test_error_message),
		cmocka_unit_test(test_result_free_zeroed),
		cmocka_unit_test(test_goals),
		cmocka_unit_test(test_goal_rejects),
		cmocka_unit_test(test_issues),
		cmocka_unit_test(test_headlines),
		cmocka_unit_test(test_many_rows),
		cmocka_unit_test(test_many_duplicate_keys),
		cmocka_unit_test(test_pages_and_element_scanner),
		cmocka_unit_test(test_unreadable_object_bodies),
		cmocka_unit_test(test_long_reason_cut_between_characters),
		cmocka_unit_test(test_empty_string_numbers_are_null),
		cmocka_unit_test(test_max_date_stays_in_its_year),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
