/* mirror.c — the mirror tables' columns (see mirror.h and docs of the schema in sql/). */
#include "mirror.h"

#include <string.h>

#define COLS(a) a, sizeof(a) / sizeof((a)[0])
#define ALL_BUT_KEYS(ncols, nkeys) ((((uint32_t)1 << (ncols)) - 1) & ~(((uint32_t)1 << (nkeys)) - 1))

static const mirror_column users_cols[] = {
	{"id", MIRROR_BIGINT, true},        {"name", MIRROR_TEXT, true},
	{"email", MIRROR_TEXT, false},      {"title", MIRROR_TEXT, false},
	{"image_url", MIRROR_TEXT, false},  {"organization_id", MIRROR_BIGINT, false},
	{"is_placeholder", MIRROR_BOOL, true}, {"raw", MIRROR_JSONB, true},
};

static const mirror_column meetings_list_cols[] = {
	{"id", MIRROR_BIGINT, true},          {"name", MIRROR_TEXT, false},
	{"meeting_type", MIRROR_TEXT, false}, {"meeting_key", MIRROR_TEXT, false},
	{"raw", MIRROR_JSONB, true},
};

static const mirror_column meetings_detail_cols[] = {
	{"id", MIRROR_BIGINT, true},
	{"name", MIRROR_TEXT, false},
	{"start_date_utc", MIRROR_TIMESTAMPTZ, false},
	{"created_at", MIRROR_TIMESTAMPTZ, false},
	{"organization_id", MIRROR_BIGINT, false},
	{"raw", MIRROR_JSONB, true},
};

static const mirror_column attendees_cols[] = {
	{"meeting_id", MIRROR_BIGINT, true},
	{"user_id", MIRROR_BIGINT, true},
	{"raw", MIRROR_JSONB, true},
};

static const mirror_column todos_cols[] = {
	{"id", MIRROR_BIGINT, true},
	{"name", MIRROR_TEXT, true},
	{"details_url", MIRROR_TEXT, false},
	{"due_date", MIRROR_TIMESTAMPTZ, false},
	{"created_at", MIRROR_TIMESTAMPTZ, false},
	{"completed_at", MIRROR_TIMESTAMPTZ, false},
	{"closed_at", MIRROR_TIMESTAMPTZ, false},
	{"is_complete", MIRROR_BOOL, true},
	{"meeting_id", MIRROR_BIGINT, false},
	{"meeting_name", MIRROR_TEXT, false},
	{"owner_id", MIRROR_BIGINT, false},
	{"raw", MIRROR_JSONB, true},
};

static const mirror_column measurables_cols[] = {
	{"id", MIRROR_BIGINT, true},       {"name", MIRROR_TEXT, false},
	{"target", MIRROR_NUMERIC, false}, {"unit", MIRROR_TEXT, false},
	{"direction", MIRROR_TEXT, false}, {"owner_id", MIRROR_BIGINT, false},
	{"raw", MIRROR_JSONB, true},
};

static const mirror_column meeting_measurables_cols[] = {
	{"meeting_id", MIRROR_BIGINT, true},
	{"measurable_id", MIRROR_BIGINT, true},
	{"raw", MIRROR_JSONB, true},
};

static const mirror_column scores_cols[] = {
	{"id", MIRROR_BIGINT, true},
	{"measurable_id", MIRROR_BIGINT, false},
	{"accountable_user_id", MIRROR_BIGINT, false},
	{"measurable_name", MIRROR_TEXT, false},
	{"target", MIRROR_NUMERIC, false},
	{"value", MIRROR_NUMERIC, false},
	{"week", MIRROR_TEXT, false},
	{"week_id", MIRROR_INT, false},
	{"entered_at", MIRROR_TIMESTAMPTZ, false},
	{"raw", MIRROR_JSONB, true},
};

static const mirror_column goals_cols[] = {
	{"id", MIRROR_BIGINT, true},
	{"name", MIRROR_TEXT, true},
	{"owner_id", MIRROR_BIGINT, false},
	{"due_date", MIRROR_TIMESTAMPTZ, false},
	{"created_at", MIRROR_TIMESTAMPTZ, false},
	{"is_complete", MIRROR_BOOL, true},
	{"completion", MIRROR_TEXT, false},
	{"is_archived", MIRROR_BOOL, true},
	{"raw", MIRROR_JSONB, true},
};

static const mirror_column goal_meetings_cols[] = {
	{"goal_id", MIRROR_BIGINT, true},
	{"meeting_id", MIRROR_BIGINT, true},
	{"raw", MIRROR_JSONB, true},
};

