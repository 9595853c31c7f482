/* load.c — all of bloomsync's SQL (see load.h). */
#include "load.h"

#include <inttypes.h>
#include <jansson.h>
#include <libpq-fe.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "hash.h"
#include "load_migrations.h"
#include "log.h"

/* Advisory lock keys: a fixed class ("Bloo") and a hash of the schema name;
 * advisory locks are per database already. Migrations take their own key
 * (one migrating session at a time) and, to apply anything, the run lock
 * as well (see load_migrate). */
#define LOCK_CLASS 0x426c6f6f
#define MIGRATE_CLASS 0x426c6f70

struct load_db {
	PGconn *conn;
	char *conninfo;
	char *schema;
	bool locked;        /* this session holds the run lock */
	bool lost_lock;     /* another session took it while this one reconnected */
	bool cancel_on_signal; /* its statements are cancelled by load_cancel_from_signal */
	bool staging_ready; /* temp staging tables exist on this connection */
	/* per mirror table: empty when this connection's staging was set up
	 * (an initial load), so its upserts skip the unchanged-row pre-filter */
	bool was_empty[MIRROR_TABLE_COUNT];
	/* per target: its rows may be COPYed straight into the mirror table
	 * (see "rows written straight into the mirror") */
	bool direct[MIRROR_T_COUNT];
	hash_filter *written; /* keys this connection wrote that way */
	/* sync_sources held no digest and sync_yields no yield when the run
	 * was opened (see check_sources) */
	bool sources_checked, no_sources;
	int64_t sources_run; /* the run they were checked for */
	/* units this connection added, and how many when it last analyzed
	 * sync_units (see analyze_units) */
	int64_t units_added, units_analyzed;
	/* an isolating attempt's counts of rows upserted one by one: each row's
	 * upsert wrote them already, so the batch's counts statement must not */
	load_counts iso_counts[MIRROR_TABLE_COUNT];
	size_t staging_dead[MIRROR_T_COUNT]; /* rows through stg_N since its last TRUNCATE */
	/* A batch whose transaction's COMMIT was sent but whose outcome was never
	 * learned (see batch_committed) */
	struct {
		bool pending;
		int64_t run_id, first_seq; /* which batch: the redo is the same one */
		size_t nitems;
		load_batch_result out;     /* what that attempt had counted */
	} unsure;
};

#define STAGING_DEAD_ROWS 2000

static double mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

/* ---- small string builder ---- */

typedef struct sbuf {
	char *data;
	size_t len, cap;
	bool failed;
} sbuf;

static void sb_reserve(sbuf *b, size_t extra)
{
	if (b->failed || b->len + extra + 1 <= b->cap)
		return;
	size_t cap = b->cap ? b->cap : 256;
	while (cap < b->len + extra + 1)
		cap *= 2;
	char *p = realloc(b->data, cap);
	if (!p) {
		b->failed = true;
		return;
	}
	b->data = p;
	b->cap = cap;
}

static void sb_add(sbuf *b, const char *s, size_t n)
{
	sb_reserve(b, n);
	if (b->failed)
		return;
	memcpy(b->data + b->len, s, n);
	b->len += n;
	b->data[b->len] = '\0';
}

static void sb_printf(sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void sb_printf(sbuf *b, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0) {
		b->failed = true;
		return;
	}
	sb_reserve(b, (size_t)n);
	if (b->failed)
		return;
	va_start(ap, fmt);
	vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
	va_end(ap);
	b->len += (size_t)n;
}

static void sb_free(sbuf *b)
{
	free(b->data);
	*b = (sbuf){0};
}

/* Appends s escaped for COPY text format. */
static void sb_copy_text(sbuf *b, const char *s)
{
	if (!s) {
		sb_add(b, "\\N", 2);
		return;
	}
	for (const char *p = s; *p; p++) {
		switch (*p) {
		case '\\': sb_add(b, "\\\\", 2); break;
		case '\n': sb_add(b, "\\n", 2); break;
		case '\r': sb_add(b, "\\r", 2); break;
		case '\t': sb_add(b, "\\t", 2); break;
		default: sb_add(b, p, 1);
		}
	}
}

/* ---- errors: the one place that decides OK / RETRY / ERROR ---- */

