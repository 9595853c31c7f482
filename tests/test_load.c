/* test_load.c — the loader against a real PostgreSQL (the runner starts one
 * and exports PGHOST etc.; without PGHOST the tests are skipped). Batches are
 * built by hand here, so they can hold what bloom.c never produces: a row
 * PostgreSQL refuses.
 *
 * Link-time wraps (see the Makefile): a lost connection at a chosen point of
 * a batch's last statements, which a real server cannot produce on demand
 * (see "a batch whose COMMIT went unanswered" below). */
// LDWRAP: PQsendQuery PQgetResult
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>
#include <libpq-fe.h>

#include "load.h"
#include "load_migrations.h"
#include "log.h"

static const char *schema = "t_load";

#define ALL_STREAMS "users,meetings,todos,scorecard,goals,issues,headlines"

static PGconn *admin(void)
{
	PGconn *c = PQconnectdb("");
	assert_int_equal(PQstatus(c), CONNECTION_OK);
	return c;
}

static char *scalar(PGconn *c, const char *sql)
{
	PGresult *r = PQexec(c, sql);
	if (PQresultStatus(r) != PGRES_TUPLES_OK)
		fail_msg("%s: %s", sql, PQresultErrorMessage(r));
	char *v = strdup(PQgetvalue(r, 0, 0));
	PQclear(r);
	return v;
}

static long long count(PGconn *c, const char *sql)
{
	char *v = scalar(c, sql);
	long long n = atoll(v);
	free(v);
	return n;
}

static int setup(void **state)
{
	(void)state;
	if (!getenv("PGHOST"))
		return 0;
	PGconn *c = admin();
	PQclear(PQexec(c, "SET client_min_messages = warning; DROP SCHEMA IF EXISTS t_load CASCADE"));
	PQfinish(c);
	return 0;
}

static load_db *open_migrated(void)
{
	load_error err;
	load_db *db = load_open("", schema, &err);
	if (!db)
		fail_msg("load_open: %s", err.msg);
	int applied = 0;
	assert_int_equal(load_migrate(db, &applied, &err), 0);
	return db;
}

/* A migrated schema with a new run open (skips the test without a server). */
static load_db *open_new_run(load_run *run)
{
	if (!getenv("PGHOST"))
		skip();
	load_db *db = open_migrated();
	load_error err;
	if (load_run_open(db, true, "test", ALL_STREAMS, run, &err) != 0)
		fail_msg("load_run_open: %s", err.msg);
	return db;
}

/* A result with the given todos COPY text (one line each). */
static bloom_result *todo_result(const char *lines, size_t nrows)
{
	bloom_result *r = calloc(1, sizeof(*r));
	r->unit.kind = BLOOM_UNIT_MEETING_TODOS;
	r->unit.ref = 7;
	r->copy[MIRROR_T_TODOS].data = strdup(lines);
	r->copy[MIRROR_T_TODOS].len = strlen(lines);
	r->copy[MIRROR_T_TODOS].cap = strlen(lines) + 1;
	r->nrows[MIRROR_T_TODOS] = nrows;
	return r;
}

#define TODO(id, name, raw) id "\t" name "\t\\N\t\\N\t\\N\t\\N\t\\N\tf\t7\tWeekly\t5\t" raw "\n"

/* Commits one batch holding item, as the run's first pending unit; returns
 * that unit as load_units_next gave it (with the digest recorded for it). */
static load_unit commit_item(load_db *db, load_run *run, load_item item, load_batch_result *out, int expect_rc)
{
	load_unit units[16];
	size_t n = 0;
	load_error err;
	assert_int_equal(load_units_next(db, run->id, 0, units, 16, &n, &err), 0);
	assert_true(n >= 1);
	item.seq = units[0].seq;
	item.unit = units[0].unit;
	load_batch b = {.run_id = run->id, .items = &item, .nitems = 1};
	int rc = load_batch_commit(db, &b, out, &err);
	if (rc != expect_rc)
		fail_msg("load_batch_commit returned %d: %s", rc, err.msg);
	return units[0];
}

static void commit_units(load_db *db, load_run *run, bloom_result *r, load_batch_result *out, int expect_rc)
{
	commit_item(db, run, (load_item){.result = r, .attempts = 1}, out, expect_rc);
}

/* A row PostgreSQL refuses (invalid jsonb) is rejected alone; the others land. */
static void test_bad_row_is_rejected_not_dropped(void **state)
{
	(void)state;
	load_run run;
	load_db *db = open_new_run(&run);
	bloom_result *r = todo_result(TODO("1", "good one", "{\"Id\":1}") TODO("2", "bad raw", "{not json")
					  TODO("3", "good two", "{\"Id\":3}"),
				      3);
	load_batch_result out;
	commit_units(db, &run, r, &out, 0);
	PGconn *c = admin();
	assert_int_equal(count(c, "SELECT count(*) FROM t_load.todos"), 2);
	assert_int_equal(count(c, "SELECT count(*) FROM t_load.rejected_records WHERE stream = 'todos' "
				  "AND record_id = '2' AND raw = '{not json' AND reason LIKE '%json%'"),
			 1);
	int si = mirror_table_index("todos");
	assert_int_equal(out.streams[si].rejected, 1);
	assert_int_equal(out.streams[si].inserted, 2);
	assert_int_equal(count(c, "SELECT rejected FROM t_load.sync_run_streams WHERE stream = 'todos'"), 1);
	/* the unit is done all the same: nothing is refetched for a bad record */
	assert_int_equal(count(c, "SELECT count(*) FROM t_load.sync_units WHERE state = 0"), 0);
	PQfinish(c);
	bloom_result_free(r);
	free(r);
	load_close(db);
}

/* Writing the same rows again changes nothing; a changed row is updated once. */
static void test_upsert_is_idempotent(void **state)
{
	(void)state;
	if (!getenv("PGHOST"))
		skip();
	load_db *db = open_migrated();
	load_error err;
	load_run run;
	assert_int_equal(load_run_open(db, true, "test", ALL_STREAMS, &run, &err), 0);
	load_batch_result out;
	bloom_result *r = todo_result(TODO("10", "x", "{\"Id\":10}") TODO("11", "y", "{\"Id\":11}"), 2);
	commit_units(db, &run, r, &out, 0);
	int si = mirror_table_index("todos");
	assert_int_equal(out.streams[si].inserted, 2);
	/* same rows: a new run's unit */
	assert_int_equal(load_run_finish(db, run.id, "failed", NULL, false, 0, NULL, &err), 0);
	assert_int_equal(load_run_open(db, true, "test", ALL_STREAMS, &run, &err), 0);
	bloom_result_free(r);
	free(r);
	r = todo_result(TODO("10", "x", "{\"Id\":10}") TODO("11", "y2", "{\"Id\":11}"), 2);
	commit_units(db, &run, r, &out, 0);
	assert_int_equal(out.streams[si].inserted, 0);
	assert_int_equal(out.streams[si].updated, 1);
	assert_int_equal(out.streams[si].unchanged, 1);
	bloom_result_free(r);
	free(r);
	load_close(db);
}

/* Into an empty table the first row of a key is COPYed straight into the
 * mirror; the same key again, in the same batch or a later one, still ends
 * as the last row given, never as a duplicate-key failure. */
