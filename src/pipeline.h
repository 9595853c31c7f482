/* pipeline.h — one sync run: the run controller and its stages.
 *
 * The calling thread is the consumer: it owns the PostgreSQL connection,
 * reads pending units (the checkpoint) and hands them to the fetch thread
 * through a bounded queue, and writes each batch of results in one
 * transaction with the units it completes. The fetch thread drives the HTTP
 * engine and parses bodies into rows. Queues between them are bounded, so
 * memory does not grow with the organisation. */
#ifndef BLOOMSYNC_SRC_PIPELINE_H
#define BLOOMSYNC_SRC_PIPELINE_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "auth.h"
#include "config.h"
#include "http.h"
#include "load.h"

typedef enum {
	PIPELINE_SUCCEEDED = 0,
	PIPELINE_FAILED,    /* a unit ran out of retries, the database failed, ... */
	PIPELINE_LOCKED,    /* another run holds the lock */
	PIPELINE_AUTH,      /* the API rejected the key */
	PIPELINE_CANCELLED, /* a signal asked us to stop */
} pipeline_status;

typedef struct pipeline_opts {
	const cfg *config;
	const char *token;             /* the API key / bearer token */
	/* With credentials (NULL with a fixed key): a 401 makes the fetch stage
	 * log in again once (auth_get_token, forced), switch the engine to the
	 * new token and fetch the same unit again; a 401 for a unit already
	 * retried with the latest token, before that token expires, stops the
	 * run with PIPELINE_AUTH. */
	const auth_opts *auth;
	time_t token_expires;          /* expiry of token (with auth) */
	bool restart;                  /* abandon an unfinished run instead of resuming it */
	bool full;                     /* read every source in full, even one whose body did not change */
	bool progress_tty;             /* show the in-place progress line */
	atomic_int *cancel;            /* set (by a signal handler) to stop the run */
	const char *version;
} pipeline_opts;

typedef struct pipeline_summary {
	pipeline_status status;
	int64_t run_id;     /* 0 when no run was opened */
	bool resumed;
	double seconds;     /* this session's wall time */
	load_counts streams[MIRROR_TABLE_COUNT]; /* the run's totals, all sessions */
	http_stats http;    /* this session's HTTP figures */
	int64_t units_done, units_known;
	int64_t units_unchanged; /* this session's units whose body had not changed (not mapped or staged) */
	char error[512];    /* why it failed, empty on success */
} pipeline_summary;

/* Runs (or resumes) one sync. Always fills out; returns out->status. */
pipeline_status pipeline_sync(const pipeline_opts *opts, pipeline_summary *out);

/* Prints the end-of-run summary (one screen) to f. */
void pipeline_print_summary(const pipeline_summary *s, FILE *f);

/* The same summary as log lines at level info (for JSON logs, where a
 * table would break one object per line): the outcome, one line per stream
 * (with its stream field) and the total as key=value counts, then this
 * session's figures. */
void pipeline_log_summary(const pipeline_summary *s);

#endif