static void set_error(load_error *err, load_outcome outcome, const char *sqlstate, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void set_error(load_error *err, load_outcome outcome, const char *sqlstate, const char *fmt, ...)
{
	if (!err)
		return;
	err->outcome = outcome;
	snprintf(err->sqlstate, sizeof(err->sqlstate), "%s", sqlstate ? sqlstate : "");
	char tmp[sizeof(err->msg)];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(tmp, sizeof(tmp), fmt, ap);
	va_end(ap);
	/* libpq messages end in newlines and may span lines: keep one line */
	for (char *p = tmp; *p; p++)
		if (*p == '\n' || *p == '\r' || *p == '\t')
			*p = (p[1] == '\0') ? '\0' : ' ';
	log_redact(tmp, err->msg, sizeof(err->msg));
}

static load_outcome classify(PGconn *conn, const char *sqlstate)
{
	if (PQstatus(conn) == CONNECTION_BAD)
		return LOAD_RETRY;
	/* every error the server sends has a SQLSTATE: one without is libpq's
	 * own. A connection that broke under a call may not show in PQstatus
	 * yet ("server closed the connection unexpectedly" on a send after an
	 * immediate shutdown): reading makes it show. Others (out of memory,
	 * a protocol state) fail at once rather than after a minute of
	 * reconnects. */
	if (!sqlstate || !*sqlstate)
		return PQconsumeInput(conn) == 0 || PQstatus(conn) == CONNECTION_BAD ? LOAD_RETRY : LOAD_ERROR;
	if (strncmp(sqlstate, "08", 2) == 0 || strcmp(sqlstate, "40001") == 0 || strcmp(sqlstate, "40P01") == 0 ||
	    strcmp(sqlstate, "57P01") == 0 || strcmp(sqlstate, "57P02") == 0 || strcmp(sqlstate, "57P03") == 0)
		return LOAD_RETRY;
	return LOAD_ERROR;
}

/* Fills err from a failed result (or the connection) and clears the result. */
static void set_signal_cancel(PGcancel *c, int fd);

static int fail_result(load_db *db, PGresult *res, load_error *err, const char *what)
{
	const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
	const char *msg = res ? PQresultErrorMessage(res) : "";
	if (!msg || !*msg)
		msg = PQerrorMessage(db->conn);
	set_error(err, classify(db->conn, state), state, "%s: %s", what, msg);
	PQclear(res);
	/* libpq closed the socket of a lost connection: its number, free for
	 * reuse (by a curl transfer, say), must not stay published to
	 * load_abandon_from_signal */
	if (db->cancel_on_signal && PQstatus(db->conn) == CONNECTION_BAD)
		set_signal_cancel(NULL, -1);
	return -1;
}

static bool result_ok(PGresult *res)
{
	ExecStatusType st = PQresultStatus(res);
	return st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK;
}

/* Runs one statement (or several, without parameters) and discards results. */
static int exec_sql(load_db *db, const char *sql, load_error *err, const char *what)
{
	PGresult *res = PQexec(db->conn, sql);
	if (!result_ok(res))
		return fail_result(db, res, err, what);
	PQclear(res);
	return 0;
}

static PGresult *exec_params(load_db *db, const char *sql, int n, const char *const *vals, load_error *err,
			     const char *what)
{
	PGresult *res = PQexecParams(db->conn, sql, n, NULL, vals, NULL, NULL, 0);
	if (!result_ok(res)) {
		fail_result(db, res, err, what);
		return NULL;
	}
	return res;
}

static void rollback_quietly(load_db *db)
{
	if (PQstatus(db->conn) != CONNECTION_OK)
		return;
	PGresult *res = PQexec(db->conn, "ROLLBACK");
	PQclear(res);
}

/* ---- connection ---- */

/* The cancel key of the session a signal cancels (load_cancel_on_signal).
 * The handler reads it; the thread that owns the session replaces it with
 * SIGINT, SIGTERM and SIGHUP blocked (so the handler cannot run there meanwhile),
 * and frees the old one only once no handler on another thread (one that
 * did not block them, say a resolver thread libcurl left behind) may still
 * be using it: handlers count themselves in signal_cancel_users. */
static _Atomic(PGcancel *) signal_cancel;
static atomic_int signal_cancel_users;
/* and its socket, which load_abandon_from_signal shuts down (-1: none) */
static atomic_int signal_socket = -1;

void load_block_stop_signals(sigset_t *old)
{
	sigset_t stop;
	sigemptyset(&stop);
	sigaddset(&stop, SIGINT);
	sigaddset(&stop, SIGTERM);
	sigaddset(&stop, SIGHUP);
	sigaddset(&stop, SIGALRM);
	pthread_sigmask(SIG_BLOCK, &stop, old);
}

static void set_signal_cancel(PGcancel *c, int fd)
{
	sigset_t old;
	load_block_stop_signals(&old);
	int prev_fd = atomic_exchange(&signal_socket, fd);
	PGcancel *prev = atomic_exchange(&signal_cancel, c);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	/* the old socket is closed next (PQfinish): no handler may shut down
	 * the one that takes its number */
	while ((prev || prev_fd >= 0) && atomic_load(&signal_cancel_users) > 0) {
		struct timespec nap = {0, 1000000L};
		nanosleep(&nap, NULL);
	}
	if (prev)
		PQfreeCancel(prev);
}

void load_cancel_from_signal(void)
{
	char errbuf[256]; /* on the handler's stack, as PQcancel asks */
	atomic_fetch_add(&signal_cancel_users, 1);
	PGcancel *c = atomic_load(&signal_cancel);
	if (c)
		(void)PQcancel(c, errbuf, (int)sizeof(errbuf));
	atomic_fetch_sub(&signal_cancel_users, 1);
}

bool load_abandon_from_signal(void)
{
	atomic_fetch_add(&signal_cancel_users, 1);
	int fd = atomic_load(&signal_socket);
	if (fd >= 0)
		(void)shutdown(fd, SHUT_RDWR);
	atomic_fetch_sub(&signal_cancel_users, 1);
	return fd >= 0;
}

void load_cancel_on_signal(load_db *db)
{
	db->cancel_on_signal = true;
	set_signal_cancel(db->conn ? PQgetCancel(db->conn) : NULL, db->conn ? PQsocket(db->conn) : -1);
}

static void quiet_notices(void *arg, const PGresult *res)
{
	(void)arg;
	(void)res;
}

#define DEFAULT_CONNECT_TIMEOUT "10" /* seconds, per host tried */

static int connect_session(load_db *db, load_error *err)
{
	/* libpq waits for a server that never answers as long as TCP lets it
	 * (forever, if it accepts and stays silent), with signals only noted:
	 * a default connect_timeout bounds that. The conninfo's own setting,
	 * coming after it, wins; so does PGCONNECT_TIMEOUT. */
	const char *timeout = getenv("PGCONNECT_TIMEOUT") ? NULL : DEFAULT_CONNECT_TIMEOUT;
	const char *keys[] = {"connect_timeout", "dbname", "fallback_application_name", NULL};
	const char *vals[] = {timeout, db->conninfo, "bloomsync", NULL};
	db->conn = PQconnectdbParams(timeout ? keys : keys + 1, timeout ? vals : vals + 1, 1);
	if (!db->conn) {
		set_error(err, LOAD_ERROR, NULL, "cannot connect to postgresql: out of memory");
		return -1;
	}
	if (PQstatus(db->conn) != CONNECTION_OK) {
		set_error(err, LOAD_RETRY, "08000", "cannot connect to postgresql: %s", PQerrorMessage(db->conn));
		return -1;
	}
	PQsetNoticeReceiver(db->conn, quiet_notices, NULL);
	if (db->cancel_on_signal)
		set_signal_cancel(PQgetCancel(db->conn), PQsocket(db->conn));
	db->staging_ready = false; /* temp tables go with the session */
	memset(db->staging_dead, 0, sizeof(db->staging_dead));
	/* synchronous_commit off: a batch's COMMIT does not wait for its WAL to
	 * reach the disk (on a real disk that wait is most of a small batch's
	 * time). A server crash can then lose the last batches committed, but
	 * only whole, their units' checkpoints with them, so the next run fetches
	 * those units again; and load_run_finish commits synchronously, which
	 * flushes every batch before it: a run recorded finished is durable.
	 * client_encoding UTF8: every byte bloomsync sends is UTF-8 (the API's
	 * JSON); under PGCLIENTENCODING=LATIN1, or a role's client_encoding,
	 * the server took each byte for a character and stored mojibake, which
	 * the digests then kept from being read again. */
	char sql[320];
	snprintf(sql, sizeof(sql),
		 "SET client_encoding = 'UTF8'; SET TimeZone = 'UTC'; SET synchronous_commit = off; "
		 "SET search_path TO \"%s\", pg_catalog",
		 db->schema);
	return exec_sql(db, sql, err, "cannot set up the session");
}

load_db *load_open(const char *conninfo, const char *schema, load_error *err)
{
	load_db *db = calloc(1, sizeof(*db));
	if (!db) {
		set_error(err, LOAD_ERROR, NULL, "out of memory");
		return NULL;
	}
	db->conninfo = strdup(conninfo ? conninfo : "");
	db->schema = strdup(schema);
	if (!db->conninfo || !db->schema) {
		set_error(err, LOAD_ERROR, NULL, "out of memory");
		load_close(db);
		return NULL;
	}
	if (connect_session(db, err) != 0) {
		load_close(db);
		return NULL;
	}
	return db;
}

void load_close(load_db *db)
{
	if (!db)
		return;
	if (db->conn && db->locked && PQstatus(db->conn) == CONNECTION_OK) {
		/* the backend drops the lock only once it notices the closed socket:
		 * a sync started right after this one would find it still held */
		PQclear(PQexec(db->conn, "SELECT pg_advisory_unlock_all()"));
	}
	if (db->cancel_on_signal)
		set_signal_cancel(NULL, -1);
	if (db->conn)
		PQfinish(db->conn);
	hash_filter_free(db->written);
	free(db->conninfo);
	free(db->schema);
	free(db);
}

static int take_lock(load_db *db, bool *acquired, char *holder, size_t holderlen, load_error *err);

bool load_lost_lock(const load_db *db)
{
	return db->lost_lock;
}

int load_reconnect(load_db *db, load_error *err)
{
	/* without the lock, this session must write nothing more of the run */
	if (db->lost_lock) {
		set_error(err, LOAD_ERROR, NULL, "the run lock was lost while reconnecting: not connecting again");
		return -1;
	}
	if (db->cancel_on_signal)
		set_signal_cancel(NULL, -1);
	if (db->conn)
		PQfinish(db->conn);
	db->conn = NULL;
	if (connect_session(db, err) != 0)
		return -1;
	if (!db->locked)
		return 0;
	bool acquired = false;
	char holder[256];
	if (take_lock(db, &acquired, holder, sizeof(holder), err) != 0)
		return -1;
	if (!acquired) {
		db->locked = false;
		db->lost_lock = true;
		set_error(err, LOAD_ERROR, NULL, "lost the run lock while reconnecting; now held by %s", holder);
		return -1;
	}
	return 0;
}

/* ---- migrations ---- */

static int schema_exists(load_db *db, bool *exists, load_error *err)
{
	const char *vals[] = {db->schema};
	PGresult *res = exec_params(db, "SELECT 1 FROM pg_namespace WHERE nspname = $1", 1, vals, err,
				    "cannot look up the schema");
	if (!res)
		return -1;
	*exists = PQntuples(res) > 0;
	PQclear(res);
	return 0;
}

/* What schema_migrations records, read against the embedded migrations:
 * applied[i] for each embedded one recorded; newer, the greatest version
 * recorded that this binary does not embed ("" when none). Migrations are
 * never removed or renamed, so such a version was written by a newer
 * bloomsync. With warn, an applied migration whose recorded checksum (md5
 * of its text, recorded since checksums were) differs from the embedded
 * one is logged: its text was edited after it was applied there. */
static int applied_versions(load_db *db, bool *applied, char *newer, size_t newerlen, bool warn, load_error *err)
{
	/* to_jsonb(m): the checksum column may not exist yet (it is added when
	 * a migration is next applied); then the value is NULL */
	PGresult *res = exec_params(db,
				    "SELECT version, to_jsonb(m) ->> 'checksum' FROM schema_migrations m "
				    "ORDER BY version COLLATE \"C\"",
				    0, NULL, err, "cannot read schema_migrations");
	if (!res)
		return -1;
	newer[0] = '\0';
	for (int row = 0; row < PQntuples(res); row++) {
		const char *version = PQgetvalue(res, row, 0);
		size_t i = 0;
		while (i < load_migrations_count && strcmp(version, load_migrations[i].version) != 0)
			i++;
		if (i == load_migrations_count) {
			snprintf(newer, newerlen, "%s", version);
			continue;
		}
		applied[i] = true;
		const char *sum = PQgetisnull(res, row, 1) ? NULL : PQgetvalue(res, row, 1);
		if (warn && sum && strcmp(sum, load_migrations[i].checksum) != 0)
			log_warn("migration %s in schema %s was applied from another text than this bloomsync's "
				 "(checksum %s, expected %s): the schema may differ from what it expects",
				 version, db->schema, sum, load_migrations[i].checksum);
	}
	PQclear(res);
	return 0;
}

static int migrations_table_exists(load_db *db, bool *exists, load_error *err)
{
	const char *vals[] = {db->schema};
	PGresult *res = exec_params(db,
				    "SELECT 1 FROM pg_tables WHERE schemaname = $1 AND tablename = 'schema_migrations'",
				    1, vals, err, "cannot look up schema_migrations");
	if (!res)
		return -1;
	*exists = PQntuples(res) > 0;
	PQclear(res);
	return 0;
}

/* Reads schema_migrations (when it exists) into applied and *pending;
 * -1 for a schema migrated by a newer bloomsync. */
static int read_migrations(load_db *db, bool *applied, int *pending, bool warn, load_error *err)
{
	bool exists = false;
	if (migrations_table_exists(db, &exists, err) != 0)
		return -1;
	*pending = (int)load_migrations_count;
	if (!exists)
		return 0;
	char newer[64];
	if (applied_versions(db, applied, newer, sizeof(newer), warn, err) != 0)
		return -1;
	if (newer[0]) {
		set_error(err, LOAD_ERROR, NULL,
			  "schema %s was migrated by a newer bloomsync (migration %s); upgrade bloomsync", db->schema,
			  newer);
		return -1;
	}
	for (size_t i = 0; i < load_migrations_count; i++)
		if (applied[i])
			(*pending)--;
	return 0;
}

int load_pending_migrations(load_db *db, int *pending, load_error *err)
{
	bool *applied = calloc(load_migrations_count + 1, sizeof(bool));
	if (!applied) {
		set_error(err, LOAD_ERROR, NULL, "out of memory");
		return -1;
	}
	int rc = read_migrations(db, applied, pending, false, err);
	free(applied);
	return rc;
}

int load_sync_privileges(load_db *db, int pending, bool *exists, char *problem, size_t problemlen, load_error *err)
{
	/* has_*_privilege with several privileges is true when any is held:
	 * hence one call per privilege */
	static const char sql[] =
	    "WITH t AS (SELECT c.oid, c.relname, pg_has_role(c.relowner, 'USAGE') AS owned, "
	    "has_table_privilege(c.oid, 'SELECT') AND has_table_privilege(c.oid, 'INSERT') AND "
	    "has_table_privilege(c.oid, 'UPDATE') AND has_table_privilege(c.oid, 'DELETE') AS writable "
	    "FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = $1 AND c.relkind = 'r'), "
	    "s AS (SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
	    "WHERE n.nspname = $1 AND c.relkind = 'S' "
	    /* CASE: the planner may test the privilege before the relkind,
	     * and has_sequence_privilege fails on a table */
	    "AND NOT CASE WHEN c.relkind = 'S' THEN has_sequence_privilege(c.oid, 'USAGE') ELSE true END) "
	    "SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1), "
	    "has_database_privilege(current_database(), 'CREATE'), "
	    "has_database_privilege(current_database(), 'TEMPORARY'), "
	    "coalesce((SELECT has_schema_privilege(oid, 'CREATE') AND has_schema_privilege(oid, 'USAGE') "
	    "FROM pg_namespace WHERE nspname = $1), false), "
	    "(SELECT relname FROM t WHERE NOT owned ORDER BY relname LIMIT 1), "
	    "(SELECT relname FROM t WHERE NOT writable ORDER BY relname LIMIT 1), "
	    "current_user, current_database(), (SELECT relname FROM s ORDER BY relname LIMIT 1)";
	const char *vals[] = {db->schema};
	PGresult *res = exec_params(db, sql, 1, vals, err, "cannot read the role's privileges");
	if (!res)
		return -1;
	*exists = strcmp(PQgetvalue(res, 0, 0), "t") == 0;
	bool db_create = strcmp(PQgetvalue(res, 0, 1), "t") == 0;
	bool db_temp = strcmp(PQgetvalue(res, 0, 2), "t") == 0;
	bool schema_create = strcmp(PQgetvalue(res, 0, 3), "t") == 0;
	const char *not_owned = PQgetisnull(res, 0, 4) ? NULL : PQgetvalue(res, 0, 4);
	const char *not_writable = PQgetisnull(res, 0, 5) ? NULL : PQgetvalue(res, 0, 5);
	const char *role = PQgetvalue(res, 0, 6), *dbname = PQgetvalue(res, 0, 7);
	const char *no_sequence = PQgetisnull(res, 0, 8) ? NULL : PQgetvalue(res, 0, 8);
	problem[0] = '\0';
	if (!*exists && !db_create)
		snprintf(problem, problemlen,
			 "role %s cannot create schema %s (no CREATE on database %s): create the schema for it "
			 "(deploy/roles.sql) or connect as a role that can",
			 role, db->schema, dbname);
	else if (*exists && pending > 0 && !schema_create)
		snprintf(problem, problemlen,
			 "role %s cannot create tables in schema %s (it needs CREATE and USAGE on it) to apply "
			 "the pending migrations",
			 role, db->schema);
	else if (pending > 0 && not_owned)
		snprintf(problem, problemlen,
			 "role %s does not own %s.%s: the pending migrations alter the schema's tables, which "
			 "takes their owner (deploy/roles.sql)",
			 role, db->schema, not_owned);
	else if (not_writable)
		snprintf(problem, problemlen,
			 "role %s cannot write to %s.%s (a sync needs SELECT, INSERT, UPDATE and DELETE on every "
			 "table of the schema; is it a read-only role?)",
			 role, db->schema, not_writable);
	else if (no_sequence)
		snprintf(problem, problemlen,
			 "role %s cannot use sequence %s.%s (USAGE): a sync takes ids from the schema's sequences",
			 role, db->schema, no_sequence);
	else if (!db_temp)
		snprintf(problem, problemlen,
			 "role %s cannot create temporary tables in database %s (TEMPORARY): a sync stages rows "
			 "in them",
			 role, dbname);
	PQclear(res);
	return 0;
}

static uint32_t schema_hash(const char *schema)
{
	uint32_t h = 2166136261u; /* FNV-1a */
	for (const unsigned char *p = (const unsigned char *)schema; *p; p++)
		h = (h ^ *p) * 16777619u;
	return h & 0x7fffffffu;
}

static int apply_migration(load_db *db, size_t i, load_error *err)
{
	char what[128];
	snprintf(what, sizeof(what), "migration %s failed", load_migrations[i].version);
	if (exec_sql(db, load_migrations[i].sql, err, what) != 0)
		return -1;
	const char *vals[] = {load_migrations[i].version, load_migrations[i].checksum};
	PGresult *res = exec_params(db, "INSERT INTO schema_migrations (version, checksum) VALUES ($1, $2)", 2, vals,
				    err, "cannot record the migration");
	PQclear(res);
	return res ? 0 : -1;
}

/* Takes the run lock for migrating, unless this session holds it already
 * (*took says whether it was taken here, to be released by
 * release_migrate_lock). Held by another session: LOAD_SQLSTATE_LOCKED. */
static int take_migrate_lock(load_db *db, bool *took, load_error *err)
{
	*took = false;
	if (db->locked)
		return 0;
	bool acquired = false;
	char holder[256] = "";
	if (take_lock(db, &acquired, holder, sizeof(holder), err) != 0)
		return -1;
	if (!acquired) {
		set_error(err, LOAD_ERROR, LOAD_SQLSTATE_LOCKED, "another sync holds the lock for schema %s: %s",
			  db->schema, holder);
		return -1;
	}
	*took = true;
	return 0;
}

static void release_migrate_lock(load_db *db)
{
	if (PQstatus(db->conn) == CONNECTION_OK) {
		char sql[128];
		snprintf(sql, sizeof(sql), "SELECT pg_advisory_unlock(%d, %d)", LOCK_CLASS, (int)schema_hash(db->schema));
		PQclear(PQexec(db->conn, sql));
	}
	db->locked = false;
}

/* One transaction: the migrate lock (migrations one session at a time,
 * waiting for one under way), what is applied, and when anything is to
 * be applied, the run lock (without waiting: a sync may hold it for
 * hours), then every pending migration. The run lock is what a running
 * sync holds, so no migration alters tables under one; a session advisory
 * lock, it outlives the transaction, and is released after it when taken
 * here. The migrate lock is taken first and the run lock never waited
 * for, so the two cannot deadlock. */
int load_migrate(load_db *db, int *applied_count, load_error *err)
{
	*applied_count = 0;
	bool took_lock = false;
	bool *applied = calloc(load_migrations_count + 1, sizeof(bool));
	if (!applied) {
		set_error(err, LOAD_ERROR, NULL, "out of memory");
		return -1;
	}
	char sql[512];
	snprintf(sql, sizeof(sql), "BEGIN; SELECT pg_advisory_xact_lock(%d, %d)", MIGRATE_CLASS,
		 (int)schema_hash(db->schema));
	if (exec_sql(db, sql, err, "cannot start migrating") != 0)
		goto fail;
	bool exists = false;
	if (schema_exists(db, &exists, err) != 0)
		goto fail;
	int pending = (int)load_migrations_count;
	if (exists && read_migrations(db, applied, &pending, true, err) != 0)
		goto fail;
	if (pending > 0 && take_migrate_lock(db, &took_lock, err) != 0)
		goto fail;
	if (!exists) {
		snprintf(sql, sizeof(sql), "CREATE SCHEMA \"%s\"", db->schema);
		if (exec_sql(db, sql, err, "cannot create the schema") != 0)
			goto fail;
	}
	/* checksum: the md5 of a migration's text, recorded by bloomsync since
	 * 009 (NULL for the migrations applied before) */
	if (pending > 0 && exec_sql(db,
				    "CREATE TABLE IF NOT EXISTS schema_migrations (version text PRIMARY KEY, "
				    "applied_at timestamptz NOT NULL DEFAULT now(), checksum text); "
				    "ALTER TABLE schema_migrations ADD COLUMN IF NOT EXISTS checksum text",
				    err, "cannot create schema_migrations") != 0)
		goto fail;
	for (size_t i = 0; i < load_migrations_count; i++) {
		if (applied[i])
			continue;
		if (apply_migration(db, i, err) != 0)
			goto fail;
		log_info("applied migration %s", load_migrations[i].version);
		(*applied_count)++;
	}
	if (exec_sql(db, "COMMIT", err, "cannot commit the migrations") != 0)
		goto fail;
	if (took_lock)
		release_migrate_lock(db);
	free(applied);
	return 0;
fail:
	rollback_quietly(db);
	if (took_lock)
		release_migrate_lock(db);
	*applied_count = 0;
	free(applied);
	return -1;
}

/* ---- the run lock ---- */

static void describe_holder(load_db *db, char *holder, size_t holderlen)
{
	char sql[1024];
	snprintf(sql, sizeof(sql),
		 "SELECT a.pid, coalesce(nullif(a.application_name, ''), '?'), "
		 "coalesce(host(a.client_addr), 'local socket'), to_char(a.backend_start, 'YYYY-MM-DD HH24:MI:SS TZ'), "
		 "(SELECT 'run ' || r.id || ' (host ' || coalesce(r.host, '?') || ', pid ' || coalesce(r.pid::text, '?') "
		 "|| ')' FROM sync_runs r WHERE r.status = 'running' ORDER BY r.id DESC LIMIT 1) "
		 "FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid "
		 "WHERE l.locktype = 'advisory' AND l.granted AND l.classid = %d AND l.objid = %u AND l.objsubid = 2",
		 LOCK_CLASS, schema_hash(db->schema));
	PGresult *res = PQexec(db->conn, sql);
	if (PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) > 0) {
		snprintf(holder, holderlen, "%s%sbackend pid %s (%s from %s, since %s)",
			 PQgetisnull(res, 0, 4) ? "" : PQgetvalue(res, 0, 4), PQgetisnull(res, 0, 4) ? "" : ", ",
			 PQgetvalue(res, 0, 0), PQgetvalue(res, 0, 1), PQgetvalue(res, 0, 2), PQgetvalue(res, 0, 3));
	} else {
		snprintf(holder, holderlen, "another session (it may just have finished)");
	}
	PQclear(res);
}