static void test_same_key_again_into_an_empty_table(void **state)
{
	(void)state;
	if (!getenv("PGHOST"))
		skip();
	setup(NULL); /* empty tables: the earlier tests wrote todos */
	load_db *db = open_migrated();
	load_error err;
	load_run run;
	assert_int_equal(load_run_open(db, true, "test", ALL_STREAMS, &run, &err), 0);
	load_batch_result out;
	bloom_result *r = todo_result(TODO("20", "first", "{\"Id\":20}") TODO("21", "only", "{\"Id\":21}")
					  TODO("20", "second", "{\"Id\":20,\"x\":1}"),
				      3);
	commit_units(db, &run, r, &out, 0);
	int si = mirror_table_index("todos");
	assert_int_equal(out.streams[si].inserted, 2);
	assert_int_equal(out.streams[si].rejected, 0);
	/* 21 was written by an earlier command of the transaction (the COPY into
	 * todos) than 20's last version (the upsert from staging); had the COPY
	 * failed on the repeated key and the batch gone the usual way, one upsert
	 * would have written both */
	PGconn *c = admin();
	char *order = scalar(c, "SELECT (SELECT cmin::text::int FROM t_load.todos WHERE id = 21) < "
				"(SELECT cmin::text::int FROM t_load.todos WHERE id = 20)");
	assert_string_equal(order, "t");
	free(order);
	bloom_result_free(r);
	free(r);
	/* a later batch (of a new run: this one has no unit left) */
	assert_int_equal(load_run_finish(db, run.id, "failed", NULL, false, 0, NULL, &err), 0);
	assert_int_equal(load_run_open(db, true, "test", ALL_STREAMS, &run, &err), 0);
	r = todo_result(TODO("21", "later", "{\"Id\":21}") TODO("22", "new", "{\"Id\":22}"), 2);
	commit_units(db, &run, r, &out, 0);
	assert_int_equal(out.streams[si].inserted, 1);
	assert_int_equal(out.streams[si].updated, 1);
	char *name = scalar(c, "SELECT string_agg(id || '=' || name || ' ' || raw::text, ', ' ORDER BY id) "
			       "FROM t_load.todos");
	assert_string_equal(name, "20=second {\"x\": 1, \"Id\": 20}, 21=later {\"Id\": 21}, 22=new {\"Id\": 22}");
	free(name);
	/* the runs' counts hold the rows written either way */
	assert_int_equal(count(c, "SELECT sum(inserted) FROM t_load.sync_run_streams WHERE stream = 'todos'"), 3);
	PQfinish(c);
	bloom_result_free(r);
	free(r);
	load_close(db);
}

#define SCORE(id, value) id "\t1\t2\tm\t\\N\t" value "\tw\t1\t\\N\t{\"Id\":" id "}\n"

static void set_copy(bloom_result *r, mirror_target_id t, const char *lines, size_t nrows)
{
	free(r->copy[t].data);
	r->copy[t].data = strdup(lines);
	r->copy[t].len = strlen(lines);
	r->copy[t].cap = strlen(lines) + 1;
	r->nrows[t] = nrows;
}

/* Commits r as the first unit of a new run, with warnings (info too when
 * `info`) captured (fd 2); returns what was logged. */
static char *commit_logged_at(load_db *db, bloom_result *r, load_batch_result *out, bool info,
			      void (*before)(load_db *db, const load_run *run))
{
	load_error err;
	load_run run;
	assert_int_equal(load_run_open(db, true, "test", ALL_STREAMS, &run, &err), 0);
	if (before)
		before(db, &run);
	fflush(stderr);
	int saved = dup(2);
	FILE *cap = tmpfile();
	assert_non_null(cap);
	dup2(fileno(cap), 2);
	log_init(info ? LOG_INFO : LOG_WARN, LOG_FORMAT_TEXT);
	commit_units(db, &run, r, out, 0);
	log_init(LOG_ERROR, LOG_FORMAT_TEXT);
	fflush(stderr);
	dup2(saved, 2);
	close(saved);
	assert_int_equal(load_run_finish(db, run.id, "failed", NULL, false, 0, NULL, &err), 0);
	char *logged = calloc(1, 4096);
	assert_non_null(logged);
	rewind(cap);
	fread(logged, 1, 4095, cap);
	fclose(cap);
	return logged;
}

static char *commit_logged(load_db *db, bloom_result *r, load_batch_result *out)
{
	return commit_logged_at(db, r, out, false, NULL);
}

/* A batch written row by row (after a bad row) notes the keys it wrote,
 * rows of targets its failed attempt never reached included: the same key
 * in a later batch takes the upsert, and that batch needs no isolating. */
static void test_isolated_rows_are_noted(void **state)
{
	(void)state;
	if (!getenv("PGHOST"))
		skip();
	setup(NULL);
	load_db *db = open_migrated();
	load_batch_result out;
	/* todos come before scores: the first attempt fails on the todo */
	bloom_result *r = todo_result(TODO("30", "bad raw", "{not json"), 1);
	set_copy(r, MIRROR_T_SCORES, SCORE("500", "3"), 1);
	char *logged = commit_logged(db, r, &out);
	assert_non_null(strstr(logged, "row by row"));
	free(logged);
	assert_int_equal(out.streams[mirror_table_index("todos")].rejected, 1);
	assert_int_equal(out.streams[mirror_table_index("scores")].inserted, 1);
	bloom_result_free(r);
	free(r);

	r = todo_result(TODO("31", "fine", "{\"Id\":31}"), 1);
	set_copy(r, MIRROR_T_SCORES, SCORE("500", "4"), 1);
	logged = commit_logged(db, r, &out);
	assert_null(strstr(logged, "row by row"));
	free(logged);
	assert_int_equal(out.streams[mirror_table_index("scores")].updated, 1);
	PGconn *c = admin();
	assert_int_equal(count(c, "SELECT value FROM t_load.scores WHERE id = 500"), 4);
	PQfinish(c);
	bloom_result_free(r);
	free(r);
	load_close(db);
}

/* A refused row of a table whose key has two columns is recorded, and
 * logged, with both ("meeting_id/user_id"): two attendees of one meeting
 * are two findable records, not the meeting's id twice. */
static void test_two_column_key_reject_names_both(void **state)
{
	(void)state;
	if (!getenv("PGHOST"))
		skip();
	setup(NULL);
	load_db *db = open_migrated();
	bloom_result *r = calloc(1, sizeof(*r));
	assert_non_null(r);
	set_copy(r, MIRROR_T_ATTENDEES, "12\t345\t{not json\n12\t346\t{not json\n12\t347\t{}\n", 3);
	load_batch_result out;
	char *logged = commit_logged(db, r, &out);
	int si = mirror_table_index("meeting_attendees");
	assert_int_equal(out.streams[si].rejected, 2);
	assert_int_equal(out.streams[si].inserted, 1);
	PGconn *c = admin();
	char *ids = scalar(c, "SELECT string_agg(coalesce(record_id, 'NULL'), ',' ORDER BY record_id) "
			      "FROM t_load.rejected_records WHERE stream = 'meeting_attendees'");
	assert_string_equal(ids, "12/345,12/346");
	free(ids);
	assert_non_null(strstr(logged, "rejected a meeting_attendees row (meeting_id/user_id 12/345)"));
	assert_non_null(strstr(logged, "rejected a meeting_attendees row (meeting_id/user_id 12/346)"));
	free(logged);
	PQfinish(c);
	bloom_result_free(r);
	free(r);
	load_close(db);
}

/* A row the mirror table refuses through what a user added to it (a CHECK,
 * an index on a text column) fails at the upsert, past staging: it is
 * rejected with its id like a row staging refuses, and the rest of the
 * batch is stored; the batch does not fail, nor every run after it. */