static const mirror_column issues_cols[] = {
	{"id", MIRROR_BIGINT, true},
	{"name", MIRROR_TEXT, true},
	{"details_url", MIRROR_TEXT, false},
	{"owner_id", MIRROR_BIGINT, false},
	{"meeting_id", MIRROR_BIGINT, false},
	{"meeting_name", MIRROR_TEXT, false},
	{"created_at", MIRROR_TIMESTAMPTZ, false},
	{"closed_at", MIRROR_TIMESTAMPTZ, false},
	{"completed_at", MIRROR_TIMESTAMPTZ, false},
	{"is_complete", MIRROR_BOOL, true},
	{"is_archived", MIRROR_BOOL, true},
	{"raw", MIRROR_JSONB, true},
};

static const mirror_column headlines_cols[] = {
	{"id", MIRROR_BIGINT, true},
	{"name", MIRROR_TEXT, true},
	{"details_url", MIRROR_TEXT, false},
	{"owner_id", MIRROR_BIGINT, false},
	{"meeting_id", MIRROR_BIGINT, false},
	{"meeting_name", MIRROR_TEXT, false},
	{"created_at", MIRROR_TIMESTAMPTZ, false},
	{"closed_at", MIRROR_TIMESTAMPTZ, false},
	{"is_archived", MIRROR_BOOL, true},
	{"raw", MIRROR_JSONB, true},
};

/* An issue's row from a user's list (which carries OriginId) updates every
 * column but raw: raw comes from the meeting's list (which has no OriginId),
 * so an issue seen in both keeps one raw whatever order they arrive in. */
#define USER_ISSUES_UPDATE ALL_BUT_KEYS(11, 1)

/* The list variant only fills in meeting_type and meeting_key on a row the
 * detail already wrote; name and raw come from the detail when it exists. */
#define MEETINGS_LIST_UPDATE (((uint32_t)1 << 2) | ((uint32_t)1 << 3))

static const mirror_target targets[MIRROR_T_COUNT] = {
	{MIRROR_T_USERS, "users", "users", COLS(users_cols), 1, ALL_BUT_KEYS(8, 1), 0},
	{MIRROR_T_MEETINGS_LIST, "meetings", "meetings", COLS(meetings_list_cols), 1, MEETINGS_LIST_UPDATE, 1},
	{MIRROR_T_MEETINGS_DETAIL, "meetings", "meetings", COLS(meetings_detail_cols), 1, ALL_BUT_KEYS(6, 1), 1},
	{MIRROR_T_ATTENDEES, "meeting_attendees", "meeting_attendees", COLS(attendees_cols), 2, ALL_BUT_KEYS(3, 2), 2},
	{MIRROR_T_TODOS, "todos", "todos", COLS(todos_cols), 1, ALL_BUT_KEYS(12, 1), 3},
	{MIRROR_T_MEASURABLES, "measurables", "measurables", COLS(measurables_cols), 1, ALL_BUT_KEYS(7, 1), 4},
	{MIRROR_T_MEETING_MEASURABLES, "meeting_measurables", "meeting_measurables", COLS(meeting_measurables_cols), 2,
	 ALL_BUT_KEYS(3, 2), 5},
	{MIRROR_T_SCORES, "scores", "scores", COLS(scores_cols), 1, ALL_BUT_KEYS(10, 1), 6},
	{MIRROR_T_GOALS, "goals", "goals", COLS(goals_cols), 1, ALL_BUT_KEYS(9, 1), 7},
	{MIRROR_T_GOAL_MEETINGS, "goal_meetings", "goal_meetings", COLS(goal_meetings_cols), 2, ALL_BUT_KEYS(3, 2), 8},
	{MIRROR_T_ISSUES, "issues", "issues", COLS(issues_cols), 1, ALL_BUT_KEYS(12, 1), 9},
	{MIRROR_T_USER_ISSUES, "issues", "issues", COLS(issues_cols), 1, USER_ISSUES_UPDATE, 9},
	{MIRROR_T_HEADLINES, "headlines", "headlines", COLS(headlines_cols), 1, ALL_BUT_KEYS(10, 1), 10},
};

const char *const mirror_tables[MIRROR_TABLE_COUNT] = {
	"users", "meetings", "meeting_attendees", "todos", "measurables", "meeting_measurables", "scores",
	"goals", "goal_meetings", "issues", "headlines",
};

const mirror_target *mirror_target_get(mirror_target_id id)
{
	if ((int)id < 0 || id >= MIRROR_T_COUNT)
		return NULL;
	return &targets[id];
}

int mirror_table_index(const char *table)
{
	for (int i = 0; i < MIRROR_TABLE_COUNT; i++)
		if (strcmp(mirror_tables[i], table) == 0)
			return i;
	return -1;
}