static int take_lock(load_db *db, bool *acquired, char *holder, size_t holderlen, load_error *err)
{
	char sql[128];
	snprintf(sql, sizeof(sql), "SELECT pg_try_advisory_lock(%d, %d)", LOCK_CLASS, (int)schema_hash(db->schema));
	PGresult *res = exec_params(db, sql, 0, NULL, err, "cannot take the run lock");
	if (!res)
		return -1;
	*acquired = strcmp(PQgetvalue(res, 0, 0), "t") == 0;
	PQclear(res);
	if (*acquired)
		db->locked = true;
	else if (holder)
		describe_holder(db, holder, holderlen);
	return 0;
}

int load_lock(load_db *db, bool *acquired, char *holder, size_t holderlen, load_error *err)
{
	return take_lock(db, acquired, holder, holderlen, err);
}

/* ---- runs and units ---- */

static int begin(load_db *db, load_error *err)
{
	return exec_sql(db, "BEGIN", err, "cannot begin a transaction");
}

static int commit(load_db *db, load_error *err)
{
	if (exec_sql(db, "COMMIT", err, "cannot commit") != 0) {
		rollback_quietly(db);
		return -1;
	}
	return 0;
}

static int start_new_run(load_db *db, const char *version, const char *streams, load_run *run, load_error *err)
{
	char host[256] = "";
	gethostname(host, sizeof(host) - 1);
	char pid[32];
	snprintf(pid, sizeof(pid), "%d", (int)getpid());
	const char *vals[] = {host, pid, version, streams};
	PGresult *res = exec_params(db,
				    "WITH r AS (INSERT INTO sync_runs (host, pid, version, units_known, streams) "
				    "VALUES ($1, $2::int, $3, 1, $4) RETURNING id) "
				    "INSERT INTO sync_units (run_id, kind, ref) SELECT id, 'users', 0 FROM r RETURNING run_id",
				    4, vals, err, "cannot record the new run");
	if (!res)
		return -1;
	run->id = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
	run->resumed = false;
	run->units_known = 1;
	run->units_done = 0;
	PQclear(res);
	char sql[128];
	snprintf(sql, sizeof(sql), "INSERT INTO sync_sources (kind, ref, digest) VALUES ('', %" PRId64 ", 0)", run->id);
	return exec_sql(db, sql, err, "cannot record the new run");
}

/* Whether the yields the run wrote survived (see sql/004_sources.sql). */
static int yields_intact(load_db *db, int64_t run_id, bool *intact, load_error *err)
{
	char sql[128];
	snprintf(sql, sizeof(sql), "SELECT 1 FROM sync_sources WHERE kind = '' AND ref = %" PRId64, run_id);
	PGresult *res = exec_params(db, sql, 0, NULL, err, "cannot read sync_sources");
	if (!res)
		return -1;
	*intact = PQntuples(res) > 0;
	PQclear(res);
	return 0;
}

/* Resumes run id with streams, a subset of those it had (load_run_open
 * saw to that), which become its streams. */
static int resume_run(load_db *db, int64_t id, const char *streams, load_run *run, load_error *err)
{
	char host[256] = "";
	gethostname(host, sizeof(host) - 1);
	char pid[32], idtext[32];
	snprintf(pid, sizeof(pid), "%d", (int)getpid());
	snprintf(idtext, sizeof(idtext), "%" PRId64, id);
	const char *vals[] = {idtext, host, pid, streams};
	PGresult *res = exec_params(db,
				    "UPDATE sync_runs SET status = 'running', resumed = resumed + 1, "
				    "last_resumed_at = now(), finished_at = NULL, error = NULL, host = $2, pid = $3::int, "
				    "streams = $4 WHERE id = $1::bigint RETURNING units_known, units_done",
				    4, vals, err, "cannot resume the run");
	if (!res)
		return -1;
	run->id = id;
	run->resumed = true;
	run->units_known = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
	run->units_done = strtoll(PQgetvalue(res, 0, 1), NULL, 10);
	PQclear(res);
	return 0;
}

int load_run_progress(load_db *db, load_run *run, load_error *err)
{
	char sql[128];
	snprintf(sql, sizeof(sql), "SELECT units_known, units_done FROM sync_runs WHERE id = %" PRId64, run->id);
	PGresult *res = exec_params(db, sql, 0, NULL, err, "cannot read the run's progress");
	if (!res)
		return -1;
	if (PQntuples(res) == 1) {
		run->units_known = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
		run->units_done = strtoll(PQgetvalue(res, 0, 1), NULL, 10);
	}
	PQclear(res);
	return 0;
}

int load_run_open(load_db *db, bool restart, const char *version, const char *streams, load_run *run,
		  load_error *err)
{
	if (begin(db, err) != 0)
		return -1;
	const char *vals[] = {streams};
	PGresult *res = exec_params(db,
				    "SELECT id, status, streams IS NULL OR string_to_array(streams, ',') @> "
				    "string_to_array($1, ','), coalesce(streams, '') FROM sync_runs ORDER BY id DESC LIMIT 1",
				    1, vals, err, "cannot read sync_runs");
	if (!res)
		goto fail;
	int64_t last = 0;
	bool unfinished = false, streams_kept = true;
	if (PQntuples(res) > 0) {
		last = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
		unfinished = strcmp(PQgetvalue(res, 0, 1), "succeeded") != 0 &&
			     strcmp(PQgetvalue(res, 0, 1), "abandoned") != 0;
		streams_kept = strcmp(PQgetvalue(res, 0, 2), "t") == 0;
		if (unfinished && !streams_kept && !restart)
			log_warn("run %" PRId64 " was synced with streams %s only, and this sync also asks for others: "
				 "their units were never queued, so that run cannot complete them; it is abandoned and "
				 "a new run starts",
				 last, PQgetvalue(res, 0, 3));
	}
	PQclear(res);
	if (unfinished && (restart || !streams_kept)) {
		char sql[512];
		snprintf(sql, sizeof(sql),
			 "UPDATE sync_runs SET status = 'abandoned', finished_at = coalesce(finished_at, now()) "
			 "WHERE id = %" PRId64 "; DELETE FROM sync_units WHERE run_id = %" PRId64
			 "; DELETE FROM sync_sources WHERE kind = '' AND ref = %" PRId64,
			 last, last, last);
		if (exec_sql(db, sql, err, "cannot abandon the unfinished run") != 0)
			goto fail;
		log_info("abandoned unfinished run %" PRId64, last);
		unfinished = false;
	}
	if ((unfinished ? resume_run(db, last, streams, run, err) : start_new_run(db, version, streams, run, err)) != 0)
		goto fail;
	db->sources_checked = false;
	return commit(db, err);
fail:
	rollback_quietly(db);
	return -1;
}

static bloom_unit_kind kind_from_name(const char *name)
{
	for (int k = BLOOM_UNIT_USERS; k < BLOOM_UNIT_KIND_END; k++)
		if (strcmp(bloom_unit_kind_name((bloom_unit_kind)k), name) == 0)
			return (bloom_unit_kind)k;
	return BLOOM_UNIT_KIND_END;
}

/* Whether sync_sources holds any digest (beside runs' marker rows) or
 * sync_yields any yield. When neither did as the run was opened, none of
 * the run's pending units has either: both are written only as a unit is
 * done, and a unit is done once a run. Looking up each unit's digest was
 * 16 us a unit on an initial load; see write_sources for the yields. */
static int check_sources(load_db *db, int64_t run_id, load_error *err)
{
	PGresult *res = exec_params(db,
				    "SELECT NOT EXISTS (SELECT 1 FROM sync_sources WHERE kind <> '') "
				    "AND NOT EXISTS (SELECT 1 FROM sync_yields)",
				    0, NULL, err, "cannot read sync_sources");
	if (!res)
		return -1;
	db->no_sources = strcmp(PQgetvalue(res, 0, 0), "t") == 0;
	db->sources_checked = true;
	db->sources_run = run_id;
	PQclear(res);
	return 0;
}

/* sync_units grows from one row to every unit of the org within a run, too
 * fast for autovacuum's ANALYZE: without statistics the planner took the
 * pending units after the cursor for one row and read all of them into a
 * sort (12 ms a call mid-run on the bench's large org, growing with the org)
 * instead of reading the primary key in order up to the LIMIT. Analyzed each
 * time the units this connection added have doubled. */
static int analyze_units(load_db *db, load_error *err)
{
	if (db->units_added - db->units_analyzed < 1000 || db->units_added < 2 * db->units_analyzed)
		return 0;
	if (exec_sql(db, "ANALYZE sync_units", err, "cannot analyze sync_units") != 0)
		return -1;
	db->units_analyzed = db->units_added;
	return 0;
}

/* Reads sync_sources.rows_named ("tbl:count,tbl:count", '' for none, see
 * sql/007_source_counts.sql) into out; false when it is not that. */
static bool parse_counts(const char *text, uint32_t out[MIRROR_TABLE_COUNT])
{
	memset(out, 0, MIRROR_TABLE_COUNT * sizeof(*out));
	for (const char *p = text; *p;) {
		char *end;
		if (*p < '0' || *p > '9')
			return false;
		unsigned long tbl = strtoul(p, &end, 10);
		if (*end != ':' || tbl >= MIRROR_TABLE_COUNT || end[1] < '0' || end[1] > '9')
			return false;
		unsigned long n = strtoul(end + 1, &end, 10);
		if (n > UINT32_MAX || (*end != ',' && *end != '\0'))
			return false;
		out[tbl] = (uint32_t)n;
		p = *end ? end + 1 : end;
	}
	return true;
}

/* Appends counts in the form parse_counts reads. */
static void add_counts(sbuf *b, const uint32_t counts[MIRROR_TABLE_COUNT])
{
	bool first = true;
	for (int i = 0; i < MIRROR_TABLE_COUNT; i++) {
		if (!counts[i])
			continue;
		sb_printf(b, "%s%d:%" PRIu32, first ? "" : ",", i, counts[i]);
		first = false;
	}
}

int load_units_next(load_db *db, int64_t run_id, int64_t after_seq, load_unit *units, size_t max, size_t *n,
		    load_error *err)
{
	if ((!db->sources_checked && check_sources(db, run_id, err) != 0) || analyze_units(db, err) != 0)
		return -1;
	char sql[448];
	snprintf(sql, sizeof(sql),
		 "SELECT u.seq, u.kind, u.ref, %s FROM sync_units u%s WHERE u.run_id = %" PRId64
		 " AND u.state = 0 AND u.seq > %" PRId64 " ORDER BY u.seq LIMIT %zu",
		 db->no_sources ? "NULL, NULL" : "s.digest, s.rows_named",
		 db->no_sources ? "" : " LEFT JOIN sync_sources s ON s.kind = u.kind AND s.ref = u.ref", run_id,
		 after_seq, max);
	PGresult *res = exec_params(db, sql, 0, NULL, err, "cannot read pending units");
	if (!res)
		return -1;
	*n = 0;
	for (int row = 0; row < PQntuples(res); row++) {
		bloom_unit_kind kind = kind_from_name(PQgetvalue(res, row, 1));
		if (kind == BLOOM_UNIT_KIND_END) {
			/* queued by a newer version: skipping it would let the run
			 * complete, and mark rows deleted, without it */
			set_error(err, LOAD_ERROR, NULL,
				  "run %" PRId64 " holds a unit of kind '%s' that this version does not know (a newer "
				  "bloomsync queued it): sync with that version, or start afresh with sync --restart",
				  run_id, PQgetvalue(res, row, 1));
			PQclear(res);
			return -1;
		}
		units[*n].seq = strtoll(PQgetvalue(res, row, 0), NULL, 10);
		units[*n].unit.kind = kind;
		units[*n].unit.ref = strtoll(PQgetvalue(res, row, 2), NULL, 10);
		units[*n].has_digest = !PQgetisnull(res, row, 3);
		units[*n].digest = units[*n].has_digest ? (uint64_t)strtoll(PQgetvalue(res, row, 3), NULL, 10) : 0;
		units[*n].has_named = units[*n].has_digest && !PQgetisnull(res, row, 4) &&
				      parse_counts(PQgetvalue(res, row, 4), units[*n].named);
		(*n)++;
	}
	PQclear(res);
	return 0;
}

/* ---- batches ---- */

static const char *sql_type(mirror_type t)
{
	switch (t) {
	case MIRROR_BIGINT: return "bigint";
	case MIRROR_INT: return "integer";
	case MIRROR_TEXT: return "text";
	case MIRROR_BOOL: return "boolean";
	case MIRROR_NUMERIC: return "numeric";
	case MIRROR_TIMESTAMPTZ: return "timestamptz";
	case MIRROR_JSONB: return "jsonb";
	}
	return "text";
}

static void add_column_list(sbuf *b, const mirror_target *t, const char *prefix)
{
	for (size_t c = 0; c < t->ncols; c++)
		sb_printf(b, "%s%s%s", c ? ", " : "", prefix, t->cols[c].name);
}

/* ---- rows written straight into the mirror (an initial load) ----
 * Into a table that was empty when the connection began, a row whose key
 * the connection has surely not written yet cannot conflict with anything:
 * it is COPYed into the mirror table itself, which saves its staging COPY
 * and its upsert (together twice the cost of that COPY). The keys written so
 * are kept in a Bloom filter of fixed size: its "surely not" is exact, and
 * a "maybe" (a key seen before, or a false positive) sends the row the usual
 * way, through staging and ON CONFLICT. A batch that does not commit leaves
 * its keys in the filter: only false positives, which cost nothing but
 * speed.
 *
 * Where two targets fill one table (meetings, issues), each updating its
 * own columns, the outcome is the usual one: targets are COPYed in their
 * order and upserted in that order after every COPY, so a key's first row
 * in the batch goes in whole and the later ones update their columns over
 * it, as their upserts would have over the first one's. */

#define WRITTEN_FILTER_BITS 24 /* 2 MiB */

/* The hash of a COPY line's key (its first field, or its first two) in
 * its table. */
static uint64_t key_hash(int ti, const char *line, size_t len)
{
	const mirror_target *t = mirror_target_get((mirror_target_id)ti);
	const char *end = line + len, *p = memchr(line, '\t', len);
	if (p && t->nkeys > 1)
		p = memchr(p + 1, '\t', (size_t)(end - p - 1));
	uint64_t table = (uint64_t)t->table_index + 1;
	return hash_bytes(table, line, p ? (size_t)(p - line) : len);
}

