/* bloom.h — the Bloom Growth v1 endpoints bloomsync reads, and the mapping
 * of their JSON to mirror rows (see ../shared/design/bloom-api.md and
 * mirror-schema.md).
 *
 * A unit is one GET: a list (users, a user's meetings) or a detail (a
 * meeting's todos ...). Parsing a unit's body yields rows for mirror targets,
 * already encoded in PostgreSQL COPY text format, and the child units the
 * body reveals (a user's meetings list reveals meeting units). */
#ifndef BLOOMSYNC_SRC_BLOOM_H
#define BLOOMSYNC_SRC_BLOOM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mirror.h"

/* Bump when a body maps to other rows than before (a column added, a value
 * read differently): sources recorded as unchanged are then read again. */
#define BLOOM_MAPPING_VERSION 6

typedef enum {
	BLOOM_UNIT_USERS = 1,      /* search/all?term=%25 (ref 0) */
	BLOOM_UNIT_USER_MEETINGS,  /* L10/{userId}/list */
	BLOOM_UNIT_MEETING,        /* L10/{meetingId} */
	BLOOM_UNIT_ATTENDEES,      /* L10/{meetingId}/attendees */
	BLOOM_UNIT_MEETING_TODOS,  /* L10/{meetingId}/todos?INCLUDE_CLOSED=true */
	BLOOM_UNIT_MEASURABLES,    /* L10/{meetingId}/measurables */
	BLOOM_UNIT_MEETING_SCORES, /* scorecard/meeting/{meetingId} */
	BLOOM_UNIT_USER_TODOS,     /* todo/user/{userId} */
	BLOOM_UNIT_USER_SCORES,    /* scorecard/user/{userId} */
	BLOOM_UNIT_GOALS,          /* rocks/user/{userId}?include_origin=true */
	BLOOM_UNIT_ARCHIVED_GOALS, /* archivedrocks/user/{userId} */
	BLOOM_UNIT_MEETING_ISSUES, /* L10/{meetingId}/issues?INCLUDE_RESOLVED=true */
	BLOOM_UNIT_USER_ISSUES,    /* issues/users/{userId} */
	BLOOM_UNIT_MEETING_HEADLINES, /* L10/{meetingId}/headlines?Include_Origin=true */
	BLOOM_UNIT_USER_HEADLINES, /* headline/users/{userId} */
	BLOOM_UNIT_KIND_END
} bloom_unit_kind;

typedef struct bloom_unit {
	bloom_unit_kind kind;
	int64_t ref; /* the user or meeting id; 0 for BLOOM_UNIT_USERS */
} bloom_unit;

/* Stable short name of a unit kind ("users", "user_meetings", "meeting",
 * "attendees", "meeting_todos", "measurables", "meeting_scores",
 * "user_todos", "user_scores", "goals", "archived_goals", "meeting_issues",
 * "user_issues", "meeting_headlines", "user_headlines"); NULL for an invalid
 * kind. The names are stored in the database (the run's units). */
const char *bloom_unit_kind_name(bloom_unit_kind kind);

/* The stream (mirror table) a unit's requests are counted under. */
const char *bloom_unit_stream(bloom_unit_kind kind);

/* The mirror tables (bit = index in mirror_tables) whose rows a record of
 * table may lead to: its own, and those of the units it names (a user: its
 * meetings, todos, ...; a meeting of a user's list: its attendees, todos,
 * ...), and of the units those name. A record rejected without a usable Id
 * names no unit, so the run sees none of their rows. 0 for an unknown table. */
uint32_t bloom_tables_under(const char *table);

/* Of those, the link tables a record of table writes rows in beside its
 * own (a measurable: meeting_measurables; a goal: goal_meetings): a record
 * rejected, even with its key, writes none, so the run does not see them. */
uint32_t bloom_tables_linked(const char *table);

/* Writes the request path of u, relative to the API base URL, into buf
 * (e.g. "L10/42/list"). Returns -1 when it does not fit. */
int bloom_unit_path(const bloom_unit *u, char *buf, size_t buflen);

/* Writes "kind:ref" (e.g. "meeting:42") into buf, for logs. */
void bloom_unit_label(const bloom_unit *u, char *buf, size_t buflen);

/* True when a 404 for this unit means "the item vanished between list and
 * detail" (skip and count) rather than an error. */
bool bloom_unit_404_is_vanished(bloom_unit_kind kind);

typedef struct bloom_buf {
	char *data; /* NUL-terminated when len > 0 */
	size_t len;
	size_t cap;
} bloom_buf;

/* A record that could not be mapped (wrong JSON type, bad date, missing
 * required value): it goes to the rejected-records table, never dropped. */
typedef struct bloom_reject {
	char *stream; /* mirror table it was meant for */
	char *id;     /* its key as text: its Id, "meeting/Id" for meeting_attendees
	               * ('?' for an Id that is not an integer); NULL when none */
	char *reason; /* e.g. "DueDate: not a date: \"31/12/2024\"" */
	char *raw;    /* the object as received, compact JSON, NULs removed */
	mirror_target_id target; /* what its row would have been */
	bool has_key;            /* its whole key is known, in key[]: the run must
	                          * not mark the mirror's row of it deleted */
	int64_t key[2];          /* the key columns as its row would have them */
} bloom_reject;

typedef struct bloom_result {
	bloom_unit unit;
	bloom_buf copy[MIRROR_T_COUNT]; /* rows per target, COPY text format, one line each */
	size_t nrows[MIRROR_T_COUNT];
	bloom_unit *children;           /* units revealed by this body (may repeat) */
	size_t nchildren, children_cap;
	bloom_reject *rejects;
	size_t nrejects, rejects_cap;
	size_t skipped;     /* milestones, dividers, non-user search results */
	size_t nul_removed; /* NUL characters removed from strings */
} bloom_result;

/* Parses the body of unit u into out (which it initialises). Returns 0 on
 * success; -1 when the body is not JSON of the expected shape (truncated,
 * malformed, an object where an array belongs), with a message in err: the
 * caller may retry the fetch. A single bad record is not an error: it is
 * rejected into out->rejects and the rest is kept. */
int bloom_parse(const bloom_unit *u, const char *body, size_t len, bloom_result *out, char *err, size_t errlen)
    __attribute__((warn_unused_result));

/* For a list endpoint asked page by page (api.page_size): parses one more
 * page of unit u's body and appends its rows, rejects and children to out,
 * which bloom_parse or an earlier call filled; *elements gets how many
 * array elements the page held (a short page is the last). Returns -1 when
 * the body is not JSON of the expected shape, leaving out as it was (the
 * page can be fetched again), and BLOOM_NOMEM on allocation failure (then
 * out must be freed). */
#define BLOOM_NOMEM (-2)
int bloom_parse_page(const bloom_unit *u, const char *body, size_t len, bloom_result *out, size_t *elements,
		     char *err, size_t errlen) __attribute__((warn_unused_result));

/* True for the list endpoints that answer pages when asked (page, pageSize). */
bool bloom_unit_pages(bloom_unit_kind kind);

/* Frees what out holds and zeroes it; safe on a zeroed result. */
void bloom_result_free(bloom_result *out);

/* Bytes held by a result (for memory budgets). */
size_t bloom_result_size(const bloom_result *r);

/* For tests only: with on, every body is read by jansson alone, as before
 * bloom.c had its own faster reader, so a test can check both give the
 * same result. Off by default; not thread-safe (set it before parsing). */
void bloom_use_reference_reader(bool on);

#endif
