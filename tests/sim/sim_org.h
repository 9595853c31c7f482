/* sim_org.h — the simulated Bloom Growth organisation.
 *
 * The organisation is a set of compact rows (ids, references, flags); names,
 * dates and other strings are derived on the fly from the row index, the seed
 * and a per-row edit counter, so tens of thousands of users cost little
 * memory. Rows are never moved: removing one clears its alive flag, adding
 * one appends it. Ids are base + row index, in disjoint ranges per kind.
 *
 * The sharp edges of the real data live on fixed low-numbered rows (see
 * docs/bloomsim.md): users 0..4, meetings 0..2, todos 0..7 (meeting 0),
 * measurables 0..2, scores 0..4.
 *
 * The struct is public to the other bloomsim modules (sim_api, sim_expect),
 * which read it under the caller's lock; nobody else should touch it. */
#ifndef BLOOMSIM_SIM_ORG_H
#define BLOOMSIM_SIM_ORG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sim_buf.h"

#define SIM_ORG_ID 42
#define SIM_USER_BASE 1000000LL
#define SIM_TEAM_BASE 8000000LL
#define SIM_POSITION_BASE 9000000LL
#define SIM_MEET_BASE 20000000LL
#define SIM_TODO_BASE 100000000LL
#define SIM_MEAS_BASE 300000000LL
#define SIM_DIVIDER_BASE 390000000LL
#define SIM_SCORE_BASE 400000000LL
#define SIM_GOAL_BASE 500000000LL
#define SIM_ISSUE_BASE 600000000LL
#define SIM_HEADLINE_BASE 700000000LL

#define SIM_FIXED_USERS 5
#define SIM_FIXED_TODOS 8
#define SIM_FIXED_SCORES 5
#define SIM_FIXED_GOALS 5
#define SIM_FIXED_ISSUES 7
#define SIM_FIXED_HEADLINES 4
#define SIM_GOAL_ORIGINS 3

/* A value that may be absent from the JSON object, null, or present. */
typedef enum { SIM_ABSENT = 0, SIM_NULL, SIM_VALUE } sim_val;

/* A .NET-style date as the API writes it. */
typedef enum {
	SIM_DATE_ABSENT = 0, /* key left out */
	SIM_DATE_NULL,       /* null */
	SIM_DATE_EMPTY,      /* "" */
	SIM_DATE_Z,          /* 2024-06-01T10:00:00[.f]Z */
	SIM_DATE_NOZ,        /* 2024-06-01T10:00:00[.f] (UTC) */
	SIM_DATE_DAY,        /* 2024-12-31 */
} sim_date_kind;

typedef struct sim_date {
	sim_date_kind kind;
	int frac_digits; /* 0, 3 or 7 */
	uint32_t frac;   /* the fraction's digits as an integer */
	int64_t secs;    /* seconds since the epoch, UTC */
} sim_date;

typedef struct sim_user {
	uint32_t rename; /* edit counter: names change when it does */
	bool alive;
} sim_user;

typedef struct sim_attend {
	int32_t meeting;
	int32_t user;
	bool alive;
} sim_attend;

typedef struct sim_todo {
	int32_t owner;    /* user row */
	int32_t meeting;  /* meeting row, -1 for a personal todo */
	uint32_t rename;  /* edit counter */
	uint16_t closed;  /* 0 open; 1 closed at generation; g + 1 closed in round g */
	bool milestone;   /* served with a negative Id */
	bool alive;
} sim_todo;

typedef struct sim_meas {
	int32_t owner;
	int32_t meeting1;
	int32_t meeting2; /* -1 unless the measurable is on two meetings */
	bool alive;
} sim_meas;

typedef struct sim_score {
	int32_t meas;
	int32_t user;    /* accountable user row */
	int32_t week;    /* 0-based week offset */
	uint16_t edit;   /* value edit counter */
	bool alive;
} sim_score;

typedef struct sim_goal {
	int32_t owner;                     /* user row */
	int32_t origins[SIM_GOAL_ORIGINS]; /* meeting rows, ascending; -1 = none */
	uint32_t rename;                   /* edit counter of the name */
	uint16_t progress;                 /* edit counter of Completion */
	bool archived;                     /* listed by archivedrocks, not rocks */
	bool alive;
} sim_goal;

/* An issue or a headline: both belong to one meeting. */
typedef struct sim_item {
	int32_t owner;   /* user row; -1: Owner null (issues only) */
	int32_t meeting; /* meeting row */
	uint32_t rename; /* edit counter */
	uint16_t closed; /* 0 open; 1 closed at generation; g + 1 closed in round g */
	bool archived;
	bool alive;
} sim_item;

/* Rows grouped by a key: rows of group g are items[start[g] .. start[g+1]). */
typedef struct sim_index {
	int32_t *start;
	int32_t *items;
	long groups;
} sim_index;

typedef struct sim_org_params {
	uint64_t seed;
	long users;             /* >= 1 */
	long meetings;          /* >= 1 */
	long todos_per_meeting; /* meeting todos besides the milestone */
	long personal_todos;    /* per user */
	long measurables_per_meeting;
	long weeks;             /* scores per measurable */
	long goals_per_user;
	long issues_per_meeting;
	long headlines_per_meeting;
} sim_org_params;