static void test_row_the_mirror_refuses_is_rejected(void **state)
{
	(void)state;
	if (!getenv("PGHOST"))
		skip();
	setup(NULL);
	load_db *db = open_migrated(); /* empty tables: rows go straight into the mirror */
	PGconn *c = admin();
	PQclear(PQexec(c, "ALTER TABLE t_load.todos ADD CONSTRAINT no_refused CHECK (name <> 'refused')"));
	load_batch_result out;
	bloom_result *r = todo_result(TODO("60", "fine", "{\"Id\":60}") TODO("61", "refused", "{\"Id\":61}"), 2);
	char *logged = commit_logged(db, r, &out);
	int si = mirror_table_index("todos");
	assert_int_equal(out.streams[si].rejected, 1);
	assert_int_equal(out.streams[si].inserted, 1);
	assert_non_null(strstr(logged, "rejected a todos row (id 61)"));
	assert_non_null(strstr(logged, "no_refused"));
	free(logged);
	bloom_result_free(r);
	free(r);
	load_close(db);

	/* a new connection: todos holds a row, so rows go through staging; an
	 * index on name refuses a name too long for it (54000) */
	db = open_migrated();
	PQclear(PQexec(c, "CREATE INDEX todos_name ON t_load.todos (name)"));
	char line[9000 + 64], name[9000 + 1];
	unsigned x = 12345;
	for (size_t i = 0; i < sizeof(name) - 1; i++) { /* letters no compression shortens */
		x = x * 1103515245u + 12345u;
		name[i] = (char)('a' + (x >> 16) % 26);
	}
	name[sizeof(name) - 1] = '\0';
	snprintf(line, sizeof(line), TODO("60", "still fine", "{\"Id\":60}") TODO("62", "refused", "{}") TODO("63", "%s", "{}"),
		 name);
	r = todo_result(line, 3);
	logged = commit_logged(db, r, &out);
	assert_int_equal(out.streams[si].rejected, 2);
	assert_int_equal(out.streams[si].updated, 1);
	assert_non_null(strstr(logged, "rejected a todos row (id 62)"));
	assert_non_null(strstr(logged, "rejected a todos row (id 63)"));
	free(logged);
	char *rows = scalar(c, "SELECT string_agg(id || '=' || name, ',' ORDER BY id) FROM t_load.todos");
	assert_string_equal(rows, "60=still fine");
	free(rows);
	assert_int_equal(count(c, "SELECT count(*) FROM t_load.rejected_records WHERE stream = 'todos' "
				  "AND record_id IN ('61', '62', '63')"),
			 3);
	PQfinish(c);
	bloom_result_free(r);
	free(r);
	load_close(db);
}

/* A digest recorded for the unit after the run found none (as a batch the
 * redo pass commits again after a server crash finds its own from before). */
static void record_digest_of_first_unit(load_db *db, const load_run *run)
{
	load_unit units[4];
	size_t n = 0;
	load_error err;
	assert_int_equal(load_units_next(db, run->id, 0, units, 4, &n, &err), 0); /* the run finds none */
	PGconn *c = admin();
	char sql[320];
	snprintf(sql, sizeof(sql),
		 "INSERT INTO t_load.sync_sources (kind, ref, digest) SELECT kind, ref, 1 FROM t_load.sync_units "
		 "WHERE run_id = %" PRId64 " AND state = 0 ORDER BY seq LIMIT 1",
		 run->id);
	PGresult *res = PQexec(c, sql);
	assert_int_equal(PQresultStatus(res), PGRES_COMMAND_OK);
	assert_string_equal(PQcmdTuples(res), "1");
	PQclear(res);
	PQfinish(c);
}

/* On an initial load, digests and yields are COPYed without a look at what
 * is there; one already there is not bad data: the batch is written again
 * replacing it, without the row-by-row pass and its warning. */
static void test_digest_met_on_an_initial_load_is_replaced(void **state)
{
	(void)state;
	if (!getenv("PGHOST"))
		skip();
	setup(NULL);
	load_db *db = open_migrated();
	bloom_result *r = todo_result(TODO("70", "a", "{\"Id\":70}"), 1);
	load_batch_result out;
	char *logged = commit_logged_at(db, r, &out, true, record_digest_of_first_unit);
	assert_null(strstr(logged, "row by row"));
	assert_null(strstr(logged, "WARN"));
	assert_non_null(strstr(logged, "met sources recorded before"));
	free(logged);
	assert_int_equal(out.streams[mirror_table_index("todos")].inserted, 1);
	PGconn *c = admin();
	assert_int_equal(count(c, "SELECT count(*) FROM t_load.sync_sources WHERE kind <> '' AND digest = 1"), 0);
	assert_int_equal(count(c, "SELECT count(*) FROM t_load.todos"), 1);
	PQfinish(c);
	bloom_result_free(r);
	free(r);
	load_close(db);
}

/* ---- a batch whose COMMIT went unanswered ----
 * load.c sends a batch's last statements, COMMIT among them, with one
 * PQsendQuery and reads their results with PQgetResult. The wraps below
 * break the connection there, once, when armed:
 *  - FAULT_LOSE_COMMIT_ACK lets the server commit, reads the COMMIT's
 *    answer and throws it away, then closes the socket: the client sees a
 *    lost connection where the server committed (as when the network or the
 *    server goes between the commit and its answer);
 *  - FAULT_KILL_BEFORE_COMMIT has the session's backend terminated (from
 *    fault_admin) just before the statements are sent: the client sees the
 *    same lost connection, and the transaction rolled back. */
typedef enum { FAULT_NONE, FAULT_LOSE_COMMIT_ACK, FAULT_KILL_BEFORE_COMMIT } db_fault;
static db_fault fault;
static PGconn *fault_admin;

int __real_PQsendQuery(PGconn *conn, const char *query);
int __wrap_PQsendQuery(PGconn *conn, const char *query);
PGresult *__real_PQgetResult(PGconn *conn);
PGresult *__wrap_PQgetResult(PGconn *conn);

int __wrap_PQsendQuery(PGconn *conn, const char *query)
{
	if (fault == FAULT_KILL_BEFORE_COMMIT && strstr(query, "COMMIT")) {
		fault = FAULT_NONE;
		char sql[96];
		/* with a timeout, it returns once the backend is gone */
		snprintf(sql, sizeof(sql), "SELECT pg_terminate_backend(%d, 10000)", PQbackendPID(conn));
		PGresult *r = PQexec(fault_admin, sql);
		assert_int_equal(PQresultStatus(r), PGRES_TUPLES_OK);
		assert_string_equal(PQgetvalue(r, 0, 0), "t");
		PQclear(r);
	}
	return __real_PQsendQuery(conn, query);
}

PGresult *__wrap_PQgetResult(PGconn *conn)
{
	PGresult *res = __real_PQgetResult(conn);
	if (fault != FAULT_LOSE_COMMIT_ACK || !res || strcmp(PQcmdStatus(res), "COMMIT") != 0)
		return res;
	fault = FAULT_NONE;
	PQclear(res);
	while ((res = __real_PQgetResult(conn)) != NULL)
		PQclear(res);
	shutdown(PQsocket(conn), SHUT_RDWR);
	PQconsumeInput(conn); /* meets the end of the stream: CONNECTION_BAD */
	assert_int_equal(PQstatus(conn), CONNECTION_BAD);
	return PQmakeEmptyPGresult(conn, PGRES_FATAL_ERROR);
}

/* A result of the first unit with two todos, a todo the mapping rejected,
 * and two children. */
static bloom_result *batch_result(void)
{
	bloom_result *r = todo_result(TODO("40", "a", "{\"Id\":40}") TODO("41", "b", "{\"Id\":41}"), 2);
	r->children = calloc(2, sizeof(*r->children));
	r->rejects = calloc(1, sizeof(*r->rejects));
	assert_non_null(r->children);
	assert_non_null(r->rejects);
	r->children[0] = (bloom_unit){BLOOM_UNIT_USER_TODOS, 5};
	r->children[1] = (bloom_unit){BLOOM_UNIT_USER_TODOS, 6};
	r->nchildren = r->children_cap = 2;
	r->rejects[0] = (bloom_reject){.stream = strdup("todos"), .id = strdup("42"),
				       .reason = strdup("DueDate: not a date"), .raw = strdup("{\"Id\":42}"),
				       .target = MIRROR_T_TODOS, .has_key = true, .key = {42, 0}};
	r->nrejects = r->rejects_cap = 1;
	return r;
}

/* Commits the batch of r (3 HTTP attempts) as the run's first unit with
 * the fault armed, which fails it as a lost connection; then reconnects
 * and commits it again, as the pipeline does. */