/* Which mirror tables hold no row yet (see load_db.was_empty). */
static int note_empty_tables(load_db *db, load_error *err)
{
	sbuf b = {0};
	sb_printf(&b, "SELECT ");
	for (int si = 0; si < MIRROR_TABLE_COUNT; si++)
		sb_printf(&b, "%sNOT EXISTS (SELECT 1 FROM %s)", si ? ", " : "", mirror_tables[si]);
	PGresult *res = b.failed ? NULL : exec_params(db, b.data, 0, NULL, err, "cannot read the mirror tables");
	if (b.failed)
		set_error(err, LOAD_ERROR, NULL, "out of memory");
	sb_free(&b);
	if (!res)
		return -1;
	for (int si = 0; si < MIRROR_TABLE_COUNT; si++)
		db->was_empty[si] = strcmp(PQgetvalue(res, 0, si), "t") == 0;
	PQclear(res);
	bool any = false;
	for (int ti = 0; ti < MIRROR_T_COUNT; ti++) {
		int si = mirror_target_get((mirror_target_id)ti)->table_index;
		db->direct[ti] = si >= 0 && db->was_empty[si];
		any |= db->direct[ti];
	}
	if (any && !db->written)
		db->written = hash_filter_new(WRITTEN_FILTER_BITS);
	if (!db->written) /* out of memory: every row takes the usual way */
		memset(db->direct, 0, sizeof(db->direct));
	return 0;
}

/* Staging tables live per connection: typed like the mirror (NOT NULL too,
 * so a value that cannot be stored fails at COPY, where it can be isolated).
 * Each batch empties the ones it filled before it commits, rather than ON
 * COMMIT DELETE ROWS, which truncates every such table (and rebuilds its
 * TOAST index) at every commit: 2 ms a batch for nothing. */
static int ensure_staging(load_db *db, load_error *err)
{
	if (db->staging_ready)
		return 0;
	sbuf b = {0};
	for (int i = 0; i < MIRROR_T_COUNT; i++) {
		const mirror_target *t = mirror_target_get((mirror_target_id)i);
		sb_printf(&b, "CREATE TEMP TABLE IF NOT EXISTS stg_%d (", i);
		for (size_t c = 0; c < t->ncols; c++)
			sb_printf(&b, "%s%s %s%s", c ? ", " : "", t->cols[c].name, sql_type(t->cols[c].type),
				  t->cols[c].not_null ? " NOT NULL" : "");
		sb_printf(&b, ");\n");
	}
	sb_printf(&b, "CREATE TEMP TABLE IF NOT EXISTS stg_units (kind text, ref bigint, parent bigint);\n");
	if (b.failed) {
		sb_free(&b);
		set_error(err, LOAD_ERROR, NULL, "out of memory");
		return -1;
	}
	int rc = exec_sql(db, b.data, err, "cannot create staging tables");
	sb_free(&b);
	if (rc == 0 && note_empty_tables(db, err) == 0)
		db->staging_ready = true;
	return db->staging_ready ? 0 : -1;
}

#define COPY_PIECE (64 * 1024) /* COPY data goes to libpq in pieces this big at most */

/* COPY ... FROM STDIN in three steps, so data can be streamed in pieces. */
static int copy_begin(load_db *db, const char *sql, load_error *err)
{
	PGresult *res = PQexec(db->conn, sql);
	if (PQresultStatus(res) != PGRES_COPY_IN)
		return fail_result(db, res, err, "cannot start COPY");
	PQclear(res);
	return 0;
}

/* Collects the results that end a COPY; 0 when it succeeded. */
static int copy_finish(load_db *db, load_error *err)
{
	PGresult *res;
	int rc = 0;
	while ((res = PQgetResult(db->conn)) != NULL) {
		if (rc == 0 && PQresultStatus(res) != PGRES_COMMAND_OK) {
			rc = fail_result(db, res, err, "COPY failed");
			continue;
		}
		PQclear(res);
	}
	return rc;
}

static int copy_put(load_db *db, const char *data, size_t len, load_error *err)
{
	while (len > 0) {
		/* libpq copies each CopyData message whole into its output buffer,
		 * which never shrinks: a users list of 20,000 rows sent at once
		 * would keep megabytes there for the rest of the run */
		int piece = len > COPY_PIECE ? COPY_PIECE : (int)len;
		if (PQputCopyData(db->conn, data, piece) != 1) {
			PQputCopyEnd(db->conn, "aborted");
			if (copy_finish(db, err) == 0)
				set_error(err, LOAD_RETRY, NULL, "COPY failed: %s", PQerrorMessage(db->conn));
			return -1;
		}
		data += piece;
		len -= (size_t)piece;
	}
	return 0;
}

static int copy_end(load_db *db, load_error *err)
{
	if (PQputCopyEnd(db->conn, NULL) != 1) {
		if (copy_finish(db, err) == 0)
			set_error(err, LOAD_RETRY, NULL, "COPY failed: %s", PQerrorMessage(db->conn));
		return -1;
	}
	return copy_finish(db, err);
}

/* Streams data through COPY ... FROM STDIN. */
static int copy_in(load_db *db, const char *sql, const char *data, size_t len, load_error *err)
{
	if (copy_begin(db, sql, err) != 0 || copy_put(db, data, len, err) != 0)
		return -1;
	return copy_end(db, err);
}

/* COPYs what b holds, if anything; fails when building b ran out of memory. */
static int copy_sbuf(load_db *db, const char *sql, const sbuf *b, load_error *err)
{
	if (b->failed) {
		set_error(err, LOAD_ERROR, NULL, "out of memory");
		return -1;
	}
	return b->len ? copy_in(db, sql, b->data, b->len, err) : 0;
}

/* COPY of target ti's rows into its staging table, or into_mirror. */
static int copy_target_sql(sbuf *sql, int ti, bool into_mirror)
{
	const mirror_target *t = mirror_target_get((mirror_target_id)ti);
	if (into_mirror)
		sb_printf(sql, "COPY %s (", t->table);
	else
		sb_printf(sql, "COPY stg_%d (", ti);
	add_column_list(sql, t, "");
	sb_printf(sql, ") FROM STDIN");
	return sql->failed ? -1 : 0;
}

/* Calls fn for each COPY line of target ti in the batch, in order; stops at
 * the first nonzero return and returns it. */
typedef int (*line_fn)(const char *line, size_t len, size_t index, void *arg);

static int each_line(const load_batch *batch, int ti, line_fn fn, void *arg)
{
	size_t index = 0;
	for (size_t i = 0; i < batch->nitems; i++) {
		const bloom_result *r = batch->items[i].result;
		if (!r || !r->nrows[ti])
			continue;
		const char *p = r->copy[ti].data, *end = p + r->copy[ti].len;
		while (p < end) {
			const char *nl = memchr(p, '\n', (size_t)(end - p));
			size_t len = nl ? (size_t)(nl - p) + 1 : (size_t)(end - p);
			int rc = fn(p, len, index++, arg);
			if (rc)
				return rc;
			p += len;
		}
	}
	return 0;
}

typedef struct {
	load_db *db;
	int ti;
	unsigned char *direct; /* per line: 1 = straight into the mirror */
	size_t nlines, ndirect, seen;
} pick_state;

/* Picks a line to go straight into the mirror when the filter has surely
 * not seen its key, and notes the key as written. */
static int pick_line(const char *line, size_t len, size_t index, void *arg)
{
	pick_state *ps = arg;
	ps->seen = index + 1;
	if (index >= ps->nlines)
		return 0; /* more lines than rows counted: they go the usual way */
	ps->direct[index] = !hash_filter_add(ps->db->written, key_hash(ps->ti, line, len));
	ps->ndirect += ps->direct[index];
	return 0;
}

/* Notes a line's key as written (its row is about to be, one way or
 * another). */
static int note_line(const char *line, size_t len, size_t index, void *arg)
{
	(void)index;
	const pick_state *ps = arg;
	hash_filter_add(ps->db->written, key_hash(ps->ti, line, len));
	return 0;
}

typedef struct {
	load_db *db;
	const pick_state *pick;
	bool want;
	load_error *err;
} send_state;

static int send_line(const char *line, size_t len, size_t index, void *arg)
{
	send_state *ss = arg;
	bool direct = index < ss->pick->nlines && ss->pick->direct[index];
	if (direct != ss->want)
		return 0;
	return copy_put(ss->db, line, len, ss->err) != 0 ? -1 : 0;
}

/* COPYs the lines of target ti whose pick is `want` (1: into the mirror
 * table, 0: into staging). */
static int copy_picked(load_db *db, const char *sql, const load_batch *batch, int ti, const pick_state *pick,
		       bool want, load_error *err)
{
	if (copy_begin(db, sql, err) != 0)
		return -1;
	send_state ss = {db, pick, want, err};
	if (each_line(batch, ti, send_line, &ss) != 0)
		return -1;
	return copy_end(db, err);
}

/* The record id of a row PostgreSQL refused, from its COPY line: the values
 * of the target's key columns in key order, joined by '/' ("12/345" for a
 * meeting_attendees row: meeting_id/user_id), so that rows sharing a first
 * key column stay apart in rejected_records; a NULL one among several is
 * written "null". Key columns are bigints: their COPY text is the value
 * itself, and '/' cannot occur in it. A single NULL key gives "\N", a NULL
 * record_id, as a mapping reject without an Id has. */
static void add_reject_id(sbuf *b, const mirror_target *t, const char *line, size_t len)
{
	const char *field = line, *end = line + len;
	for (size_t k = 0; k < t->nkeys && field; k++) {
		const char *tab = memchr(field, '\t', (size_t)(end - field));
		size_t n = tab ? (size_t)(tab - field) : (size_t)(end - field);
		bool null = n == 2 && memcmp(field, "\\N", 2) == 0;
		if (k)
			sb_add(b, "/", 1);
		if (null && t->nkeys > 1)
			sb_add(b, "null", 4);
		else
			sb_add(b, field, n);
		field = tab ? tab + 1 : NULL;
	}
}

/* The names of the target's key columns as add_reject_id joins them
 * ("meeting_id/user_id"), for the log line of a rejected row. */
static void add_key_names(sbuf *b, const mirror_target *t)
{
	for (size_t k = 0; k < t->nkeys; k++)
		sb_printf(b, "%s%s", k ? "/" : "", t->cols[k].name);
}

/* Appends a rejected_records COPY line for a staging row that PostgreSQL
 * refused, whose record id is id (see add_reject_id): the line's last field
 * is the raw JSON (already COPY-escaped). */
static void reject_line(sbuf *rej, int64_t run_id, const mirror_target *t, const char *id, const char *line,
			size_t len, const char *reason)
{
	const char *last = line + len;
	while (last > line && last[-1] != '\t')
		last--;
	sb_printf(rej, "%" PRId64 "\t%s\t%s\t", run_id, t->stream, id);
	sb_copy_text(rej, reason);
	sb_add(rej, "\t", 1);
	sb_add(rej, last, (size_t)(line + len - last));
	sb_add(rej, "\n", 1);
}

/* Isolation mode, after a batch failed on bad data: every row is COPYed in
 * a savepoint of its own; the rows PostgreSQL refuses become rejected
 * records (counted per stream) and the others go on. Slow, and only used
 * for the batch that needed it. */
typedef struct {
	load_db *db;
	int64_t run_id;
	int ti;
	const mirror_target *t;
	const char *sql; /* the COPY into staging */
	sbuf *rej;
	load_batch_result *out;
	load_counts *upserted; /* counted in sync_run_streams already by each row's upsert */
	load_error *err;
} isolate_state;

static void build_upsert(sbuf *b, int ti, int64_t run_id, bool prefilter);
static int run_statements(load_db *db, const char *sql, load_batch_result *out, load_error *err);

/* Whether an error is the row's own: a value the column, a constraint, an
 * index or a trigger refuses (a user's own, too: an index on a long text
 * column refuses an over-long value with 54000, a CHECK with 23514, a
 * trigger's RAISE with P0001). Anything else (a cancel, a lost connection,
 * a missing privilege) is not the row's fault and fails the batch. */
static bool is_row_error(const load_error *err)
{
	static const char *const classes[] = {"22", "23", "54", "P0"};
	if (err->outcome != LOAD_ERROR)
		return false;
	for (size_t i = 0; i < sizeof(classes) / sizeof(classes[0]); i++)
		if (strncmp(err->sqlstate, classes[i], 2) == 0)
			return true;
	return false;
}

/* Records a refused row (line without its newline) as rejected, counts it,
 * and logs it with the id it is recorded under, so the log line leads to
 * the record. */
static int reject_row(isolate_state *is, const char *line, size_t len, const char *reason)
{
	sbuf id = {0}, keys = {0};
	add_reject_id(&id, is->t, line, len);
	add_key_names(&keys, is->t);
	int rc = 0;
	if (id.failed || keys.failed) {
		set_error(is->err, LOAD_ERROR, NULL, "out of memory");
		rc = -1;
	} else {
		reject_line(is->rej, is->run_id, is->t, id.data, line, len, reason);
		if (is->t->table_index >= 0)
			is->out->streams[is->t->table_index].rejected++;
		log_warn("rejected a %s row (%s %s): %s", is->t->stream, keys.data, id.data, reason);
	}
	sb_free(&id);
	sb_free(&keys);
	return rc;
}

/* The upsert of the one row in staging, then staging emptied: a row the
 * mirror table refuses (its own constraints, indexes and triggers, which
 * staging does not have) fails here, in the row's savepoint. */
static int upsert_row(isolate_state *is, load_error *row_err)
{
	load_db *db = is->db;
	sbuf sql = {0};
	build_upsert(&sql, is->ti, is->run_id, !db->was_empty[is->t->table_index]);
	sb_printf(&sql, "DELETE FROM stg_%d", is->ti);
	db->staging_dead[is->ti]++; /* whether it commits or not */
	int rc;
	if (sql.failed) {
		set_error(row_err, LOAD_ERROR, NULL, "out of memory");
		rc = -1;
	} else {
		load_batch_result row = {0};
		rc = run_statements(db, sql.data, &row, row_err);
		for (int si = 0; rc == 0 && si < MIRROR_TABLE_COUNT; si++) {
			is->upserted[si].inserted += row.streams[si].inserted;
			is->upserted[si].updated += row.streams[si].updated;
			is->upserted[si].unchanged += row.streams[si].unchanged;
		}
	}
	sb_free(&sql);
	return rc;
}

