/* mirror.h — the mirror's tables as data: the one description that the JSON
 * mapping (bloom.c) fills and the loader (load.c) writes.
 *
 * A "target" is one way rows reach a mirror table. A table usually has one;
 * meetings has two, because the meeting lists and the meeting detail carry
 * different columns of the same row. Columns are in COPY order: the key
 * columns first, "raw" (jsonb) always last. Columns outside update_mask are
 * written when a row is inserted and left alone when it already exists.
 *
 * When one record reaches a table from two kinds of list, each column has
 * one source that owns it, so the row ends the same whatever order the
 * lists are read in (and a list read again unchanged changes nothing): the
 * owner updates the column, the other source writes it only on insert, or
 * only where the owner left it NULL (fill_mask, keep_mask). */
#ifndef BLOOMSYNC_SRC_MIRROR_H
#define BLOOMSYNC_SRC_MIRROR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum {
	MIRROR_BIGINT = 0,
	MIRROR_INT,
	MIRROR_TEXT,
	MIRROR_BOOL,
	MIRROR_NUMERIC,
	MIRROR_TIMESTAMPTZ,
	MIRROR_JSONB,
} mirror_type;

typedef struct mirror_column {
	const char *name;
	mirror_type type;
	bool not_null;
} mirror_column;

typedef enum {
	MIRROR_T_USERS = 0,
	MIRROR_T_MEETINGS_LIST,   /* meetings, from L10/{userId}/list */
	MIRROR_T_MEETINGS_DETAIL, /* meetings, from L10/{meetingId} */
	MIRROR_T_ATTENDEES,
	MIRROR_T_TODOS,           /* todos, from L10/{meetingId}/todos */
	MIRROR_T_USER_TODOS,      /* todos, from todo/user/{userId}: owns owner_id */
	MIRROR_T_MEASURABLES,
	MIRROR_T_MEETING_MEASURABLES,
	MIRROR_T_SCORES,
	MIRROR_T_GOALS,         /* goals, from rocks/user and archivedrocks/user */
	MIRROR_T_GOAL_MEETINGS, /* goal_meetings, from each goal's Origins */
	MIRROR_T_ISSUES,        /* issues, from L10/{meetingId}/issues */
	MIRROR_T_USER_ISSUES,   /* issues, from issues/users/{userId}: raw kept from the meeting list */
	MIRROR_T_HEADLINES,      /* headlines, from L10/{meetingId}/headlines */
	MIRROR_T_USER_HEADLINES, /* headlines, from headline/users/{userId}: owns raw and is_archived */
	MIRROR_T_COUNT
} mirror_target_id;

#define MIRROR_MAX_COLS 16

typedef struct mirror_target {
	mirror_target_id id;
	const char *table;     /* the mirror table, e.g. "meetings" */
	const char *stream;    /* the stream its counts go to (= table) */
	const mirror_column *cols;
	size_t ncols;          /* including raw, the last column */
	size_t nkeys;          /* the first nkeys columns form the primary key */
	uint32_t update_mask;  /* bit i set: column i is updated on conflict */
	int table_index;       /* table's index in mirror_tables */
	/* Of update_mask: columns that take the new value only when it is not
	 * NULL (the source cannot know the value: it must not erase it). */
	uint32_t fill_mask;
	/* Of update_mask: columns that take the new value only where the stored
	 * one is NULL (another source owns the value; this one fills a gap). */
	uint32_t keep_mask;
} mirror_target;

const mirror_target *mirror_target_get(mirror_target_id id);

/* Whether a row that target a wrote leaves nothing for the same row, to the
 * byte, from target b to change: same table and columns, and every column b
 * updates, a updates to the same value (b's update_mask within a's; a keeps
 * or fills no column that b overwrites). */
bool mirror_target_covers(mirror_target_id a, mirror_target_id b);

/* The distinct mirror tables, in dependency-free order, for deletes and counts. */
#define MIRROR_TABLE_COUNT 11
extern const char *const mirror_tables[MIRROR_TABLE_COUNT];

/* Index of a table name in mirror_tables, or -1. */
int mirror_table_index(const char *table);

#endif