static void commit_through_fault(load_db *db, const load_run *run, bloom_result *r, db_fault armed,
				 load_batch_result *out)
{
	load_unit units[4];
	size_t n = 0;
	load_error err;
	assert_int_equal(load_units_next(db, run->id, 0, units, 4, &n, &err), 0);
	assert_int_equal(n, 1);
	load_item item = {.seq = units[0].seq, .unit = units[0].unit, .result = r, .attempts = 3, .retries = 2};
	load_batch b = {.run_id = run->id, .items = &item, .nitems = 1};
	fault_admin = admin();
	fault = armed;
	assert_int_equal(load_batch_commit(db, &b, out, &err), -1);
	assert_int_equal(fault, FAULT_NONE); /* the fault did strike */
	assert_int_equal(err.outcome, LOAD_RETRY);
	PQfinish(fault_admin);
	fault_admin = NULL;
	/* what the first attempt left: all of the batch, or none of it */
	char sql[128];
	snprintf(sql, sizeof(sql), "SELECT units_done FROM t_load.sync_runs WHERE id = %" PRId64, run->id);
	PGconn *c = admin();
	assert_int_equal(count(c, sql), armed == FAULT_LOSE_COMMIT_ACK ? 1 : 0);
	PQfinish(c);
	if (load_reconnect(db, &err) != 0)
		fail_msg("load_reconnect: %s", err.msg);
	if (load_batch_commit(db, &b, out, &err) != 0)
		fail_msg("load_batch_commit after reconnecting: %s", err.msg);
}

/* The batch is in the database once, and so are its counts, whichever way
 * the lost connection went. */
static void assert_batch_counted_once(const load_run *run, const load_batch_result *out)
{
	PGconn *c = admin();
	char sql[256];
	snprintf(sql, sizeof(sql),
		 "SELECT units_done || ' ' || units_known || ' ' || sources_read FROM t_load.sync_runs WHERE id = %" PRId64,
		 run->id);
	char *units = scalar(c, sql);
	assert_string_equal(units, "1 3 1");
	free(units);
	snprintf(sql, sizeof(sql),
		 "SELECT string_agg(stream || ' ' || requests || ' ' || retries || ' ' || inserted || ' ' || updated || "
		 "' ' || unchanged || ' ' || rejected, ', ' ORDER BY stream) FROM t_load.sync_run_streams "
		 "WHERE run_id = %" PRId64,
		 run->id);
	char *streams = scalar(c, sql);
	assert_string_equal(streams, "todos 0 0 2 0 0 1, users 3 2 0 0 0 0");
	free(streams);
	snprintf(sql, sizeof(sql), "SELECT count(*) FROM t_load.rejected_records WHERE run_id = %" PRId64, run->id);
	assert_int_equal(count(c, sql), 1);
	assert_int_equal(count(c, "SELECT count(*) FROM t_load.todos WHERE id IN (40, 41)"), 2);
	PQfinish(c);
	/* what the caller is told (its progress and its "more units" come from it) */
	int ti = mirror_table_index("todos"), ui = mirror_table_index("users");
	assert_int_equal(out->children_added, 2);
	assert_int_equal(out->streams[ti].inserted, 2);
	assert_int_equal(out->streams[ti].unchanged, 0);
	assert_int_equal(out->streams[ti].rejected, 1);
	assert_int_equal(out->streams[ui].requests, 3);
}

/* Commits the test batch through fault, reconnecting and redoing it as the
 * pipeline does, and checks it was counted once. */
static void redo_through(db_fault fault)
{
	setup(NULL);
	load_run run;
	load_db *db = open_new_run(&run);
	bloom_result *r = batch_result();
	load_batch_result out;
	commit_through_fault(db, &run, r, fault, &out);
	assert_batch_counted_once(&run, &out);
	bloom_result_free(r);
	free(r);
	load_close(db);
}

/* A batch whose transaction committed but whose COMMIT's answer was lost is
 * not written again after the reconnect: its units, requests and rows are
 * counted once, its rejected record kept once, and the caller still learns
 * of the children it recorded. */
static void test_redo_after_a_lost_commit_answer_counts_once(void **state)
{
	(void)state;
	redo_through(FAULT_LOSE_COMMIT_ACK);
}

/* A batch whose connection was lost before its COMMIT ran (the outcome is as
 * unknown to the client) is written whole by the redo: nothing is lost. */
static void test_redo_after_a_lost_uncommitted_batch_writes_it(void **state)
{
	(void)state;
	redo_through(FAULT_KILL_BEFORE_COMMIT);
}

/* The run lock: a second session cannot take it and is told who holds it. */
static void test_second_lock_is_refused(void **state)
{
	(void)state;
	if (!getenv("PGHOST"))
		skip();
	load_db *a = open_migrated();
	load_db *b = open_migrated();
	load_error err;
	bool got = false;
	char holder[256] = "";
	assert_int_equal(load_lock(a, &got, holder, sizeof(holder), &err), 0);
	assert_true(got);
	assert_int_equal(load_lock(b, &got, holder, sizeof(holder), &err), 0);
	assert_false(got);
	assert_non_null(strstr(holder, "backend pid"));
	load_close(a);
	/* the server lets go of a closed session's locks shortly after, not at once */
	for (int i = 0; i < 100 && !got; i++) {
		assert_int_equal(load_lock(b, &got, holder, sizeof(holder), &err), 0);
		if (!got)
			usleep(20000);
	}
	assert_true(got);
	load_close(b);
}

/* Deletes after a complete run: a row the run did not see is marked; but
 * when the yields the run wrote were lost (an UNLOGGED table emptied by a
 * server crash: its marker row is gone) nothing is marked, until the next
 * complete run, whatever it reads. */
static void test_deletes_need_intact_yields(void **state)
{
	(void)state;
	if (!getenv("PGHOST"))
		skip();
	PGconn *c = admin();
	for (int lost = 1; lost >= 0; lost--) {
		load_db *db = open_migrated();
		load_error err;
		load_run run;
		PQclear(PQexec(c, "DELETE FROM t_load.todos; INSERT INTO t_load.todos (id, name, is_complete, raw, "
				  "updated_at) VALUES (99, 'gone upstream', false, '{}', now() - interval '1 day')"));
		assert_int_equal(load_run_open(db, true, "test", ALL_STREAMS, &run, &err), 0);
		/* the run reads its unit in full, and it no longer names row 99 */
		bloom_result *r = todo_result("", 0);
		load_batch_result out;
		commit_units(db, &run, r, &out, 0);
		bloom_result_free(r);
		free(r);
		if (lost)
			PQclear(PQexec(c, "DELETE FROM t_load.sync_sources WHERE kind = ''"));
		uint64_t deleted[MIRROR_TABLE_COUNT];
		assert_int_equal(load_run_finish(db, run.id, "succeeded", NULL, true, 0xffffffffu, deleted, &err), 0);
		long long marked = count(c, "SELECT count(*) FROM t_load.todos WHERE id = 99 AND deleted_at IS NOT NULL");
		assert_int_equal(marked, lost ? 0 : 1);
		assert_int_equal(deleted[mirror_table_index("todos")], lost ? 0 : 1);
		if (lost) {
			/* the next complete run reads no body in full (its one unit
			 * unchanged) and forgets none, yet must look: it is the first
			 * since deletes were last looked for */
			assert_int_equal(load_run_open(db, true, "test", ALL_STREAMS, &run, &err), 0);
			bloom_result empty = {0};
			commit_item(db, &run, (load_item){.result = &empty, .attempts = 1, .unchanged = true}, &out, 0);
			assert_int_equal(load_run_finish(db, run.id, "succeeded", NULL, true, 0xffffffffu, deleted, &err),
					 0);
			assert_int_equal(count(c, "SELECT sources_read FROM t_load.sync_runs ORDER BY id DESC LIMIT 1"),
					 0);
			assert_int_equal(deleted[mirror_table_index("todos")], 1);
		}
		load_close(db);
	}
	PQfinish(c);
}

/* A unit read in full records its body's digest and the rows it named; the
 * next run gets the digest with the unit, and a batch that says the unit is
 * unchanged stages nothing, counts the named rows as unchanged, and the
 * complete run leaves them live. */