static int isolate_line(const char *line, size_t len, size_t index, void *arg)
{
	(void)index;
	isolate_state *is = arg;
	load_error row_err;
	if (exec_sql(is->db, "SAVEPOINT row", is->err, "cannot isolate a row") != 0)
		return -1;
	if (copy_in(is->db, is->sql, line, len, &row_err) == 0 && upsert_row(is, &row_err) == 0)
		return exec_sql(is->db, "RELEASE SAVEPOINT row", is->err, "cannot isolate a row") != 0 ? -1 : 0;
	if (!is_row_error(&row_err)) {
		*is->err = row_err;
		return -1;
	}
	if (exec_sql(is->db, "ROLLBACK TO SAVEPOINT row", is->err, "cannot isolate a row") != 0)
		return -1;
	return reject_row(is, line, len - (line[len - 1] == '\n'), row_err.msg);
}

static int copy_rows_isolated(load_db *db, const load_batch *batch, int ti, const char *sql, sbuf *rej,
			      load_batch_result *out, load_error *err)
{
	isolate_state is = {db, batch->run_id, ti, mirror_target_get((mirror_target_id)ti), sql, rej,
			    out, db->iso_counts, err};
	return each_line(batch, ti, isolate_line, &is);
}

/* What an item gives one COPY: its rows of a target, or its yields. */
typedef bool (*item_data_fn)(const load_item *it, int ti, const char **data, size_t *len);

static bool item_rows(const load_item *it, int ti, const char **data, size_t *len)
{
	if (!it->result || !it->result->nrows[ti])
		return false;
	*data = it->result->copy[ti].data;
	*len = it->result->copy[ti].len;
	return true;
}

/* Streams what pick gives for each item of the batch through one COPY. */
static int copy_items(load_db *db, const char *sql, const load_batch *batch, item_data_fn pick, int ti,
		      load_error *err)
{
	if (copy_begin(db, sql, err) != 0)
		return -1;
	for (size_t i = 0; i < batch->nitems; i++) {
		const char *data;
		size_t len;
		if (pick(&batch->items[i], ti, &data, &len) && copy_put(db, data, len, err) != 0)
			return -1;
	}
	return copy_end(db, err);
}

/* Target ti's rows of the batch when some may go straight into the mirror
 * table: each is picked (see pick_line), then the picked ones are COPYed
 * into the table and the others into staging. */
static int copy_split(load_db *db, const load_batch *batch, int ti, const char *staging_sql, size_t nrows,
		      load_batch_result *out, size_t *staged, load_error *err)
{
	pick_state ps = {db, ti, calloc(nrows, 1), nrows, 0, 0};
	if (!ps.direct) {
		set_error(err, LOAD_ERROR, NULL, "out of memory");
		return -1;
	}
	each_line(batch, ti, pick_line, &ps);
	sbuf sql = {0};
	int rc = 0;
	if (ps.ndirect > 0) {
		if (copy_target_sql(&sql, ti, true) != 0) {
			set_error(err, LOAD_ERROR, NULL, "out of memory");
			rc = -1;
		} else {
			rc = copy_picked(db, sql.data, batch, ti, &ps, true, err);
		}
	}
	if (rc == 0 && ps.seen > ps.ndirect)
		rc = copy_picked(db, staging_sql, batch, ti, &ps, false, err);
	if (rc == 0) {
		*staged = ps.seen - ps.ndirect;
		int si = mirror_target_get((mirror_target_id)ti)->table_index;
		if (si >= 0)
			out->streams[si].inserted += ps.ndirect;
	}
	sb_free(&sql);
	free(ps.direct);
	return rc;
}

/* COPYs every item's rows for target ti into its staging table, or some
 * straight into the mirror (see copy_split); with rej (isolation mode) all
 * into staging row by row, collecting refused rows into rej. *staged: how
 * many rows went into staging, where the upsert takes them. */
static int copy_target(load_db *db, const load_batch *batch, int ti, sbuf *rej, load_batch_result *out,
		       size_t *staged, load_error *err)
{
	size_t nrows = 0;
	for (size_t i = 0; i < batch->nitems; i++)
		if (batch->items[i].result)
			nrows += batch->items[i].result->nrows[ti];
	*staged = 0;
	if (nrows == 0)
		return 0;
	out->rows += nrows;
	sbuf sql = {0};
	int rc = -1;
	if (copy_target_sql(&sql, ti, false) != 0) {
		set_error(err, LOAD_ERROR, NULL, "out of memory");
	} else if (rej) {
		if (db->direct[ti]) { /* the attempt that failed may not have picked them */
			pick_state ps = {.db = db, .ti = ti};
			each_line(batch, ti, note_line, &ps);
		}
		rc = copy_rows_isolated(db, batch, ti, sql.data, rej, out, err); /* upserted row by row */
	} else if (db->direct[ti]) {
		rc = copy_split(db, batch, ti, sql.data, nrows, out, staged, err);
	} else {
		rc = copy_items(db, sql.data, batch, item_rows, ti, err);
		*staged = nrows;
	}
	sb_free(&sql);
	return rc;
}

/* The value column c of the stored row d takes from the new row n on
 * conflict (see mirror_target's fill_mask and keep_mask). */
static void add_new_value(sbuf *b, const mirror_target *t, size_t c, const char *d, const char *n)
{
	const char *col = t->cols[c].name;
	if (t->fill_mask & (1u << c))
		sb_printf(b, "coalesce(%s.%s, %s.%s)", n, col, d, col);
	else if (t->keep_mask & (1u << c))
		sb_printf(b, "coalesce(%s.%s, %s.%s)", d, col, n, col);
	else
		sb_printf(b, "%s.%s", n, col);
}

/* "the stored row d differs from the new row n": a deleted row, or any
 * column the target updates IS DISTINCT FROM the value it would take. */
static void add_changed(sbuf *b, const mirror_target *t, const char *d, const char *n)
{
	sb_printf(b, "(%s.deleted_at IS NOT NULL OR (", d);
	bool first = true;
	for (size_t c = 0; c < t->ncols; c++)
		if (t->update_mask & (1u << c)) {
			sb_printf(b, "%s%s.%s", first ? "" : ", ", d, t->cols[c].name);
			first = false;
		}
	sb_printf(b, ") IS DISTINCT FROM (");
	first = true;
	for (size_t c = 0; c < t->ncols; c++)
		if (t->update_mask & (1u << c)) {
			sb_printf(b, "%s", first ? "" : ", ");
			add_new_value(b, t, c, d, n);
			first = false;
		}
	sb_printf(b, "))");
}

/* The upsert of one target, as one statement whose single row is
 * (stream, inserted, updated, unchanged). With prefilter, rows whose content
 * did not change are filtered out by a read-only join first, so they are
 * neither written nor even locked (ON CONFLICT ... WHERE alone would lock
 * them). Into a table that was empty when the session began (an initial
 * load) nearly every row is new, and that join, a second index probe per
 * row, was 45% of the upserts' time: there it is left out. */
static void build_upsert(sbuf *b, int ti, int64_t run_id, bool prefilter)
{
	const mirror_target *t = mirror_target_get((mirror_target_id)ti);
	const char *k1 = t->cols[0].name;
	const char *k2 = t->nkeys > 1 ? t->cols[1].name : NULL;
	char keys[128];
	snprintf(keys, sizeof(keys), "%s%s%s", k1, k2 ? ", " : "", k2 ? k2 : "");

	sb_printf(b, "WITH src AS (SELECT DISTINCT ON (%s) * FROM stg_%d ORDER BY %s, ctid DESC), ", keys, ti, keys);
	if (prefilter) {
		sb_printf(b, "chg AS (SELECT s.* FROM src s LEFT JOIN %s d ON d.%s = s.%s", t->table, k1, k1);
		if (k2)
			sb_printf(b, " AND d.%s = s.%s", k2, k2);
		sb_printf(b, " WHERE d.%s IS NULL OR ", k1);
		add_changed(b, t, "d", "s");
	} else {
		sb_printf(b, "chg AS (SELECT * FROM src");
	}
	sb_printf(b, "), up AS (INSERT INTO %s AS d (", t->table);
	add_column_list(b, t, "");
	sb_printf(b, ") SELECT ");
	add_column_list(b, t, "");
	sb_printf(b, " FROM chg ON CONFLICT (%s) DO UPDATE SET ", keys);
	for (size_t c = 0; c < t->ncols; c++)
		if (t->update_mask & (1u << c)) {
			sb_printf(b, "%s = ", t->cols[c].name);
			add_new_value(b, t, c, "d", "excluded");
			sb_printf(b, ", ");
		}
	sb_printf(b, "updated_at = now(), deleted_at = NULL WHERE ");
	add_changed(b, t, "d", "excluded");
	sb_printf(b, " RETURNING (xmax = 0) AS ins), ");
	sb_printf(b,
		  "cnt AS (SELECT count(*) FILTER (WHERE ins) AS i, count(*) FILTER (WHERE NOT ins) AS u, "
		  "(SELECT count(*) FROM src) - count(*) AS n FROM up), ");
	sb_printf(b,
		  "st AS (INSERT INTO sync_run_streams AS x (run_id, stream, inserted, updated, unchanged) "
		  "SELECT %" PRId64 ", '%s', i, u, n FROM cnt ON CONFLICT (run_id, stream) DO UPDATE SET "
		  "inserted = x.inserted + excluded.inserted, updated = x.updated + excluded.updated, "
		  "unchanged = x.unchanged + excluded.unchanged) "
		  "SELECT '%s', i, u, n FROM cnt;\n",
		  run_id, t->stream, t->stream);
}

/* Per-stream request, retry, skip, reject and NUL counts of the batch, and
 * the rows of its unchanged sources whose counts came with their digest. */
static void tally_batch(const load_batch *batch, load_counts *s)
{
	for (size_t i = 0; i < batch->nitems; i++) {
		const load_item *it = &batch->items[i];
		int si = mirror_table_index(bloom_unit_stream(it->unit.kind));
		if (si < 0)
			continue;
		s[si].requests += it->attempts;
		s[si].retries += it->retries;
		if (!it->result) {
			s[si].skipped++; /* vanished between list and detail */
			continue;
		}
		if (it->unchanged && it->named)
			for (int t = 0; t < MIRROR_TABLE_COUNT; t++)
				s[t].unchanged += it->named[t];
		s[si].skipped += it->result->skipped;
		s[si].nul_removed += it->result->nul_removed;
		for (size_t r = 0; r < it->result->nrejects; r++) {
			int ri = mirror_table_index(it->result->rejects[r].stream);
			s[ri >= 0 ? ri : si].rejected++;
		}
	}
}

static bool has_children(const load_batch *batch)
{
	for (size_t i = 0; i < batch->nitems; i++)
		if (batch->items[i].result && batch->items[i].result->nchildren > 0)
			return true;
	return false;
}

/* COPYs the children the batch revealed into stg_units, in pieces: a users
 * list reveals several units per user, and they need not all sit in one
 * buffer. */
static int copy_children(load_db *db, const load_batch *batch, load_error *err)
{
	if (!has_children(batch))
		return 0;
	if (copy_begin(db, "COPY stg_units (kind, ref, parent) FROM STDIN", err) != 0)
		return -1;
	sbuf kids = {0};
	int rc = 0;
	for (size_t i = 0; i < batch->nitems && rc == 0; i++) {
		const bloom_result *r = batch->items[i].result;
		for (size_t c = 0; r && c < r->nchildren && rc == 0; c++) {
			sb_printf(&kids, "%s\t%" PRId64 "\t%" PRId64 "\n", bloom_unit_kind_name(r->children[c].kind),
				  r->children[c].ref, batch->items[i].seq);
			if (kids.failed) {
				set_error(err, LOAD_ERROR, NULL, "out of memory");
				PQputCopyEnd(db->conn, "out of memory");
				copy_finish(db, NULL);
				rc = -1;
			} else if (kids.len >= COPY_PIECE) {
				rc = copy_put(db, kids.data, kids.len, err);
				kids.len = 0;
			}
		}
	}
	if (rc == 0)
		rc = copy_put(db, kids.data, kids.len, err) == 0 ? copy_end(db, err) : -1;
	sb_free(&kids);
	return rc;
}

/* COPYs the batch's rejected records: those the mapping rejected, plus
 * `refused` (COPY lines of rows PostgreSQL refused). */
static int copy_rejects(load_db *db, const load_batch *batch, const sbuf *refused, load_error *err)
{
	sbuf rej = {0};
	if (refused->len)
		sb_add(&rej, refused->data, refused->len);
	for (size_t i = 0; i < batch->nitems; i++) {
		const bloom_result *r = batch->items[i].result;
		for (size_t j = 0; r && j < r->nrejects; j++) {
			const bloom_reject *rj = &r->rejects[j];
			sb_printf(&rej, "%" PRId64 "\t", batch->run_id);
			sb_copy_text(&rej, rj->stream);
			sb_add(&rej, "\t", 1);
			sb_copy_text(&rej, rj->id);
			sb_add(&rej, "\t", 1);
			/* what the API sent, as it sent it, but for a secret it
			 * echoed (the key, say): the table is no place for one */
			char *reason = log_redact_dup(rj->reason), *raw = rj->raw ? log_redact_dup(rj->raw) : NULL;
			if (!reason || (rj->raw && !raw)) {
				free(reason);
				free(raw);
				sb_free(&rej);
				set_error(err, LOAD_ERROR, NULL, "out of memory");
				return -1;
			}
			sb_copy_text(&rej, reason);
			sb_add(&rej, "\t", 1);
			sb_copy_text(&rej, raw);
			sb_add(&rej, "\n", 1);
			free(reason);
			free(raw);
		}
	}
	int rc = copy_sbuf(db, "COPY rejected_records (run_id, stream, record_id, reason, raw) FROM STDIN", &rej, err);
	sb_free(&rej);
	return rc;
}

static int run_statements(load_db *db, const char *sql, load_batch_result *out, load_error *err)
{
	if (!PQsendQuery(db->conn, sql))
		return fail_result(db, NULL, err, "cannot send the batch");
	PGresult *res;
	int rc = 0;
	while ((res = PQgetResult(db->conn)) != NULL) {
		if (rc != 0) {
			PQclear(res);
			continue;
		}
		if (!result_ok(res)) {
			rc = fail_result(db, res, err, "batch write failed");
			continue;
		}
		/* counts: rows of (stream, inserted, updated, unchanged); children: (added) */
		if (PQresultStatus(res) == PGRES_TUPLES_OK && PQnfields(res) == 4) {
			for (int row = 0; row < PQntuples(res); row++) {
				int si = mirror_table_index(PQgetvalue(res, row, 0));
				if (si < 0)
					continue;
				out->streams[si].inserted += strtoull(PQgetvalue(res, row, 1), NULL, 10);
				out->streams[si].updated += strtoull(PQgetvalue(res, row, 2), NULL, 10);
				out->streams[si].unchanged += strtoull(PQgetvalue(res, row, 3), NULL, 10);
			}
		} else if (PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1 && PQnfields(res) == 2 &&
			   strcmp(PQfname(res, 0), "children_added") == 0) {
			out->children_added = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
			out->units_marked = strtoll(PQgetvalue(res, 0, 1), NULL, 10);
		}
		PQclear(res);
	}
	return rc;
}

