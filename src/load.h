/* load.h — everything bloomsync says to PostgreSQL: migrations, the run
 * lock, run records, units (the checkpoint), batch upserts, deletes, status.
 * No other module holds SQL.
 *
 * Every call ends in one of three outcomes, decided in one place
 * (classify() in load.c): LOAD_OK; LOAD_RETRY when the connection or the
 * transaction failed in a way that redoing it can fix (SQLSTATE class 08,
 * 40001, 40P01, 57P01..57P03, a dead connection): reconnect with
 * load_reconnect and redo; LOAD_ERROR otherwise. */
#ifndef BLOOMSYNC_SRC_LOAD_H
#define BLOOMSYNC_SRC_LOAD_H

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "bloom.h"
#include "mirror.h"

typedef struct load_db load_db;

typedef enum { LOAD_OK = 0, LOAD_RETRY, LOAD_ERROR } load_outcome;

typedef struct load_error {
	load_outcome outcome;
	char sqlstate[6];
	char msg[512];
} load_error;

/* Connects (conninfo is any libpq conninfo or URI; PG* variables apply) and
 * sets the session up for the mirror schema. NULL on error, with err filled. */
load_db *load_open(const char *conninfo, const char *schema, load_error *err);

/* Makes db's statements the ones load_cancel_from_signal cancels (one
 * session at a time; it follows db's reconnects until load_close). Call it,
 * and use db, from the thread that SIGINT, SIGTERM and SIGHUP are delivered to:
 * other threads must block them. */
void load_cancel_on_signal(load_db *db);

/* For a SIGINT/SIGTERM handler (async-signal-safe): asks the server to
 * cancel the statement the session of load_cancel_on_signal is running, so
 * that a call blocked on a lock or a slow server returns (with SQLSTATE
 * LOAD_SQLSTATE_CANCELED) instead of holding the stop back. */
void load_cancel_from_signal(void);

/* For a handler too: shuts down the socket of that session, so that a call
 * blocked on a server that does not answer even a cancel (frozen, or cut
 * off by the network) fails at once as on a lost connection. False when no
 * session has a socket (none open, or one being connected). */
bool load_abandon_from_signal(void);

/* Blocks, in the calling thread, the signals whose handlers call
 * load_cancel_from_signal or load_abandon_from_signal (SIGINT, SIGTERM,
 * SIGHUP, SIGALRM), and saves the mask before
 * in *old (pthread_sigmask(SIG_SETMASK, old, NULL) restores it). */
void load_block_stop_signals(sigset_t *old);

/* PostgreSQL's query_canceled: what a statement load_cancel_from_signal
 * cancelled fails with. */
#define LOAD_SQLSTATE_CANCELED "57014"

/* Closes the connection (releasing the run lock); load_close(NULL) is a no-op. */
void load_close(load_db *db);

/* Opens a new connection in place of a broken one, and takes the run lock
 * again if this connection held it. -1 on error (err->outcome tells whether
 * trying again later makes sense). */
int load_reconnect(load_db *db, load_error *err);

/* Whether another session took the run lock while this one reconnected
 * (load_reconnect's "lost the run lock"): the run is that session's now. */
bool load_lost_lock(const load_db *db);

/* The SQLSTATE (PostgreSQL's lock_not_available) in err when load_migrate
 * failed because another session holds the run lock: the caller reports it
 * as a locked sync (exit 3), not as a failed one. */
#define LOAD_SQLSTATE_LOCKED "55P03"

/* Applies the embedded migrations not yet applied, in order, all in one
 * transaction that records each (with a checksum of its text). *applied
 * gets how many ran. -1 on error, nothing applied, err filled:
 *  - another session holds the run lock and something is to be applied:
 *    err->sqlstate is LOAD_SQLSTATE_LOCKED and err->msg "another sync holds
 *    the lock for schema S: <holder>". With nothing to apply no lock is
 *    needed, so a sync's own migrate, called before load_lock, does not
 *    fail for a lock load_lock then reports. The run lock is taken only
 *    while migrating, and only when this session does not hold it already
 *    (a session that holds it keeps it; one that did not is left without);
 *  - the schema records a migration this binary does not embed: "schema S
 *    was migrated by a newer bloomsync (migration V); upgrade bloomsync".
 * An applied migration whose recorded checksum differs from the embedded
 * text's is logged as a warning (it was edited after it was applied). */
int load_migrate(load_db *db, int *applied, load_error *err);

/* How many embedded migrations are not applied yet (all when the schema is
 * missing). -1, with the error of load_migrate, for a schema migrated by a
 * newer bloomsync. */
int load_pending_migrations(load_db *db, int *pending, load_error *err);

/* Whether the connected role can do what a sync does to the schema, given
 * its pending migrations (load_pending_migrations): create the schema when
 * it is missing (CREATE on the database), create tables in it when it is
 * not migrated (CREATE and USAGE on it), own its tables when migrations are
 * pending (they alter them), read and write every table (SELECT, INSERT,
 * UPDATE, DELETE), use its sequences (USAGE) and stage rows in temporary
 * tables (TEMPORARY on the database). *exists says
 * whether the schema exists; problem gets what the role lacks, naming the
 * role and the object ("" when nothing). -1 only when it cannot be read. */
int load_sync_privileges(load_db *db, int pending, bool *exists, char *problem, size_t problemlen, load_error *err);

/* Takes the run lock (a session advisory lock per database and schema)
 * without waiting. *acquired is false when another session holds it; then
 * holder describes that session (pid, application, client, since when). */
int load_lock(load_db *db, bool *acquired, char *holder, size_t holderlen, load_error *err);

typedef struct load_run {
	int64_t id;
	bool resumed;       /* an interrupted run was continued */
	int64_t units_known;
	int64_t units_done;
} load_run;