static void test_unchanged_source_keeps_its_rows(void **state)
{
	(void)state;
	if (!getenv("PGHOST"))
		skip();
	load_db *db = open_migrated();
	load_error err;
	load_run run;
	PGconn *c = admin();
	PQclear(PQexec(c, "DELETE FROM t_load.todos; DELETE FROM t_load.sync_sources"));
	int si = mirror_table_index("todos");
	char yields[64];
	snprintf(yields, sizeof(yields), "users\t0\t%d\t{20,21}\t\\N\n", si);
	const uint64_t digest = 0xfedcba9876543210ull; /* negative as a bigint */

	assert_int_equal(load_run_open(db, true, "test", ALL_STREAMS, &run, &err), 0);
	bloom_result *r = todo_result(TODO("20", "a", "{\"Id\":20}") TODO("21", "b", "{\"Id\":21}"), 2);
	load_batch_result out;
	uint32_t named[MIRROR_TABLE_COUNT] = {0};
	named[si] = 2;
	load_unit u = commit_item(db, &run,
				  (load_item){.result = r, .attempts = 1, .digest = digest, .yields = yields,
					      .yields_len = strlen(yields), .named = named},
				  &out, 0);
	assert_false(u.has_digest);
	assert_int_equal(out.streams[si].inserted, 2);
	assert_int_equal(load_run_finish(db, run.id, "succeeded", NULL, true, 0xffffffffu, NULL, &err), 0);
	bloom_result_free(r);
	free(r);

	assert_int_equal(load_run_open(db, true, "test", ALL_STREAMS, &run, &err), 0);
	bloom_result empty = {.unit = u.unit};
	u = commit_item(db, &run, (load_item){.result = &empty, .attempts = 1, .unchanged = true}, &out, 0);
	assert_true(u.has_digest);
	assert_true(u.digest == digest);
	/* the counts come back with the digest (sql/007_source_counts.sql) */
	assert_true(u.has_named);
	assert_memory_equal(u.named, named, sizeof(named));
	/* an unchanged item without counts has its yields counted */
	assert_int_equal(out.streams[si].inserted + out.streams[si].updated, 0);
	assert_int_equal(out.streams[si].unchanged, 2);

	uint64_t deleted[MIRROR_TABLE_COUNT];
	assert_int_equal(load_run_finish(db, run.id, "succeeded", NULL, true, 0xffffffffu, deleted, &err), 0);
	assert_int_equal(deleted[si], 0);
	assert_int_equal(count(c, "SELECT count(*) FROM t_load.todos WHERE id IN (20, 21) AND deleted_at IS NULL"), 2);
	assert_int_equal(count(c, "SELECT sources_read FROM t_load.sync_runs ORDER BY id DESC LIMIT 1"), 0);

	/* an unchanged item with counts has them taken as they are (5 tells the
	 * two ways apart), in the batch's result and in sync_run_streams */
	uint32_t five[MIRROR_TABLE_COUNT] = {0};
	five[si] = 5;
	assert_int_equal(load_run_open(db, true, "test", ALL_STREAMS, &run, &err), 0);
	commit_item(db, &run, (load_item){.result = &empty, .attempts = 1, .unchanged = true, .named = five}, &out, 0);
	assert_int_equal(out.streams[si].unchanged, 5);
	char sql[160];
	snprintf(sql, sizeof(sql),
		 "SELECT unchanged FROM t_load.sync_run_streams WHERE stream = 'todos' AND run_id = %" PRId64, run.id);
	assert_int_equal(count(c, sql), 5);
	assert_int_equal(load_run_finish(db, run.id, "succeeded", NULL, true, 0xffffffffu, NULL, &err), 0);
	PQfinish(c);
	load_close(db);
}

/* A run with units still pending cannot be completed (its pending units
 * name rows that would be marked deleted): it stays open to be resumed. */
static void test_run_with_pending_units_does_not_complete(void **state)
{
	(void)state;
	load_run run;
	load_error err;
	load_db *db = open_new_run(&run); /* its first units are pending */
	assert_int_equal(load_run_finish(db, run.id, "succeeded", NULL, true, 0xffffffffu, NULL, &err), -1);
	assert_int_equal(err.outcome, LOAD_ERROR);
	assert_non_null(strstr(err.msg, "still pending"));
	PGconn *c = admin();
	char sql[160];
	snprintf(sql, sizeof sql, "SELECT status FROM t_load.sync_runs WHERE id = %lld", (long long)run.id);
	PGresult *res = PQexec(c, sql);
	assert_string_equal(PQgetvalue(res, 0, 0), "running");
	PQclear(res);
	PQfinish(c);
	/* ended as failed, it is recorded */
	assert_int_equal(load_run_finish(db, run.id, "failed", "x", false, 0, NULL, &err), 0);
	load_close(db);
}

/* A unit is marked done by its own item only: seq, kind and ref. After a
 * server crash that lost commits the bigserial hands out numbers again, and
 * a job in flight can carry a seq that now names another unit. */
static void test_unit_done_only_by_its_own_kind_and_ref(void **state)
{
	(void)state;
	load_run run;
	load_error err;
	load_db *db = open_new_run(&run);
	load_unit units[64];
	size_t n = 0;
	assert_int_equal(load_units_next(db, run.id, 0, units, 64, &n, &err), 0);
	assert_true(n >= 1 && n < 64); /* all of them read */
	bloom_result empty = {.unit = {.kind = BLOOM_UNIT_MEETING_TODOS, .ref = 424242}};
	load_item item = {.seq = units[0].seq, .unit = empty.unit, .result = &empty, .attempts = 1};
	load_batch b = {.run_id = run.id, .items = &item, .nitems = 1};
	load_batch_result out;
	assert_int_equal(load_batch_commit(db, &b, &out, &err), 0);
	size_t m = 0;
	load_unit after[64];
	assert_int_equal(load_units_next(db, run.id, 0, after, 64, &m, &err), 0);
	assert_int_equal(m, n); /* the unit that seq names is still pending */
	assert_int_equal(after[0].seq, units[0].seq);
	PGconn *c = admin();
	char q[128];
	snprintf(q, sizeof q, "SELECT units_done FROM t_load.sync_runs WHERE id = %" PRId64, run.id);
	assert_int_equal(count(c, q), 0); /* and is not counted done */
	assert_int_equal(out.units_marked, 0); /* not by the session either */
	/* its own item marks it done */
	item.unit = units[0].unit;
	empty.unit = units[0].unit;
	assert_int_equal(load_batch_commit(db, &b, &out, &err), 0);
	assert_int_equal(load_units_next(db, run.id, 0, after, 64, &m, &err), 0);
	assert_int_equal(m, n - 1);
	assert_int_equal(count(c, q), 1);
	assert_int_equal(out.units_marked, 1);
	/* the same unit again (a server crash lost the commit's answer, not
	 * the commit) is done once */
	assert_int_equal(load_batch_commit(db, &b, &out, &err), 0);
	assert_int_equal(count(c, q), 1);
	assert_int_equal(out.units_marked, 0);
	PQfinish(c);
	load_close(db);
}

/* state of the run's unit seq: 0 pending, 1 done, 2 vanished */
static long long unit_state(PGconn *c, const load_run *run, int64_t seq)
{
	char sql[160];
	snprintf(sql, sizeof sql, "SELECT state FROM t_load.sync_units WHERE run_id = %" PRId64 " AND seq = %" PRId64,
		 run->id, seq);
	return count(c, sql);
}

/* A batch marks its done units done and its vanished (404) units vanished,
 * whether it holds both kinds, or vanished units only; each counts once in
 * the run's units_done and a vanished one as skipped in its stream. */