/* One array literal of a field of the batch's done (or vanished) items. */
typedef enum { UNIT_SEQ, UNIT_REF, UNIT_KIND } unit_field;

static void add_unit_array(sbuf *b, const load_batch *batch, bool vanished, unit_field field)
{
	bool any = false;
	sb_add(b, "'{", 2);
	for (size_t i = 0; i < batch->nitems; i++) {
		const load_item *it = &batch->items[i];
		if ((it->result == NULL) != vanished)
			continue;
		if (field == UNIT_KIND)
			sb_printf(b, "%s%s", any ? "," : "", bloom_unit_kind_name(it->unit.kind));
		else
			sb_printf(b, "%s%" PRId64, any ? "," : "", field == UNIT_SEQ ? it->seq : it->unit.ref);
		any = true;
	}
	sb_add(b, "}'", 2);
}

/* The CTE ud (done units) or uv (vanished ones) of add_run_counts: marks
 * the batch's pending units of that sort with state, RETURNING a row for
 * each; each by its seq and also its kind and ref: after a server crash that lost commits, the
 * bigserial hands out again numbers a job in flight still carries, so the
 * seq alone could name another, never fetched, unit. The seqs are also
 * given as an array for the primary key: joined to the unnest alone, the
 * planner hashed every unit of the run for each batch (311 ms instead of
 * 63 ms of statement time on the bench's medium org). */
static void add_units_update(sbuf *b, const load_batch *batch, bool vanished, int state)
{
	sb_printf(b, "%s AS (UPDATE sync_units u SET state = %d FROM unnest(", vanished ? "uv" : "ud", state);
	add_unit_array(b, batch, vanished, UNIT_SEQ);
	sb_add(b, "::bigint[], ", 12);
	add_unit_array(b, batch, vanished, UNIT_REF);
	sb_add(b, "::bigint[], ", 12);
	add_unit_array(b, batch, vanished, UNIT_KIND);
	sb_printf(b, "::text[]) v(seq, ref, kind) WHERE u.run_id = %" PRId64 " AND u.seq = ANY(", batch->run_id);
	add_unit_array(b, batch, vanished, UNIT_SEQ);
	sb_printf(b, "::bigint[]) AND u.seq = v.seq AND u.ref = v.ref AND u.kind = v.kind AND u.state = 0 RETURNING 1), ");
}

/* Which items a sources statement is about. */
typedef enum { ITEMS_READ, ITEMS_UNCHANGED } item_set;

static bool item_in(const load_item *it, item_set set)
{
	if (!it->result)
		return false; /* vanished: forgotten at the end of a complete run */
	return set == ITEMS_UNCHANGED ? it->unchanged && !it->named : !it->unchanged;
}

static size_t count_items(const load_batch *batch, item_set set)
{
	size_t n = 0;
	for (size_t i = 0; i < batch->nitems; i++)
		n += item_in(&batch->items[i], set);
	return n;
}

/* Appends "(VALUES ('kind', ref[, digest]), ...) AS v(kind, ref[, digest])"
 * for the items of the set; returns how many there were. */
static size_t add_item_values(sbuf *b, const load_batch *batch, item_set set, bool digests)
{
	size_t n = 0;
	for (size_t i = 0; i < batch->nitems; i++) {
		const load_item *it = &batch->items[i];
		if (!item_in(it, set))
			continue;
		sb_printf(b, "%s('%s', %" PRId64, n ? ", " : "(VALUES ", bloom_unit_kind_name(it->unit.kind),
			  it->unit.ref);
		if (digests) {
			sb_printf(b, ", %" PRId64 ", ", (int64_t)it->digest);
			if (it->named) {
				sb_add(b, "'", 1);
				add_counts(b, it->named);
				sb_add(b, "'", 1);
			} else {
				sb_add(b, "NULL::text", 10);
			}
		}
		sb_add(b, ")", 1);
		n++;
	}
	if (n)
		sb_printf(b, ") AS v(kind, ref%s)", digests ? ", digest, rows_named" : "");
	return n;
}

static bool item_yields(const load_item *it, int ti, const char **data, size_t *len)
{
	(void)ti;
	if (!item_in(it, ITEMS_READ) || !it->yields_len)
		return false;
	*data = it->yields;
	*len = it->yields_len;
	return true;
}

/* The run began with no source and no yield recorded (see check_sources). */
static bool fresh_sources(const load_db *db, int64_t run_id)
{
	return db->sources_checked && db->sources_run == run_id && db->no_sources;
}

/* COPYs the digests of the items read in full into sync_sources, where none
 * of them can be yet when fresh_sources (a conflict all the same fails the
 * batch on the key and it is written again the usual way, which upserts). */
static int copy_digests(load_db *db, const load_batch *batch, load_error *err)
{
	sbuf d = {0};
	for (size_t i = 0; i < batch->nitems; i++) {
		const load_item *it = &batch->items[i];
		if (!item_in(it, ITEMS_READ))
			continue;
		sb_printf(&d, "%s\t%" PRId64 "\t%" PRId64 "\t", bloom_unit_kind_name(it->unit.kind), it->unit.ref,
			  (int64_t)it->digest);
		if (it->named)
			add_counts(&d, it->named);
		else
			sb_add(&d, "\\N", 2);
		sb_add(&d, "\n", 1);
	}
	int rc = copy_sbuf(db, "COPY sync_sources (kind, ref, digest, rows_named) FROM STDIN", &d, err);
	sb_free(&d);
	return rc;
}

/* Replaces the yields of the items read in full: the old ones deleted, the
 * new ones COPYed straight into sync_yields; and on an initial load their
 * digests too (see copy_digests). The delete is left out when
 * the run began with no yields at all (an initial load): a unit is done once
 * a run, so none of its units has any. (Should one have, after all, say
 * from a batch committed again by the redo pass after a server crash, its
 * COPY fails on the primary key and the batch is written again the usual
 * way, which deletes first: see bookkeeping_conflict.) */
static int write_sources(load_db *db, const load_batch *batch, bool isolate, load_error *err)
{
	if (isolate || !fresh_sources(db, batch->run_id)) {
		sbuf v = {0}, sql = {0};
		int rc = 0;
		if (add_item_values(&v, batch, ITEMS_READ, false) > 0) {
			sb_printf(&sql, "DELETE FROM sync_yields y USING %s WHERE y.kind = v.kind AND y.ref = v.ref",
				  v.data ? v.data : "");
			if (v.failed || sql.failed) {
				set_error(err, LOAD_ERROR, NULL, "out of memory");
				rc = -1;
			} else {
				rc = exec_sql(db, sql.data, err, "cannot replace the yields");
			}
		}
		sb_free(&v);
		sb_free(&sql);
		if (rc != 0)
			return -1;
	}
	const char *data;
	size_t len;
	bool any = false;
	for (size_t i = 0; i < batch->nitems && !any; i++)
		any = item_yields(&batch->items[i], 0, &data, &len);
	if (any && copy_items(db, "COPY sync_yields (kind, ref, tbl, k1, k2) FROM STDIN", batch, item_yields, 0, err) != 0)
		return -1;
	return !isolate && fresh_sources(db, batch->run_id) ? copy_digests(db, batch, err) : 0;
}

/* The statements that keep sync_sources in step with the batch (its yields
 * are written by then): a source read in full gets, unless the batch had to
 * reject rows (then it is read in full again next time), its digest and
 * row counts; a source skipped as unchanged whose digest came without counts
 * (recorded before migration 007) counts its yields as unchanged rows (one
 * result row per stream: stream, 0, 0, unchanged). The others were counted
 * by tally_batch. */
static void build_sources(sbuf *b, const load_db *db, const load_batch *batch, bool isolate)
{
	sbuf v = {0};
	/* fresh_sources: write_sources COPYed the digests */
	if ((isolate || !fresh_sources(db, batch->run_id)) && add_item_values(&v, batch, ITEMS_READ, false) > 0 && !v.failed) {
		if (isolate) {
			sb_printf(b, "DELETE FROM sync_sources s USING %s WHERE s.kind = v.kind AND s.ref = v.ref;\n",
				  v.data);
		} else {
			v.len = 0;
			add_item_values(&v, batch, ITEMS_READ, true);
			sb_printf(b, "INSERT INTO sync_sources (kind, ref, digest, rows_named) SELECT kind, ref, digest, "
				     "rows_named FROM %s ON CONFLICT (kind, ref) DO UPDATE SET digest = excluded.digest, "
				     "rows_named = excluded.rows_named;\n", v.data);
		}
	}
	v.len = 0;
	if (add_item_values(&v, batch, ITEMS_UNCHANGED, false) > 0 && !v.failed) {
		sb_printf(b, "WITH c AS (SELECT (ARRAY[");
		for (int si = 0; si < MIRROR_TABLE_COUNT; si++)
			sb_printf(b, "%s'%s'", si ? ", " : "", mirror_tables[si]);
		sb_printf(b, "])[y.tbl + 1] AS stream, sum(cardinality(y.k1)) AS n FROM sync_yields y JOIN %s "
			     "ON y.kind = v.kind AND y.ref = v.ref GROUP BY y.tbl), "
			     "st AS (INSERT INTO sync_run_streams AS x (run_id, stream, unchanged) SELECT %" PRId64
			     ", stream, n FROM c ON CONFLICT (run_id, stream) DO UPDATE SET "
			     "unchanged = x.unchanged + excluded.unchanged) SELECT stream, 0, 0, n FROM c;\n",
			  v.data, batch->run_id);
	}
	if (v.failed)
		b->failed = true;
	sb_free(&v);
}

/* ---- a batch whose COMMIT went unanswered ----
 * When the connection is lost while the batch's last statements run (its
 * COMMIT among them), the transaction may have committed with only the
 * answer lost; the caller reconnects and calls load_batch_commit with the
 * same batch again. Redoing a committed batch leaves the mirror as it is
 * (upserts are idempotent) but adds its units, requests, retries and rows
 * to the run's counts a second time, its rejected records too. So the redo
 * first asks the database: the batch's units are marked done in its own
 * transaction and in no other (a run reads only pending units), so all of
 * them done means it committed, and it is not written again.
 *
 * The answer is final only once the old session has ended: a session that
 * holds the run lock (a sync) gets it back on reconnecting only then (see
 * load_reconnect), and until then the reconnect fails. */

static void note_unsure(load_db *db, const load_batch *batch, const load_batch_result *out)
{
	db->unsure.pending = true;
	db->unsure.run_id = batch->run_id;
	db->unsure.first_seq = batch->nitems ? batch->items[0].seq : 0;
	db->unsure.nitems = batch->nitems;
	db->unsure.out = *out;
}

/* How many of the batch's units are pending, and how many units of the run
 * it recorded: a unit's parent is a unit of the batch that recorded it.
 * (Without an index on parent that reads the run's units; it runs only
 * after a lost connection.) */
static int read_batch_units(load_db *db, const load_batch *batch, int64_t *pending, int64_t *children,
			    load_error *err)
{
	sbuf seqs = {0}, sql = {0};
	sb_add(&seqs, "'{", 2);
	for (size_t i = 0; i < batch->nitems; i++)
		sb_printf(&seqs, "%s%" PRId64, i ? "," : "", batch->items[i].seq);
	sb_add(&seqs, "}'::bigint[]", 12);
	sb_printf(&sql,
		  "SELECT count(*) FILTER (WHERE u.state = 0), (SELECT count(*) FROM sync_units c WHERE c.run_id = "
		  "%" PRId64 " AND c.parent = ANY(%s)) FROM sync_units u WHERE u.run_id = %" PRId64 " AND u.seq = ANY(%s)",
		  batch->run_id, seqs.data ? seqs.data : "", batch->run_id, seqs.data ? seqs.data : "");
	PGresult *res = NULL;
	if (seqs.failed || sql.failed)
		set_error(err, LOAD_ERROR, NULL, "out of memory");
	else
		res = exec_params(db, sql.data, 0, NULL, err, "cannot tell whether the batch committed");
	sb_free(&seqs);
	sb_free(&sql);
	if (!res)
		return -1;
	*pending = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
	*children = strtoll(PQgetvalue(res, 0, 1), NULL, 10);
	PQclear(res);
	return 0;
}

/* Whether the batch's transaction committed after all (see above). When it
 * did, out gets what the unanswered attempt had counted (the answers it
 * read before the connection went; the run's counts in the database are
 * whole) and the children the batch recorded, which the caller needs to
 * know there is more work. */
static int batch_committed(load_db *db, const load_batch *batch, load_batch_result *out, bool *committed,
			   load_error *err)
{
	int64_t pending = 0, children = 0;
	if (read_batch_units(db, batch, &pending, &children, err) != 0)
		return -1; /* still unsure: the next call asks again */
	db->unsure.pending = false;
	*committed = pending == 0;
	if (!*committed)
		return 0;
	bool same = db->unsure.run_id == batch->run_id && db->unsure.nitems == batch->nitems &&
		    db->unsure.first_seq == (batch->nitems ? batch->items[0].seq : 0);
	if (same) {
		*out = db->unsure.out;
	} else {
		memset(out, 0, sizeof(*out));
		tally_batch(batch, out->streams);
	}
	out->children_added = children;
	out->units_marked = (int64_t)batch->nitems; /* all of them: none is pending */
	db->units_added += children;
	return 0;
}

static size_t count_vanished(const load_batch *batch)
{
	size_t n = 0;
	for (size_t i = 0; i < batch->nitems; i++)
		n += batch->items[i].result == NULL;
	return n;
}

/* One statement for the run's counts of the batch: the units its bodies
 * named that the run does not have yet (see sql/005_units_lookup.sql), in
 * the order they were named; the per-stream counts; the run's totals. Its
 * single row is (children_added, units_marked). One statement, not one per stream: at
 * about ten statements a batch, parsing and planning them was a tenth of
 * the server's time on the bench's initial load. */