typedef struct sim_org {
	sim_org_params params;
	long generation;
	sim_user *users;
	long n_users;
	long n_meetings;
	sim_attend *attends;
	long n_attends;
	sim_todo *todos;
	long n_todos;
	sim_meas *meas;
	long n_meas;
	sim_score *scores;
	long n_scores;
	sim_goal *goals;
	long n_goals;
	sim_item *issues;
	long n_issues;
	sim_item *headlines;
	long n_headlines;
	long cap_users, cap_attends, cap_todos, cap_scores, cap_goals, cap_issues, cap_headlines;
	/* derived, rebuilt after every change; only alive rows */
	sim_index meeting_attendees; /* meeting -> attend rows */
	sim_index user_meetings;     /* user -> attend rows */
	sim_index meeting_todos;     /* meeting -> todo rows (closed included) */
	sim_index user_todos;        /* user -> open todo rows */
	sim_index meeting_meas;      /* meeting -> measurable rows */
	sim_index meas_scores;       /* measurable -> score rows */
	sim_index user_scores;       /* accountable user -> score rows */
	sim_index user_goals;        /* owner -> goal rows (archived included) */
	sim_index meeting_issues;    /* meeting -> issue rows (resolved included) */
	sim_index user_issues;       /* owner -> open issue rows */
	sim_index meeting_headlines; /* meeting -> headline rows */
	sim_index user_headlines;    /* owner -> headline rows */
} sim_org;

/* Fill p with the defaults (40 users, 8 meetings, seed 1). */
void sim_org_default_params(sim_org_params *p);

/* Generate an organisation. Returns NULL on allocation failure or bad
 * parameters; the caller frees the result with sim_org_free(). */
sim_org *sim_org_new(const sim_org_params *p);

/* Free an organisation; NULL is a no-op. */
void sim_org_free(sim_org *org);

/* Apply one deterministic mutation round. Returns the new generation, or -1
 * on allocation failure (the organisation is then still consistent). */
long sim_org_mutate(sim_org *org);

/* Ids. */
int64_t sim_org_user_id(long u);
int64_t sim_org_meeting_id(long m);
int64_t sim_org_todo_id(const sim_org *org, long t);
int64_t sim_org_meas_id(long k);
int64_t sim_org_score_id(long s);

/* Row lookups by id: the row index, or -1 when unknown or removed. */
long sim_org_find_user(const sim_org *org, int64_t id);
long sim_org_find_meeting(const sim_org *org, int64_t id);
long sim_org_find_todo(const sim_org *org, int64_t id);

/* String accessors: each clears out and writes the raw text (which may hold
 * NUL bytes) when the value is present; they return whether it is. */
void sim_org_user_name(const sim_org *org, long u, sim_buf *out);
sim_val sim_org_user_email(const sim_org *org, long u, sim_buf *out);
sim_val sim_org_user_title(const sim_org *org, long u, sim_buf *out);
void sim_org_user_image(const sim_org *org, long u, sim_buf *out);
void sim_org_meeting_name(const sim_org *org, long m, sim_buf *out);
void sim_org_todo_name(const sim_org *org, long t, sim_buf *out);
sim_val sim_org_todo_details(const sim_org *org, long t, sim_buf *out);
void sim_org_meas_name(const sim_org *org, long k, sim_buf *out);
void sim_org_score_week(const sim_org *org, long s, sim_buf *out);

/* Meeting detail values. */
sim_date sim_org_meeting_created(const sim_org *org, long m);
sim_date sim_org_meeting_start(const sim_org *org, long m);
sim_val sim_org_meeting_org_id(const sim_org *org, long m, int64_t *id);

/* Todo dates: due, created, completed, closed. */
typedef struct sim_todo_dates {
	sim_date due, create, complete, close;
} sim_todo_dates;
void sim_org_todo_dates(const sim_org *org, long t, sim_todo_dates *d);

/* Measurable values. */
sim_val sim_org_meas_target(const sim_org *org, long k, double *v);
const char *sim_org_meas_direction(const sim_org *org, long k);
const char *sim_org_meas_unit(const sim_org *org, long k);

/* Score values. */
sim_val sim_org_score_target(const sim_org *org, long s, double *v);
sim_val sim_org_score_value(const sim_org *org, long s, double *v);
sim_date sim_org_score_entered(const sim_org *org, long s);
int sim_org_score_week_id(const sim_org *org, long s);

/* Goals, issues and headlines: ids, strings and values. */
int64_t sim_org_goal_id(long g);
int64_t sim_org_issue_id(long i);
int64_t sim_org_headline_id(long h);
void sim_org_goal_name(const sim_org *org, long g, sim_buf *out);
void sim_org_goal_dates(const sim_org *org, long g, sim_date *due, sim_date *create);
const char *sim_org_goal_completion(const sim_org *org, long g); /* may be "" */
bool sim_org_goal_complete(const sim_org *org, long g);
sim_val sim_org_goal_archived_key(const sim_org *org, long g, bool *value); /* the Archived key as served */
void sim_org_issue_name(const sim_org *org, long i, sim_buf *out);
sim_val sim_org_issue_details(const sim_org *org, long i, sim_buf *out);
/* Issue dates; *complete is SIM_DATE_ABSENT when the key is left out. */
void sim_org_issue_dates(const sim_org *org, long i, sim_date *create, sim_date *close, sim_date *complete);
void sim_org_headline_name(const sim_org *org, long h, sim_buf *out);
sim_val sim_org_headline_details(const sim_org *org, long h, sim_buf *out);
void sim_org_headline_dates(const sim_org *org, long h, sim_date *create, sim_date *close);
bool sim_org_headline_has_archived(const sim_org *org, long h); /* false: the Archived key is left out */

/* Convert seconds since the epoch to broken-down UTC fields. */
void sim_org_civil(int64_t secs, int *year, int *mon, int *day, int *hour, int *min, int *sec);

#endif