static void test_done_and_vanished_units_in_a_batch(void **state)
{
	(void)state;
	load_run run;
	load_error err;
	load_db *db = open_new_run(&run);
	PGconn *c = admin();
	char sql[200];
	load_unit u[64];
	size_t n = 0;

	/* the run's first unit, vanished, alone in its batch */
	assert_int_equal(load_units_next(db, run.id, 0, u, 64, &n, &err), 0);
	assert_int_equal(n, 1);
	load_item gone = {.seq = u[0].seq, .unit = u[0].unit, .result = NULL, .attempts = 2};
	load_batch b = {.run_id = run.id, .items = &gone, .nitems = 1};
	load_batch_result out;
	assert_int_equal(load_batch_commit(db, &b, &out, &err), 0);
	assert_int_equal(unit_state(c, &run, u[0].seq), 2);
	int si = mirror_table_index(bloom_unit_stream(u[0].unit.kind));
	assert_true(si >= 0);
	assert_int_equal(out.streams[si].skipped, 1);
	assert_int_equal(out.streams[si].requests, 2);
	snprintf(sql, sizeof sql, "SELECT units_done FROM t_load.sync_runs WHERE id = %" PRId64, run.id);
	assert_int_equal(count(c, sql), 1);
	snprintf(sql, sizeof sql,
		 "SELECT skipped FROM t_load.sync_run_streams WHERE run_id = %" PRId64 " AND stream = '%s'", run.id,
		 mirror_tables[si]);
	assert_int_equal(count(c, sql), 1);

	/* a new run: its first unit names two, one done and one vanished in a batch */
	assert_int_equal(load_run_open(db, true, "test", ALL_STREAMS, &run, &err), 0);
	assert_int_equal(load_units_next(db, run.id, 0, u, 64, &n, &err), 0);
	assert_int_equal(n, 1);
	bloom_unit kids[2] = {{.kind = BLOOM_UNIT_MEETING_TODOS, .ref = 31}, {.kind = BLOOM_UNIT_MEETING_TODOS, .ref = 32}};
	bloom_result parent = {.unit = u[0].unit, .children = kids, .nchildren = 2, .children_cap = 2};
	load_item first = {.seq = u[0].seq, .unit = u[0].unit, .result = &parent, .attempts = 1};
	b = (load_batch){.run_id = run.id, .items = &first, .nitems = 1};
	assert_int_equal(load_batch_commit(db, &b, &out, &err), 0);
	assert_int_equal(out.children_added, 2);
	assert_int_equal(load_units_next(db, run.id, 0, u, 64, &n, &err), 0);
	assert_int_equal(n, 2);
	bloom_result empty = {.unit = u[0].unit};
	load_item mixed[2] = {{.seq = u[0].seq, .unit = u[0].unit, .result = &empty, .attempts = 1},
			      {.seq = u[1].seq, .unit = u[1].unit, .result = NULL, .attempts = 1}};
	b = (load_batch){.run_id = run.id, .items = mixed, .nitems = 2};
	assert_int_equal(load_batch_commit(db, &b, &out, &err), 0);
	assert_int_equal(unit_state(c, &run, u[0].seq), 1);
	assert_int_equal(unit_state(c, &run, u[1].seq), 2);
	assert_int_equal(out.streams[mirror_table_index("todos")].skipped, 1);
	snprintf(sql, sizeof sql, "SELECT units_done || '/' || units_known FROM t_load.sync_runs WHERE id = %" PRId64,
		 run.id);
	char *done = scalar(c, sql);
	assert_string_equal(done, "3/3");
	free(done);
	PQfinish(c);
	load_close(db);
}

/* A pending unit of a kind this version does not know (queued by a newer
 * one) fails the read, naming it: skipping it would let the run complete
 * (and mark rows deleted) without it, and a page of nothing but such units
 * read as the end of the work. */
static void test_unknown_unit_kind_fails_the_read(void **state)
{
	(void)state;
	load_run run;
	load_error err;
	load_db *db = open_new_run(&run);
	PGconn *c = admin();
	char sql[200];
	snprintf(sql, sizeof sql, "INSERT INTO t_load.sync_units (run_id, kind, ref) VALUES (%lld, 'future_kind', 9)",
		 (long long)run.id);
	PQclear(PQexec(c, sql));
	load_unit units[4];
	size_t n = 99;
	assert_int_equal(load_units_next(db, run.id, 0, units, 4, &n, &err), -1);
	assert_int_equal(err.outcome, LOAD_ERROR);
	assert_non_null(strstr(err.msg, "unit of kind 'future_kind'"));
	PQfinish(c);
	load_close(db);
}

/* ---- migrations ---- */

/* A session on a schema of its own, fresh (dropped first), not migrated. */
static load_db *open_fresh(PGconn *c, const char *name)
{
	char sql[256];
	snprintf(sql, sizeof(sql), "SET client_min_messages = warning; DROP SCHEMA IF EXISTS %s CASCADE", name);
	PQclear(PQexec(c, sql));
	load_error err;
	load_db *db = load_open("", name, &err);
	if (!db)
		fail_msg("load_open: %s", err.msg);
	return db;
}

static void exec_ok(PGconn *c, const char *sql)
{
	PGresult *r = PQexec(c, sql);
	if (PQresultStatus(r) != PGRES_COMMAND_OK)
		fail_msg("%s: %s", sql, PQresultErrorMessage(r));
	PQclear(r);
}

/* migrate applies nothing while a sync holds the run lock: it fails with
 * LOAD_SQLSTATE_LOCKED and names the holder, as a second sync is told. The
 * session holding the lock migrates (a sync's own migrate), and a migrate
 * leaves the lock as it found it. */
static void test_migrate_refuses_while_a_sync_holds_the_lock(void **state)
{
	(void)state;
	if (!getenv("PGHOST"))
		skip();
	PGconn *c = admin();
	load_db *sync = open_fresh(c, "t_load_mig");
	load_error err;
	int applied = 0;
	assert_int_equal(load_migrate(sync, &applied, &err), 0);
	assert_int_equal(applied, (int)load_migrations_count);
	const char *forget = "DELETE FROM t_load_mig.schema_migrations WHERE version = '008_run_streams'";
	const char *has_008 = "SELECT count(*) FROM t_load_mig.schema_migrations WHERE version = '008_run_streams'";
	exec_ok(c, forget);
	bool got = false;
	char holder[256] = "";
	assert_int_equal(load_lock(sync, &got, holder, sizeof(holder), &err), 0);
	assert_true(got);

	load_db *other = load_open("", "t_load_mig", &err);
	assert_non_null(other);
	int rc = load_migrate(other, &applied, &err);
	if (rc == 0)
		fail_msg("migrate applied %d migration(s) under a running sync", applied);
	assert_int_equal(applied, 0);
	assert_int_equal(err.outcome, LOAD_ERROR);
	assert_string_equal(err.sqlstate, LOAD_SQLSTATE_LOCKED);
	assert_non_null(strstr(err.msg, "another sync holds the lock for schema t_load_mig: "));
	assert_non_null(strstr(err.msg, "backend pid"));
	assert_int_equal(count(c, has_008), 0);

	/* the holder's own session migrates, and keeps its lock */
	assert_int_equal(load_migrate(sync, &applied, &err), 0);
	assert_int_equal(applied, 1);
	assert_int_equal(count(c, has_008), 1);
	assert_int_equal(load_lock(other, &got, holder, sizeof(holder), &err), 0);
	assert_false(got);
	load_close(sync);

	/* once the sync is gone, migrate applies it, and lets the lock go */
	exec_ok(c, forget);
	rc = -1;
	for (int i = 0; i < 100 && rc != 0; i++) {
		rc = load_migrate(other, &applied, &err);
		if (rc != 0) {
			assert_string_equal(err.sqlstate, LOAD_SQLSTATE_LOCKED);
			usleep(20000);
		}
	}
	assert_int_equal(rc, 0);
	assert_int_equal(applied, 1);
	load_db *next = load_open("", "t_load_mig", &err);
	assert_non_null(next);
	assert_int_equal(load_lock(next, &got, holder, sizeof(holder), &err), 0);
	assert_true(got);
	load_close(next);
	load_close(other);
	PQfinish(c);
}

/* A schema that records a migration this binary does not embed was
 * migrated by a newer bloomsync: migrate (so sync) and the pending count
 * (check, status) refuse it, and nothing pending is applied. */