static void add_run_counts(sbuf *sql, const load_batch *batch, const load_batch_result *out)
{
	/* the units marked: done (ud) and vanished (uv), each only when the
	 * batch has such units, and counted as they leave the pending state,
	 * not as the batch holds them: a unit whose row a server crash took
	 * with a lost commit (pipeline.c: units_left_behind) is not done, and
	 * units_done must not pass units_known */
	size_t vanished = count_vanished(batch);
	sb_printf(sql, "WITH ");
	if (vanished < batch->nitems)
		add_units_update(sql, batch, false, 1);
	else
		sb_printf(sql, "ud AS (SELECT 1 WHERE false), ");
	if (vanished)
		add_units_update(sql, batch, true, 2);
	else
		sb_printf(sql, "uv AS (SELECT 1 WHERE false), ");
	if (has_children(batch))
		sb_printf(sql,
			  "ins AS (INSERT INTO sync_units (run_id, kind, ref, parent) "
			  "SELECT %" PRId64 ", s.kind, s.ref, min(s.parent) FROM stg_units s GROUP BY s.kind, s.ref "
			  "HAVING NOT EXISTS (SELECT 1 FROM sync_units u WHERE u.run_id = %" PRId64
			  " AND u.ref = s.ref AND u.kind = s.kind) ORDER BY min(s.parent), s.kind, s.ref RETURNING 1), ",
			  batch->run_id, batch->run_id);
	else
		sb_printf(sql, "ins AS (SELECT 1 WHERE false), ");
	bool any = false;
	for (int si = 0; si < MIRROR_TABLE_COUNT; si++) {
		const load_counts *c = &out->streams[si];
		/* inserted: so far only the rows written straight into the mirror;
		 * unchanged: only the rows of unchanged sources with counts */
		if (!c->requests && !c->skipped && !c->rejected && !c->nul_removed && !c->inserted && !c->unchanged)
			continue;
		sb_printf(sql,
			  "%s(%" PRId64 ", '%s', %" PRIu64 ", %" PRIu64 ", %" PRIu64 ", %" PRIu64 ", %" PRIu64
			  ", %" PRIu64 ", %" PRIu64 ")",
			  any ? ", " : "st AS (INSERT INTO sync_run_streams AS x (run_id, stream, requests, retries, "
				       "skipped, rejected, nul_removed, inserted, unchanged) VALUES ",
			  batch->run_id, mirror_tables[si], c->requests, c->retries, c->skipped, c->rejected,
			  c->nul_removed, c->inserted, c->unchanged);
		any = true;
	}
	if (any)
		sb_printf(sql, " ON CONFLICT (run_id, stream) DO UPDATE SET "
			       "requests = x.requests + excluded.requests, retries = x.retries + excluded.retries, "
			       "skipped = x.skipped + excluded.skipped, rejected = x.rejected + excluded.rejected, "
			       "nul_removed = x.nul_removed + excluded.nul_removed, inserted = x.inserted + "
			       "excluded.inserted, unchanged = x.unchanged + excluded.unchanged), ");
	sb_printf(sql,
		  "c AS (SELECT (SELECT count(*) FROM ins) AS n, (SELECT count(*) FROM ud) + (SELECT count(*) FROM uv) AS m) "
		  "UPDATE sync_runs SET units_known = units_known + c.n, units_done = units_done + c.m, "
		  "sources_read = sources_read + %zu FROM c WHERE id = %" PRId64
		  " RETURNING c.n AS children_added, c.m AS units_marked;\n",
		  count_items(batch, ITEMS_READ), batch->run_id);
}

/* One attempt at the batch's transaction; isolate: COPY row by row and
 * reject the rows PostgreSQL refuses. */
static int commit_once(load_db *db, const load_batch *batch, bool isolate, load_batch_result *out, load_error *err)
{
	memset(out, 0, sizeof(*out));
	memset(db->iso_counts, 0, sizeof(db->iso_counts));
	tally_batch(batch, out->streams);
	sbuf sql = {0}, refused = {0};
	if (ensure_staging(db, err) != 0 || begin(db, err) != 0)
		return -1;
	if (isolate && exec_sql(db, "SET CONSTRAINTS ALL IMMEDIATE", err, "cannot isolate rows") != 0)
		goto fail;
	double t0 = mono_ms();
	size_t staged[MIRROR_T_COUNT];
	for (int ti = 0; ti < MIRROR_T_COUNT; ti++)
		if (copy_target(db, batch, ti, isolate ? &refused : NULL, out, &staged[ti], err) != 0)
			goto fail;
	if (copy_children(db, batch, err) != 0 || copy_rejects(db, batch, &refused, err) != 0 ||
	    write_sources(db, batch, isolate, err) != 0)
		goto fail;
	double t_copied = mono_ms();

	for (int ti = 0; ti < MIRROR_T_COUNT; ti++)
		if (staged[ti])
			build_upsert(&sql, ti, batch->run_id,
				     !db->was_empty[mirror_target_get((mirror_target_id)ti)->table_index]);
	build_sources(&sql, db, batch, isolate);
	add_run_counts(&sql, batch, out);
	for (int si = 0; si < MIRROR_TABLE_COUNT; si++) {
		out->streams[si].inserted += db->iso_counts[si].inserted;
		out->streams[si].updated += db->iso_counts[si].updated;
		out->streams[si].unchanged += db->iso_counts[si].unchanged;
	}
	/* Emptied by DELETE, and by a TRUNCATE once STAGING_DEAD_ROWS rows have
	 * passed through since the last one. A TRUNCATE gives a temp table new
	 * files (0.3-1.6 ms each time on the bench's machine); a DELETE leaves
	 * dead rows that every later scan of the table reads again, since temp
	 * tables are never vacuumed (DELETE alone took 0.9 s of the bench's
	 * initial load once). Rows of a transaction that rolls back are dead too,
	 * hence the count whether or not it commits. */
	bool truncated[MIRROR_T_COUNT] = {false};
	for (int ti = 0; ti < MIRROR_T_COUNT; ti++) {
		if (!staged[ti])
			continue;
		db->staging_dead[ti] += staged[ti];
		truncated[ti] = db->staging_dead[ti] >= STAGING_DEAD_ROWS;
		sb_printf(&sql, "%s stg_%d;\n", truncated[ti] ? "TRUNCATE" : "DELETE FROM", ti);
	}
	if (has_children(batch))
		sb_printf(&sql, "TRUNCATE stg_units;\n");
	sb_printf(&sql, "COMMIT");
	if (sql.failed) {
		set_error(err, LOAD_ERROR, NULL, "out of memory");
		goto fail;
	}
	if (run_statements(db, sql.data, out, err) != 0) {
		if (err->outcome == LOAD_RETRY)
			note_unsure(db, batch, out);
		goto fail;
	}
	for (int ti = 0; ti < MIRROR_T_COUNT; ti++)
		if (truncated[ti])
			db->staging_dead[ti] = 0;
	db->units_added += out->children_added;
	log_debug("batch: copy %.1f ms, upserts and commit %.1f ms", t_copied - t0, mono_ms() - t_copied);
	sb_free(&sql);
	sb_free(&refused);
	return 0;
fail:
	sb_free(&sql);
	sb_free(&refused);
	rollback_quietly(db);
	return -1;
}

/* Whether the batch failed, on an initial load, on the key of a yield or a
 * digest already recorded for one of its units: the constraint's name is
 * in the message, whatever the server's language. */
static bool bookkeeping_conflict(const load_db *db, const load_batch *batch, const load_error *err)
{
	return fresh_sources(db, batch->run_id) && err->outcome == LOAD_ERROR && strcmp(err->sqlstate, "23505") == 0 &&
	       (strstr(err->msg, "sync_yields_pkey") || strstr(err->msg, "sync_sources_pkey"));
}

int load_batch_commit(load_db *db, const load_batch *batch, load_batch_result *out, load_error *err)
{
	bool committed = false;
	if (db->unsure.pending && batch_committed(db, batch, out, &committed, err) != 0)
		return -1;
	if (committed) {
		log_info("the batch of %zu units had committed before the connection was lost: not written again",
			 batch->nitems);
		return 0;
	}
	if (commit_once(db, batch, false, out, err) == 0) {
		return 0;
	}
	if (bookkeeping_conflict(db, batch, err)) {
		/* see write_sources: a unit already has yields or a digest, which
		 * the initial load's COPYs do not expect; not a fault of the data */
		log_info("a batch of %zu units met sources recorded before (%s); writing it again, replacing them",
			 batch->nitems, err->msg);
		db->no_sources = false;
		if (commit_once(db, batch, false, out, err) == 0)
			return 0;
	}
	if (!is_row_error(err))
		return -1;
	/* a value PostgreSQL will not store: find the rows, reject them, keep the rest */
	log_warn("a batch of %zu units failed on bad data (%s); writing it row by row", batch->nitems, err->msg);
	return commit_once(db, batch, true, out, err);
}

/* ---- the end of a run ---- */

/* Tables with rows this run cannot name for a record it rejected. Without
 * its whole key (no JSON reader took the element, or its Id was missing or
 * not an integer), the record's row from an earlier run cannot be named,
 * and would look deleted; so would the rows under it (a user's todos, a
 * meeting's attendees, ...), as such a record names no unit, and its link
 * rows (bloom_tables_under). With its key, its row is named (stale, not
 * deleted), but its link rows (a measurable's meeting_measurables row, a
 * goal's goal_meetings) are not written (bloom_tables_linked). Nothing is
 * marked deleted in those tables this time; the source is read again by
 * every run while it rejects the record (pipeline.c), and the first run
 * that reads it clean marks them. Clears their bits in *table_mask. */
static int hold_hidden_tables(load_db *db, int64_t run_id, uint32_t *table_mask, load_error *err)
{
	char sql[256];
	snprintf(sql, sizeof(sql),
		 "SELECT stream, bool_or(record_id IS NULL OR record_id LIKE '%%?%%') FROM rejected_records "
		 "WHERE run_id = %" PRId64 " GROUP BY stream",
		 run_id);
	PGresult *res = exec_params(db, sql, 0, NULL, err, "cannot read the run's rejected records");
	if (!res)
		return -1;
	for (int row = 0; row < PQntuples(res); row++) {
		const char *stream = PQgetvalue(res, row, 0);
		bool unkeyed = strcmp(PQgetvalue(res, row, 1), "t") == 0;
		uint32_t held = (unkeyed ? bloom_tables_under(stream) : bloom_tables_linked(stream)) & *table_mask;
		if (!held)
			continue;
		*table_mask &= ~held;
		char names[512] = "";
		for (int si = 0; si < MIRROR_TABLE_COUNT; si++)
			if (held & ((uint32_t)1 << si))
				snprintf(names + strlen(names), sizeof(names) - strlen(names), "%s%s", names[0] ? ", " : "",
					 mirror_tables[si]);
		log_warn("a %s record was rejected%s (see rejected_records): no row is marked deleted in %s this time",
			 stream, unkeyed ? " without its key" : "", names);
	}
	PQclear(res);
	return 0;
}

static int mark_deleted(load_db *db, int64_t run_id, uint32_t table_mask, uint64_t deleted[MIRROR_TABLE_COUNT],
			bool *held, load_error *err)
{
	if (hold_hidden_tables(db, run_id, &table_mask, err) != 0)
		return -1;
	/* both grew during the run; with the statistics of their start the
	 * planner may pick a plan that reads them once per mirror row */
	if (exec_sql(db, "ANALYZE sync_yields, sync_units", err, "cannot analyze the run's tables") != 0)
		return -1;
	for (int si = 0; si < MIRROR_TABLE_COUNT; si++) {
		if (!(table_mask & ((uint32_t)1 << si)))
			continue; /* its stream was not synced: nothing is known about its rows */
		const char *table = mirror_tables[si];
		const mirror_target *t = NULL;
		for (int ti = 0; ti < MIRROR_T_COUNT && !t; ti++)
			if (strcmp(mirror_target_get((mirror_target_id)ti)->table, table) == 0)
				t = mirror_target_get((mirror_target_id)ti);
		const char *k1 = t->cols[0].name;
		const char *k2 = t->nkeys > 1 ? t->cols[1].name : NULL;
		char sql[1536];
		snprintf(sql, sizeof(sql),
			 "WITH alive AS (SELECT unnest(y.k1) AS k1%s FROM sync_yields y JOIN sync_units u "
			 "ON u.run_id = %" PRId64 " AND u.state = 1 AND u.kind = y.kind AND u.ref = y.ref WHERE y.tbl = %d), "
			 "d AS (UPDATE %s t SET deleted_at = now() WHERE t.deleted_at IS NULL "
			 "AND NOT EXISTS (SELECT 1 FROM alive a WHERE a.k1 = t.%s%s%s) RETURNING 1), "
			 "c AS (SELECT count(*) AS n FROM d), "
			 "st AS (INSERT INTO sync_run_streams AS x (run_id, stream, deleted) SELECT %" PRId64
			 ", '%s', n FROM c ON CONFLICT (run_id, stream) DO UPDATE SET deleted = x.deleted + excluded.deleted) "
			 "SELECT n FROM c",
			 k2 ? ", unnest(y.k2) AS k2" : "", run_id, si, table, k1, k2 ? " AND a.k2 = t." : "", k2 ? k2 : "",
			 run_id, table);
		/* in a savepoint: a row that refuses to be marked (a trigger or
		 * constraint a user added) holds that table's deletes back, with
		 * a warning, rather than failing every complete run */
		if (exec_sql(db, "SAVEPOINT mark", err, "cannot mark deleted rows") != 0)
			return -1;
		load_error table_err;
		PGresult *res = exec_params(db, sql, 0, NULL, &table_err, "cannot mark deleted rows");
		if (!res) {
			if (!is_row_error(&table_err)) {
				*err = table_err;
				return -1;
			}
			if (exec_sql(db, "ROLLBACK TO SAVEPOINT mark", err, "cannot mark deleted rows") != 0)
				return -1;
			log_warn("no row is marked deleted in %s this time: %s", table, table_err.msg);
			if (deleted)
				deleted[si] = 0;
			*held = true;
			continue;
		}
		uint64_t n = strtoull(PQgetvalue(res, 0, 0), NULL, 10);
		PQclear(res);
		if (deleted)
			deleted[si] = n;
		if (n)
			log_info("marked %" PRIu64 " %s rows deleted", n, table);
	}
	return 0;
}

/* Before the end of a run reads its done units: the statistics of
 * sync_units are those of its last ANALYZE, often taken when the run's units
 * were nearly all pending. The planner then expects one done unit and
 * anti-joins every source against all of them row by row: 8-11 s at the end
 * of a no-change sync of the medium org, in about half of them, where the
 * hash anti-join takes 10 ms. The ANALYZE takes 15 ms. */
static int analyze_done_units(load_db *db, load_error *err)
{
	return exec_sql(db, "ANALYZE sync_units", err, "cannot analyze sync_units");
}

/* After a complete run: a source the run did not read (its parent no longer
 * names it, or it vanished) is forgotten with its yields, so that should it
 * come back with the very body it had, it is read in full, not skipped over
 * rows since marked deleted. */