/* Resumes the latest run if it did not succeed (running, failed or
 * cancelled), else starts a new one with its root unit. With restart, an
 * unfinished run is marked abandoned and a new one starts; so it is when
 * streams (sync.streams names, comma-separated) names one that a session
 * of that run left out (see sql/008_run_streams.sql). */
int load_run_open(load_db *db, bool restart, const char *version, const char *streams, load_run *run,
		  load_error *err);

/* Reads run->id's units known and done as the database has them: after a
 * server crash that lost commits, fewer than the session counted. */
int load_run_progress(load_db *db, load_run *run, load_error *err);

typedef struct load_unit {
	int64_t seq;       /* position in the run's unit table */
	bloom_unit unit;
	bool has_digest;   /* the source was read in full before: digest is its body's */
	uint64_t digest;
	/* With the digest (when recorded with it): the rows of each mirror table
	 * (index = mirror_table_index) that body named. */
	bool has_named;
	uint32_t named[MIRROR_TABLE_COUNT];
} load_unit;

/* Reads up to max pending units of the run with seq > after_seq, in seq
 * order, into units; *n gets how many. */
int load_units_next(load_db *db, int64_t run_id, int64_t after_seq, load_unit *units, size_t max, size_t *n,
		    load_error *err);

/* Counts per stream (index = mirror_table_index of the stream). */
typedef struct load_counts {
	uint64_t requests, retries, inserted, updated, unchanged, skipped, rejected, deleted, nul_removed;
} load_counts;

typedef struct load_item {
	int64_t seq;            /* the unit's seq */
	bloom_unit unit;
	bloom_result *result;   /* rows and children; NULL when the item vanished (404) */
	uint32_t attempts;      /* HTTP attempts made for it (every page, every resend) */
	uint32_t retries;       /* of them, retries after a failure (http_response.retries) */
	/* The source's body had the digest recorded for it (sync_sources): its
	 * rows are not in result, they stand as they are in the mirror. */
	bool unchanged;
	/* Otherwise (a result, not unchanged): the body's digest, recorded
	 * unless the batch had to reject rows, and what it yielded: COPY lines
	 * of sync_yields (kind, ref, tbl, k1[], k2[] or \\N), one per table,
	 * naming every row of the body (repeated rows included even when result
	 * left them out). */
	uint64_t digest;
	const char *yields;
	size_t yields_len;
	/* Rows of each mirror table the body named (what yields names): for an
	 * item read in full, recorded with its digest; for an unchanged one,
	 * counted unchanged. NULL for a vanished item, and for an unchanged one
	 * whose digest was recorded without counts (its yields are counted). */
	const uint32_t *named;
} load_item;

typedef struct load_batch {
	int64_t run_id;
	load_item *items;
	size_t nitems;
} load_batch;

typedef struct load_batch_result {
	load_counts streams[MIRROR_TABLE_COUNT]; /* what this batch did */
	int64_t children_added;                  /* new units recorded */
	int64_t units_marked;                    /* of its units, those it moved from pending to
	                                          * done or vanished (not one whose row a lost
	                                          * commit took: see add_run_counts) */
	size_t rows;                             /* rows COPYed (staging or mirror) */
} load_batch_result;

/* Writes a batch in one transaction: its rows (COPY to staging, then upsert
 * only where content differs; on an initial load most are COPYed straight
 * into the mirror, see load.c), its rejected records, the children it
 * revealed, its units marked done, and the run's counts. Either all of it
 * commits or none of it.
 *
 * A row PostgreSQL refuses goes to rejected_records with its key as
 * record_id: the key columns' values in key order joined by '/' ("12/345"
 * for meeting_attendees, meeting_id/user_id), and a warning naming the
 * same ("rejected a meeting_attendees row (meeting_id/user_id 12/345): ...").
 *
 * On LOAD_RETRY, reconnect (load_reconnect) and call again with the same
 * batch. When the connection was lost as the transaction ended, it may
 * have committed all the same: the call then finds the batch's units done,
 * writes nothing again (so the run's counts are not doubled) and returns 0
 * with out as the lost attempt counted it (see batch_committed in load.c). */
int load_batch_commit(load_db *db, const load_batch *batch, load_batch_result *out, load_error *err)
    __attribute__((warn_unused_result));

/* Ends a run: when apply_deletes (the run completed every unit), rows not
 * seen by the run get deleted_at = now() in every mirror table whose bit is
 * set in table_mask (bit i = mirror_tables[i]; tables of streams the run
 * did not sync are left alone), and the run's unit and seen tables are
 * cleared. Then records status, finished_at and error (NULL for none).
 * deleted[] (may be NULL) gets rows marked per stream. */
int load_run_finish(load_db *db, int64_t run_id, const char *status, const char *error, bool apply_deletes,
		    uint32_t table_mask, uint64_t deleted[MIRROR_TABLE_COUNT], load_error *err);

/* The run's counts per stream, summed over all its sessions. */
int load_run_counts(load_db *db, int64_t run_id, load_counts out[MIRROR_TABLE_COUNT], load_error *err);

/* Makes the session's statements give up waiting on a lock after ms
 * (0: wait as long as it takes, PostgreSQL's default). */
int load_lock_timeout(load_db *db, int ms, load_error *err);

/* Adds requests and retries (the other counts are ignored) to the run's
 * per-stream counts: those of units fetched but never committed (the one
 * that failed the run, results dropped on a stop), which batches never
 * counted. */
int load_run_add_requests(load_db *db, int64_t run_id, const load_counts counts[MIRROR_TABLE_COUNT],
			  load_error *err);

/* Prints the latest `limit` runs (table, or JSON when json), and the progress
 * of an unfinished one. */
int load_status(load_db *db, int limit, bool json, FILE *out, load_error *err);

#endif
