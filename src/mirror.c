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

#define BIT(i) ((uint32_t)1 << (i))

/* An issue's row from a user's list (which carries OriginId) updates every
 * column but raw: raw comes from the meeting's list (which has no OriginId),
 * so an issue seen in both keeps one raw whatever order they arrive in. */
#define USER_ISSUES_UPDATE ALL_BUT_KEYS(11, 1)

/* meetings: the detail owns name (Basics.Name) when it has one; a detail
 * without Basics keeps the name a list gave (fill). A list row fills in
 * meeting_type and meeting_key, and the name only where no detail gave one
 * (keep); start_date_utc, created_at, organization_id and raw come from the
 * detail when it exists. */
#define MEETINGS_LIST_NAME BIT(1)
#define MEETINGS_LIST_UPDATE (MEETINGS_LIST_NAME | BIT(2) | BIT(3))
#define MEETINGS_DETAIL_NAME BIT(1)

/* todos: owner_id is Owner.Id, else the user whose list it came from. A
 * meeting's list cannot know that user, so its NULL for a todo without an
 * Owner leaves the owner a user's list gave (fill); a user's list always
 * knows it. Every other column is the same object's in both lists. */
#define TODOS_OWNER BIT(10)

/* headlines: a meeting's list leaves out OriginId and Archived, so a user's
 * list (the fuller object, with every headline of the user) owns raw and
 * is_archived; a meeting's list writes them only for a headline it inserts,
 * and updates the other columns. */
#define MEETING_HEADLINES_UPDATE ALL_BUT_KEYS(8, 1)

/* The fields every target has; the merge rules (fill_mask, keep_mask)
 * follow as designated initializers where a target has them. */
#define TARGET(tid, tbl, cols_, nkeys_, mask, index)                                                        \
	.id = (tid), .table = (tbl), .stream = (tbl), .cols = (cols_), .ncols = sizeof(cols_) / sizeof((cols_)[0]), \
	.nkeys = (nkeys_), .update_mask = (mask), .table_index = (index)

static const mirror_target targets[MIRROR_T_COUNT] = {
	{TARGET(MIRROR_T_USERS, "users", users_cols, 1, ALL_BUT_KEYS(8, 1), 0)},
	{TARGET(MIRROR_T_MEETINGS_LIST, "meetings", meetings_list_cols, 1, MEETINGS_LIST_UPDATE, 1), .keep_mask = MEETINGS_LIST_NAME},
	{TARGET(MIRROR_T_MEETINGS_DETAIL, "meetings", meetings_detail_cols, 1, ALL_BUT_KEYS(6, 1), 1), .fill_mask = MEETINGS_DETAIL_NAME},
	{TARGET(MIRROR_T_ATTENDEES, "meeting_attendees", attendees_cols, 2, ALL_BUT_KEYS(3, 2), 2)},
	{TARGET(MIRROR_T_TODOS, "todos", todos_cols, 1, ALL_BUT_KEYS(12, 1), 3), .fill_mask = TODOS_OWNER},
	{TARGET(MIRROR_T_USER_TODOS, "todos", todos_cols, 1, ALL_BUT_KEYS(12, 1), 3)},
	{TARGET(MIRROR_T_MEASURABLES, "measurables", measurables_cols, 1, ALL_BUT_KEYS(7, 1), 4)},
	{TARGET(MIRROR_T_MEETING_MEASURABLES, "meeting_measurables", meeting_measurables_cols, 2, ALL_BUT_KEYS(3, 2), 5)},
	{TARGET(MIRROR_T_SCORES, "scores", scores_cols, 1, ALL_BUT_KEYS(10, 1), 6)},
	{TARGET(MIRROR_T_GOALS, "goals", goals_cols, 1, ALL_BUT_KEYS(9, 1), 7)},
	{TARGET(MIRROR_T_GOAL_MEETINGS, "goal_meetings", goal_meetings_cols, 2, ALL_BUT_KEYS(3, 2), 8)},
	{TARGET(MIRROR_T_ISSUES, "issues", issues_cols, 1, ALL_BUT_KEYS(12, 1), 9)},
	{TARGET(MIRROR_T_USER_ISSUES, "issues", issues_cols, 1, USER_ISSUES_UPDATE, 9)},
	{TARGET(MIRROR_T_HEADLINES, "headlines", headlines_cols, 1, MEETING_HEADLINES_UPDATE, 10)},
	{TARGET(MIRROR_T_USER_HEADLINES, "headlines", headlines_cols, 1, ALL_BUT_KEYS(10, 1), 10)},
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

bool mirror_target_covers(mirror_target_id a, mirror_target_id b)
{
	const mirror_target *ta = mirror_target_get(a), *tb = mirror_target_get(b);
	if (!ta || !tb || ta->cols != tb->cols)
		return false;
	uint32_t b_sets = tb->update_mask & ~tb->keep_mask & ~tb->fill_mask; /* b writes the new value as it is */
	return (tb->update_mask & ~ta->update_mask) == 0 && (ta->keep_mask & tb->update_mask & ~tb->keep_mask) == 0 &&
	       (ta->fill_mask & b_sets) == 0;
}

int mirror_table_index(const char *table)
{
	for (int i = 0; i < MIRROR_TABLE_COUNT; i++)
		if (strcmp(mirror_tables[i], table) == 0)
			return i;
	return -1;
}