static int forget_sources(load_db *db, int64_t run_id, int64_t *forgotten, load_error *err)
{
	char sql[640];
	snprintf(sql, sizeof(sql),
		 "WITH gone AS (DELETE FROM sync_sources s WHERE s.kind <> '' AND NOT EXISTS (SELECT 1 FROM sync_units u "
		 "WHERE u.run_id = %" PRId64 " AND u.state = 1 AND u.kind = s.kind AND u.ref = s.ref) "
		 "RETURNING kind, ref), y AS (DELETE FROM sync_yields y USING gone g WHERE y.kind = g.kind "
		 "AND y.ref = g.ref) SELECT count(*) FROM gone",
		 run_id);
	PGresult *res = exec_params(db, sql, 0, NULL, err, "cannot forget the sources the run did not read");
	if (!res)
		return -1;
	*forgotten = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
	PQclear(res);
	return 0;
}

/* Whether a complete run can have rows to mark deleted. After a complete
 * run that looked for deletes every live mirror row was named by one of its
 * units. Rows stop being named only when a unit is read in full (its yields
 * replaced) or forgotten. So when no unit was read in full since that run (by this run
 * or by failed or abandoned ones in between) and this one forgot none, the
 * named rows are the same as then and nothing new can be deleted: the
 * anti-joins over every table are skipped (the bulk of a no-change run's
 * last second). Nor can the first run a schema ever had delete anything:
 * every unit of a run is committed once, its yields with it, so each row
 * the run wrote is named by a unit of the run, and there were no others. */
static int deletes_possible(load_db *db, int64_t run_id, int64_t forgotten, bool *possible, load_error *err)
{
	*possible = true;
	if (forgotten > 0)
		return 0;
	/* a complete run whose yields were lost did not look (see
	 * sql/010_deletes_skipped.sql) */
	char last[256];
	snprintf(last, sizeof(last),
		 "(SELECT max(id) FROM sync_runs WHERE status = 'succeeded' AND NOT deletes_skipped AND id < %" PRId64 ")",
		 run_id);
	char sql[768];
	snprintf(sql, sizeof(sql),
		 "SELECT coalesce(sum(sources_read), 0), %s, EXISTS (SELECT 1 FROM sync_runs WHERE id < %" PRId64
		 ") FROM sync_runs WHERE id > coalesce(%s, 0)",
		 last, run_id, last);
	PGresult *res = exec_params(db, sql, 0, NULL, err, "cannot read sync_runs");
	if (!res)
		return -1;
	bool first_run = strcmp(PQgetvalue(res, 0, 2), "f") == 0;
	*possible = !first_run && (strtoll(PQgetvalue(res, 0, 0), NULL, 10) > 0 || PQgetisnull(res, 0, 1));
	PQclear(res);
	return 0;
}

/* A run is complete only when every unit it queued is done: completing it
 * otherwise would mark deleted the rows its pending units name. The
 * pipeline sees to it (a batch the server lost in a crash is fetched
 * again); this is the last guard. */
static int no_unit_pending(load_db *db, int64_t run_id, load_error *err)
{
	char sql[160];
	snprintf(sql, sizeof(sql), "SELECT count(*) FROM sync_units WHERE run_id = %" PRId64 " AND state = 0", run_id);
	PGresult *res = exec_params(db, sql, 0, NULL, err, "cannot count the run's pending units");
	if (!res)
		return -1;
	long long pending = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
	PQclear(res);
	if (pending == 0)
		return 0;
	set_error(err, LOAD_ERROR, NULL,
		  "run %" PRId64 " cannot complete: %lld of its units are still pending (it stays open; the next sync "
		  "resumes it)",
		  run_id, pending);
	return -1;
}

int load_run_finish(load_db *db, int64_t run_id, const char *status, const char *error, bool apply_deletes,
		    uint32_t table_mask, uint64_t deleted[MIRROR_TABLE_COUNT], load_error *err)
{
	if (deleted)
		memset(deleted, 0, sizeof(uint64_t) * MIRROR_TABLE_COUNT);
	if (begin(db, err) != 0)
		return -1;
	/* durable once recorded, and with it every batch before (see connect_session) */
	if (exec_sql(db, "SET LOCAL synchronous_commit = on", err, "cannot record the end of the run") != 0)
		goto fail;
	bool intact = true, held = false;
	if (apply_deletes && no_unit_pending(db, run_id, err) != 0)
		goto fail;
	if (apply_deletes && yields_intact(db, run_id, &intact, err) != 0)
		goto fail;
	if (apply_deletes && !intact)
		log_warn("the rows this run saw were lost (the database server crashed since the run began): "
			 "nothing is marked deleted this time; the next complete run will");
	if (apply_deletes) {
		int64_t forgotten = 0;
		bool possible = false;
		/* a run that began with no source recorded read every source it
		 * has, so none is left to forget (and looking was 39 ms at the end
		 * of the medium org's initial load) */
		bool forget = !fresh_sources(db, run_id);
		if (intact && ((forget && analyze_done_units(db, err) != 0) ||
			       (forget && forget_sources(db, run_id, &forgotten, err) != 0) ||
			       deletes_possible(db, run_id, forgotten, &possible, err) != 0))
			goto fail;
		if (intact && possible && mark_deleted(db, run_id, table_mask, deleted, &held, err) != 0)
			goto fail;
		char sql[256];
		snprintf(sql, sizeof(sql),
			 "DELETE FROM sync_sources WHERE kind = '' AND ref = %" PRId64
			 "; DELETE FROM sync_units WHERE run_id = %" PRId64,
			 run_id, run_id);
		if (exec_sql(db, sql, err, "cannot clear the run's units") != 0)
			goto fail;
	}
	char idtext[32];
	snprintf(idtext, sizeof(idtext), "%" PRId64, run_id);
	char safe_error[1024];
	if (error)
		log_redact(error, safe_error, sizeof(safe_error));
	/* a run that did not mark every table's deletes is no baseline for
	 * deletes_possible: the next complete run looks again */
	const char *vals[] = {idtext, status, error ? safe_error : NULL, apply_deletes && (!intact || held) ? "t" : "f"};
	PGresult *res = exec_params(db,
				    "UPDATE sync_runs SET status = $2, finished_at = now(), error = $3, "
				    "deleted_rows = (SELECT coalesce(sum(deleted), 0) FROM sync_run_streams WHERE run_id = $1::bigint), "
				    "deletes_skipped = $4::boolean WHERE id = $1::bigint",
				    4, vals, err, "cannot record the end of the run");
	if (!res)
		goto fail;
	PQclear(res);
	return commit(db, err);
fail:
	rollback_quietly(db);
	return -1;
}

int load_lock_timeout(load_db *db, int ms, load_error *err)
{
	char sql[64];
	snprintf(sql, sizeof(sql), "SET lock_timeout = %d", ms);
	return exec_sql(db, sql, err, "cannot set lock_timeout");
}

int load_run_add_requests(load_db *db, int64_t run_id, const load_counts counts[MIRROR_TABLE_COUNT],
			  load_error *err)
{
	sbuf sql = {0};
	for (int si = 0; si < MIRROR_TABLE_COUNT; si++) {
		if (!counts[si].requests)
			continue;
		sb_printf(&sql,
			  "INSERT INTO sync_run_streams AS x (run_id, stream, requests, retries) VALUES (%" PRId64
			  ", '%s', %" PRIu64 ", %" PRIu64 ") ON CONFLICT (run_id, stream) DO UPDATE SET "
			  "requests = x.requests + excluded.requests, retries = x.retries + excluded.retries;\n",
			  run_id, mirror_tables[si], counts[si].requests, counts[si].retries);
	}
	if (sql.failed) {
		sb_free(&sql);
		set_error(err, LOAD_ERROR, NULL, "out of memory");
		return -1;
	}
	int rc = sql.len ? exec_sql(db, sql.data, err, "cannot record the run's requests") : 0;
	sb_free(&sql);
	return rc;
}

int load_run_counts(load_db *db, int64_t run_id, load_counts out[MIRROR_TABLE_COUNT], load_error *err)
{
	memset(out, 0, sizeof(load_counts) * MIRROR_TABLE_COUNT);
	char sql[512];
	snprintf(sql, sizeof(sql),
		 "SELECT stream, requests, retries, inserted, updated, unchanged, skipped, rejected, deleted, "
		 "nul_removed FROM sync_run_streams WHERE run_id = %" PRId64,
		 run_id);
	PGresult *res = exec_params(db, sql, 0, NULL, err, "cannot read the run's counts");
	if (!res)
		return -1;
	for (int row = 0; row < PQntuples(res); row++) {
		int si = mirror_table_index(PQgetvalue(res, row, 0));
		if (si < 0)
			continue;
		uint64_t *f[] = {&out[si].requests, &out[si].retries,  &out[si].inserted,
				 &out[si].updated,  &out[si].unchanged, &out[si].skipped,
				 &out[si].rejected, &out[si].deleted,   &out[si].nul_removed};
		for (int c = 0; c < 9; c++)
			*f[c] = strtoull(PQgetvalue(res, row, c + 1), NULL, 10);
	}
	PQclear(res);
	return 0;
}

/* ---- status ---- */

static const char status_sql[] =
    "SELECT r.id, to_char(r.started_at, 'YYYY-MM-DD HH24:MI:SS'), "
    /* in hours past 24 (an interval's days would be dropped by HH24) */
    "to_char(make_interval(secs => extract(epoch FROM coalesce(r.finished_at, now()) - r.started_at)), "
    "'HH24:MI:SS'), "
    "r.status, r.resumed, coalesce(sum(s.inserted + s.updated + s.deleted), 0), coalesce(sum(s.requests), 0), "
    "r.units_done, r.units_known, coalesce(r.error, ''), "
    "to_char(r.started_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'), "
    "coalesce(to_char(r.finished_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'), ''), "
    /* to the millisecond: finer is noise, coarser hides short runs */
    "coalesce(extract(epoch FROM coalesce(r.finished_at, now()) - r.started_at), 0)::numeric(12,3) "
    "FROM sync_runs r LEFT JOIN sync_run_streams s ON s.run_id = r.id "
    "GROUP BY r.id ORDER BY r.id DESC LIMIT ";

static void print_status_json(PGresult *res, FILE *out)
{
	json_t *runs = json_array();
	for (int row = 0; row < PQntuples(res); row++) {
		json_t *r = json_object();
		json_object_set_new(r, "id", json_integer(strtoll(PQgetvalue(res, row, 0), NULL, 10)));
		json_object_set_new(r, "started_at", json_string(PQgetvalue(res, row, 10)));
		const char *fin = PQgetvalue(res, row, 11);
		json_object_set_new(r, "finished_at", *fin ? json_string(fin) : json_null());
		json_object_set_new(r, "duration_s", json_real(strtod(PQgetvalue(res, row, 12), NULL)));
		json_object_set_new(r, "status", json_string(PQgetvalue(res, row, 3)));
		json_object_set_new(r, "resumed", json_integer(strtoll(PQgetvalue(res, row, 4), NULL, 10)));
		json_object_set_new(r, "rows_changed", json_integer(strtoll(PQgetvalue(res, row, 5), NULL, 10)));
		json_object_set_new(r, "requests", json_integer(strtoll(PQgetvalue(res, row, 6), NULL, 10)));
		json_object_set_new(r, "units_done", json_integer(strtoll(PQgetvalue(res, row, 7), NULL, 10)));
		json_object_set_new(r, "units_known", json_integer(strtoll(PQgetvalue(res, row, 8), NULL, 10)));
		const char *e = PQgetvalue(res, row, 9);
		json_object_set_new(r, "error", *e ? json_string(e) : json_null());
		json_array_append_new(runs, r);
	}
	json_t *doc = json_pack("{s:o}", "runs", runs);
	/* 15 significant digits print a decimal of up to 15 (duration_s has at
	 * most 12) as written: 0.2, not jansson's default 17 (0.20000000000000001) */
	char *text = json_dumps(doc, JSON_INDENT(2) | JSON_REAL_PRECISION(15));
	if (text)
		fprintf(out, "%s\n", text);
	free(text);
	json_decref(doc);
}

/* Whether a session holds the run lock now: a run recorded 'running'
 * without it was killed or crashed (nothing else leaves that status). */
static bool run_lock_held(load_db *db)
{
	char sql[256];
	snprintf(sql, sizeof(sql),
		 "SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND granted AND classid = %d AND objid = %u "
		 "AND objsubid = 2",
		 LOCK_CLASS, schema_hash(db->schema));
	PGresult *res = PQexec(db->conn, sql);
	/* when it cannot be told, say what the record says */
	bool held = PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) > 0;
	PQclear(res);
	return held;
}

static void print_status_table(load_db *db, PGresult *res, FILE *out)
{
	if (PQntuples(res) == 0) {
		fprintf(out, "no runs yet\n");
		return;
	}
	fprintf(out, "%-6s %-19s %-9s %-10s %12s %9s  %s\n", "id", "started (UTC)", "duration", "status",
		"rows changed", "requests", "error");
	for (int row = 0; row < PQntuples(res); row++) {
		const char *status = PQgetvalue(res, row, 3);
		fprintf(out, "%-6s %-19s %-9s %-10s %12s %9s  %.60s\n", PQgetvalue(res, row, 0),
			PQgetvalue(res, row, 1), PQgetvalue(res, row, 2), status, PQgetvalue(res, row, 5),
			PQgetvalue(res, row, 6), PQgetvalue(res, row, 9));
	}
	const char *status = PQgetvalue(res, 0, 3);
	if (strcmp(status, "succeeded") == 0 || strcmp(status, "abandoned") == 0)
		return;
	bool live = strcmp(status, "running") == 0 && run_lock_held(db);
	fprintf(out, "\nrun %s is unfinished (%s%s): %s of %s units done%s\n", PQgetvalue(res, 0, 0), status,
		strcmp(status, "running") == 0 && !live ? ", but no sync holds the lock: it was killed or crashed" : "",
		PQgetvalue(res, 0, 7), PQgetvalue(res, 0, 8), live ? "" : "; the next sync resumes it");
}

int load_status(load_db *db, int limit, bool json, FILE *out, load_error *err)
{
	char sql[sizeof(status_sql) + 32];
	snprintf(sql, sizeof(sql), "%s%d", status_sql, limit > 0 ? limit : 10);
	PGresult *res = exec_params(db, sql, 0, NULL, err, "cannot read sync_runs");
	if (!res)
		return -1;
	if (json)
		print_status_json(res, out);
	else
		print_status_table(db, res, out);
	PQclear(res);
	return 0;
}