static void test_newer_schema_is_refused(void **state)
{
	(void)state;
	if (!getenv("PGHOST"))
		skip();
	PGconn *c = admin();
	load_db *db = open_fresh(c, "t_load_newer");
	load_error err;
	int applied = 0;
	assert_int_equal(load_migrate(db, &applied, &err), 0);
	exec_ok(c, "DELETE FROM t_load_newer.schema_migrations WHERE version = '008_run_streams'; "
		   "INSERT INTO t_load_newer.schema_migrations (version) VALUES ('990_from_the_future')");
	const char *want = "schema t_load_newer was migrated by a newer bloomsync (migration 990_from_the_future); "
			   "upgrade bloomsync";
	memset(&err, 0, sizeof(err));
	assert_int_equal(load_migrate(db, &applied, &err), -1);
	assert_int_equal(applied, 0);
	assert_int_equal(err.outcome, LOAD_ERROR);
	assert_string_equal(err.msg, want);
	assert_int_equal(count(c, "SELECT count(*) FROM t_load_newer.schema_migrations WHERE version = '008_run_streams'"),
			 0);
	int pending = 0;
	memset(&err, 0, sizeof(err));
	assert_int_equal(load_pending_migrations(db, &pending, &err), -1);
	assert_string_equal(err.msg, want);
	load_close(db);
	PQfinish(c);
}

/* Each migration applied is recorded with the md5 of its text, as
 * PostgreSQL computes it from the text migrate ran. */
static void test_migrations_record_their_checksum(void **state)
{
	(void)state;
	if (!getenv("PGHOST"))
		skip();
	PGconn *c = admin();
	load_db *db = open_fresh(c, "t_load_sums");
	load_error err;
	int applied = 0;
	assert_int_equal(load_migrate(db, &applied, &err), 0);
	load_close(db);
	for (size_t i = 0; i < load_migrations_count; i++) {
		const char *vals[] = {load_migrations[i].version, load_migrations[i].sql};
		PGresult *r = PQexecParams(c,
					   "SELECT checksum = md5($2) FROM t_load_sums.schema_migrations "
					   "WHERE version = $1",
					   2, NULL, vals, NULL, NULL, 0);
		if (PQresultStatus(r) != PGRES_TUPLES_OK || PQntuples(r) != 1)
			fail_msg("%s: %s", load_migrations[i].version, PQresultErrorMessage(r));
		if (strcmp(PQgetvalue(r, 0, 0), "t") != 0)
			fail_msg("%s: recorded checksum is not the md5 of its text", load_migrations[i].version);
		PQclear(r);
	}
	PQfinish(c);
}

/* ------------------------------------ one record from two kinds of list */

/* A list as bloomsync reads it: its unit and its body. */
typedef struct {
	bloom_unit_kind kind;
	int64_t ref;
	const char *body;
} list_src;

/* Appends what body of src maps to onto acc (rows of every target). */
static void add_parsed(bloom_result *acc, const list_src *src)
{
	bloom_unit u = {src->kind, src->ref};
	bloom_result r;
	char err[256];
	if (bloom_parse(&u, src->body, strlen(src->body), &r, err, sizeof(err)) != 0)
		fail_msg("bloom_parse: %s", err);
	assert_int_equal(r.nrejects, 0);
	for (int t = 0; t < MIRROR_T_COUNT; t++) {
		if (!r.nrows[t])
			continue;
		bloom_buf *b = &acc->copy[t];
		b->data = realloc(b->data, b->len + r.copy[t].len + 1);
		memcpy(b->data + b->len, r.copy[t].data, r.copy[t].len);
		b->len += r.copy[t].len;
		b->data[b->len] = '\0';
		b->cap = b->len + 1;
		acc->nrows[t] += r.nrows[t];
	}
	bloom_result_free(&r);
}

/* Commits the lists srcs[0..n) as one batch of a new run, in that order;
 * returns the rows the batch updated in table. */
static uint64_t commit_lists(load_db *db, const list_src *const *srcs, size_t n, const char *table)
{
	bloom_result acc = {0};
	for (size_t i = 0; i < n; i++)
		add_parsed(&acc, srcs[i]);
	load_error err;
	load_run run;
	assert_int_equal(load_run_open(db, true, "test", ALL_STREAMS, &run, &err), 0);
	load_batch_result out;
	commit_item(db, &run, (load_item){.result = &acc, .attempts = 1, .digest = 1}, &out, 0);
	assert_int_equal(load_run_finish(db, run.id, "failed", NULL, false, 0, NULL, &err), 0);
	bloom_result_free(&acc);
	return out.streams[mirror_table_index(table)].updated;
}

/* Empties table; with others, leaves a row of another key in
 * table, so that the next session upserts every row (prefilter included)
 * rather than COPYing the first of each key straight in. */
static void reset_table(const char *table, bool others)
{
	PGconn *c = admin();
	char sql[512];
	snprintf(sql, sizeof(sql), "DELETE FROM t_load.%s", table);
	PQclear(PQexec(c, sql));
	if (others) {
		snprintf(sql, sizeof(sql),
			 "INSERT INTO t_load.%s SELECT (jsonb_populate_record(NULL::t_load.%s, "
			 "'{\"id\": 1, \"name\": \"other\", \"is_complete\": false, \"is_archived\": false, "
			 "\"raw\": {}, \"first_seen_at\": \"2000-01-01Z\", \"updated_at\": \"2000-01-01Z\"}')).*",
			 table, table);
		PGresult *r = PQexec(c, sql);
		if (PQresultStatus(r) != PGRES_COMMAND_OK)
			fail_msg("%s: %s", sql, PQresultErrorMessage(r));
		PQclear(r);
	}
	PQfinish(c);
}

/* A record that lists a and b both name ends as want (query's one value)
 * whatever the order: a then b or b then a, in two batches or in one, into
 * an empty table (rows COPYed straight in) or not. Then either list read
 * again, as unchanged as it is, changes nothing (no update, no flip). */
static void check_two_lists(const char *table, const list_src *a, const list_src *b, const char *query,
			    const char *want)
{
	const list_src *ab[] = {a, b}, *ba[] = {b, a};
	const list_src *const *orders[] = {ab, ba};
	PGconn *c = admin();
	for (int others = 0; others < 2; others++)
		for (int o = 0; o < 2; o++)
			for (int one_batch = 0; one_batch < 2; one_batch++) {
				reset_table(table, others);
				load_db *db = open_migrated(); /* a session that sees the table as it is now */
				if (one_batch) {
					commit_lists(db, orders[o], 2, table);
				} else {
					commit_lists(db, orders[o], 1, table);
					commit_lists(db, orders[o] + 1, 1, table);
				}
				char *got = scalar(c, query);
				if (strcmp(got, want) != 0)
					fail_msg("%s: %s first, %s, %s table: got [%s], want [%s]", table,
						 bloom_unit_kind_name(orders[o][0]->kind),
						 one_batch ? "one batch" : "two batches", others ? "non-empty" : "empty",
						 got, want);
				free(got);
				for (int again = 0; again < 2; again++) {
					uint64_t updated = commit_lists(db, orders[again], 1, table);
					got = scalar(c, query);
					if (updated != 0 || strcmp(got, want) != 0)
						fail_msg("%s: %s read again: %" PRIu64 " updated, got [%s], want [%s]",
							 table, bloom_unit_kind_name(orders[again][0]->kind), updated,
							 got, want);
					free(got);
				}
				load_close(db);
			}
	PQfinish(c);
}

/* owner_id is Owner.Id, else the user whose list it came from: a meeting's
 * list, which cannot know that user, does not erase the one a user's list
 * gave. */
static void test_todo_owner_from_two_lists(void **state)
{
	(void)state;
	if (!getenv("PGHOST"))
		skip();
#define OWNERLESS_TODO "[{\"Id\":900,\"Name\":\"t\",\"Complete\":false,\"Owner\":null,\"OriginId\":456,\"Origin\":\"W\"}]"
	list_src meeting = {BLOOM_UNIT_MEETING_TODOS, 456, OWNERLESS_TODO};
	list_src user = {BLOOM_UNIT_USER_TODOS, 77, OWNERLESS_TODO};
	check_two_lists("todos", &meeting, &user, "SELECT owner_id FROM t_load.todos WHERE id = 900", "77");
	/* an Owner both lists name is that owner */
	list_src meeting_o = {BLOOM_UNIT_MEETING_TODOS, 456, "[{\"Id\":900,\"Name\":\"t\",\"Complete\":false,\"Owner\":{\"Id\":5}}]"};
	list_src user_o = {BLOOM_UNIT_USER_TODOS, 5, "[{\"Id\":900,\"Name\":\"t\",\"Complete\":false,\"Owner\":{\"Id\":5}}]"};
	check_two_lists("todos", &meeting_o, &user_o, "SELECT owner_id FROM t_load.todos WHERE id = 900", "5");
}

/* name is Name (list) / Basics.Name (detail): a detail without Basics keeps
 * the list's name; a detail with one has its name win. */
static void test_meeting_name_from_list_and_detail(void **state)
{
	(void)state;
	if (!getenv("PGHOST"))
		skip();
	list_src list = {BLOOM_UNIT_USER_MEETINGS, 77, "[{\"Id\":101,\"Name\":\"ListName101\"}]"};
	list_src bare = {BLOOM_UNIT_MEETING, 101, "{\"Id\":101,\"CreateTime\":\"2024-06-01T10:00:00Z\"}"};
	list_src full = {BLOOM_UNIT_MEETING, 101, "{\"Id\":101,\"Basics\":{\"Name\":\"Detail\"}}"};
	const char *q = "SELECT name || ' ' || coalesce(created_at::text, '-') FROM t_load.meetings WHERE id = 101";
	check_two_lists("meetings", &list, &bare, q, "ListName101 2024-06-01 10:00:00+00");
	check_two_lists("meetings", &list, &full, q, "Detail -");
}

/* A user's list, whose headlines carry OriginId and Archived, owns raw and
 * is_archived; a meeting's list (without them) does not flip them back. */
static void test_headline_from_two_lists(void **state)
{
	(void)state;
	if (!getenv("PGHOST"))
		skip();
	list_src meeting = {BLOOM_UNIT_MEETING_HEADLINES, 456,
			    "[{\"Id\":700,\"Name\":\"h\",\"Owner\":{\"Id\":3},\"Origin\":\"W\"}]"};
	list_src user = {BLOOM_UNIT_USER_HEADLINES, 3,
			 "[{\"Id\":700,\"Name\":\"h\",\"Owner\":{\"Id\":3},\"Origin\":\"W\",\"OriginId\":456,"
			 "\"Archived\":true}]"};
	check_two_lists("headlines", &meeting, &user,
			"SELECT meeting_id || ' ' || is_archived || ' ' || (raw ? 'OriginId') FROM t_load.headlines "
			"WHERE id = 700",
			"456 true true");
}

/* A rejected record keeps what the API sent, but not a secret it echoed:
 * the key in a value is "[redacted]" in rejected_records' reason and raw. */
static void test_rejects_keep_no_secret(void **state)
{
	(void)state;
	if (!getenv("PGHOST"))
		skip();
	log_add_secret("K-s3cr3t-key-4711");
	load_db *db = open_migrated();
	bloom_unit u = {BLOOM_UNIT_USER_TODOS, 5};
	const char *body = "[{\"Id\":902,\"Name\":\"t\",\"Complete\":false,\"DueDate\":\"K-s3cr3t-key-4711\"}]";
	bloom_result r;
	char perr[256];
	assert_int_equal(bloom_parse(&u, body, strlen(body), &r, perr, sizeof(perr)), 0);
	assert_int_equal(r.nrejects, 1);
	load_error err;
	load_run run;
	assert_int_equal(load_run_open(db, true, "test", ALL_STREAMS, &run, &err), 0);
	load_batch_result out;
	commit_item(db, &run, (load_item){.result = &r, .attempts = 1, .digest = 1}, &out, 0);
	bloom_result_free(&r);
	load_close(db);
	PGconn *c = admin();
	char q[256];
	snprintf(q, sizeof q,
		 "SELECT count(*) FROM t_load.rejected_records WHERE run_id = %" PRId64
		 " AND reason LIKE '%%[redacted]%%' AND raw LIKE '%%\"DueDate\":\"[redacted]\"%%'",
		 run.id);
	assert_int_equal(count(c, q), 1);
	snprintf(q, sizeof q,
		 "SELECT count(*) FROM t_load.rejected_records WHERE reason LIKE '%%s3cr3t%%' OR raw LIKE '%%s3cr3t%%'");
	assert_int_equal(count(c, q), 0);
	PQfinish(c);
}

/* A date with more than six fraction digits (.NET writes seven) lands as
 * PostgreSQL rounds the same text typed in SQL: to the nearest microsecond,
 * carried into the next day if need be; never cut. */
static void test_dates_round_to_the_microsecond(void **state)
{
	(void)state;
	if (!getenv("PGHOST"))
		skip();
	reset_table("todos", true);
	load_db *db = open_migrated();
	list_src list = {BLOOM_UNIT_USER_TODOS, 5,
			 "[{\"Id\":901,\"Name\":\"t\",\"Complete\":true,\"Owner\":{\"Id\":5},"
			 "\"CreateTime\":\"2024-06-01T10:00:00.1234567Z\",\"CompleteTime\":\"2024-12-31T23:59:59.999999901\"}]"};
	const list_src *one[] = {&list};
	commit_lists(db, one, 1, "todos");
	load_close(db);
	PGconn *c = admin();
	char *got = scalar(c, "SELECT to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.US') || ' ' || "
			      "to_char(completed_at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.US') "
			      "FROM t_load.todos WHERE id = 901");
	assert_string_equal(got, "2024-06-01 10:00:00.123457 2025-01-01 00:00:00.000000");
	free(got);
	PQfinish(c);
}

int main(void)
{
	log_init(LOG_ERROR, LOG_FORMAT_TEXT);
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_bad_row_is_rejected_not_dropped),
	    cmocka_unit_test(test_upsert_is_idempotent),
	    cmocka_unit_test(test_second_lock_is_refused),
	    cmocka_unit_test(test_deletes_need_intact_yields),
	    cmocka_unit_test(test_unchanged_source_keeps_its_rows),
	    cmocka_unit_test(test_same_key_again_into_an_empty_table),
	    cmocka_unit_test(test_isolated_rows_are_noted),
	    cmocka_unit_test(test_two_column_key_reject_names_both),
	    cmocka_unit_test(test_row_the_mirror_refuses_is_rejected),
	    cmocka_unit_test(test_digest_met_on_an_initial_load_is_replaced),
	    cmocka_unit_test(test_redo_after_a_lost_commit_answer_counts_once),
	    cmocka_unit_test(test_redo_after_a_lost_uncommitted_batch_writes_it),
	    cmocka_unit_test(test_unknown_unit_kind_fails_the_read),
	    cmocka_unit_test(test_run_with_pending_units_does_not_complete),
	    cmocka_unit_test(test_unit_done_only_by_its_own_kind_and_ref),
	    cmocka_unit_test(test_done_and_vanished_units_in_a_batch),
	    cmocka_unit_test(test_migrate_refuses_while_a_sync_holds_the_lock),
	    cmocka_unit_test(test_newer_schema_is_refused),
	    cmocka_unit_test(test_migrations_record_their_checksum),
	    cmocka_unit_test(test_todo_owner_from_two_lists),
	    cmocka_unit_test(test_meeting_name_from_list_and_detail),
	    cmocka_unit_test(test_headline_from_two_lists),
	    cmocka_unit_test(test_dates_round_to_the_microsecond),
	    cmocka_unit_test(test_rejects_keep_no_secret),
	};
	return cmocka_run_group_tests(tests, setup, NULL);
}
