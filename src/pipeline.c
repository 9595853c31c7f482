/* pipeline.c — the run controller, the fetch stage and the load stage (see pipeline.h). */
#include "pipeline.h"

#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "bloom.h"
#include "hash.h"
#include "log.h"
#include "progress.h"
#include "queue.h"

#define LOCAL_UNITS 512      /* pending units read from the database at a time */
#define MAX_BATCH_ITEMS 1024 /* units per transaction at most */
#define DB_RETRY_LIMIT 12    /* reconnect attempts for one batch */
#define REDO_PASS_LIMIT 3    /* reads of the checkpoint again at the end of a run */
/* A batch is committed once its first unit waited this long, however few
 * rows it holds: sources with no rows (or unchanged ones) would otherwise
 * fill a batch only at MAX_BATCH_ITEMS, and a kill loses the open batch. */
#define BATCH_MAX_AGE_S 0.1

/* ---- jobs: one unit on its way through the fetch stage ----
 * Every live job is on one list, so jobs the fetch stage abandons on a stop
 * (still inside the HTTP engine) are freed at the end all the same. */

typedef enum { MSG_OK, MSG_VANISHED, MSG_FAILED, MSG_AUTH, MSG_FETCH_EXITED } msg_kind;

typedef struct job {
	struct job *prev, *next;
	load_unit unit;
	msg_kind kind;
	bloom_result *result; /* owned by the job until it is in a batch */
	uint32_t attempts;
	unsigned token_gen;  /* the fetch stage's token generation when the unit was (re)sent */
	bool auth_retried;   /* fetched again after a 401 with a new login */
	int page;            /* with api.page_size: the page asked for (1-based), else 0 */
	uint32_t attempts_before; /* HTTP attempts of the pages already fetched */
	uint32_t retries, retries_before; /* of attempts (and attempts_before), the retries */
	size_t bytes;        /* of its result, counted in job_list.result_bytes */
	uint64_t digest;     /* of the body so far (all pages) */
	uint64_t page_hash;  /* of the last page's body alone: a server that ignores paging repeats it */
	bool unchanged;      /* the body had the digest recorded for the source */
	char *yields;        /* load_item.yields; NULL when unchanged or vanished */
	size_t yields_len, yields_cap;
	uint32_t named[MIRROR_TABLE_COUNT]; /* load_item.named of a source read in full */
	char error[256];
} job;

typedef struct job_list {
	pthread_mutex_t lock;
	job head; /* sentinel */
	atomic_size_t result_bytes; /* held by fetched results not yet committed */
} job_list;

/* Fetched results waiting for (or in) a batch may hold this much: past it
 * the fetch stage starts no new request (those in flight still land) and the
 * consumer commits what it has, so memory stays flat whatever the responses
 * weigh, not only whatever their number. */
#define RESULT_BUDGET ((size_t)8 << 20)

static job *job_new(job_list *l, const load_unit *u)
{
	job *j = calloc(1, sizeof(*j));
	if (!j)
		return NULL;
	j->unit = *u;
	pthread_mutex_lock(&l->lock);
	j->next = l->head.next;
	j->prev = &l->head;
	l->head.next->prev = j;
	l->head.next = j;
	pthread_mutex_unlock(&l->lock);
	return j;
}

static void job_free(job_list *l, job *j)
{
	if (!j)
		return;
	pthread_mutex_lock(&l->lock);
	j->prev->next = j->next;
	j->next->prev = j->prev;
	pthread_mutex_unlock(&l->lock);
	atomic_fetch_sub(&l->result_bytes, j->bytes);
	free(j->yields);
	if (j->result) {
		bloom_result_free(j->result);
		free(j->result);
	}
	free(j);
}

static void job_list_init(job_list *l)
{
	pthread_mutex_init(&l->lock, NULL);
	atomic_init(&l->result_bytes, 0);
	l->head.next = l->head.prev = &l->head;
}

static void job_list_free_all(job_list *l)
{
	while (l->head.next != &l->head)
		job_free(l, l->head.next);
	pthread_mutex_destroy(&l->lock);
}

/* ---- the fetch stage ---- */

typedef struct fetch_stage {
	http_engine *http;
	queue *dispatch; /* job* to fetch */
	queue *results;  /* job* fetched (or failed) */
	job_list *jobs;
	int window;      /* requests handed to the engine at most */
	unsigned streams; /* cfg_stream bits: child units of other streams are dropped */
	int page_size;    /* api.page_size: 0 = whole arrays */
	hash_recent *recent_rows; /* see drop_repeated_rows */
	uint32_t coverers[MIRROR_T_COUNT]; /* bit u of [t]: target u covers t (u != t) */
	hash_recent *recent_units; /* see filter_children */
	uint64_t digest_seed;  /* see source_digest_seed */
	bool full;             /* read every source in full, whatever its digest */
	/* renewal of the token (only on this thread, which drives the engine) */
	const auth_opts *auth; /* NULL with a fixed key; else &auth_own */
	auth_opts auth_own;    /* the run's, which a stop of the run also ends */
	unsigned token_gen;    /* bumped at each new token */
	time_t token_expires;
	atomic_bool stop;     /* stop at once, abandoning what is in flight */
	atomic_bool finished; /* no more jobs will come: exit when idle */
	pthread_t thread;
	/* "the fetch thread exited", its last message: part of the stage,
	 * not allocated, so that no failed allocation can leave stop_fetch
	 * waiting for it for ever; never freed by whoever takes it */
	job exited;
} fetch_stage;

/* The sync.streams stream (cfg_stream bit) a unit kind belongs to. */
static unsigned unit_stream_bit(bloom_unit_kind kind)
{
	switch (kind) {
	case BLOOM_UNIT_USERS: return CFG_STREAM_USERS;
	case BLOOM_UNIT_USER_MEETINGS:
	case BLOOM_UNIT_MEETING:
	case BLOOM_UNIT_ATTENDEES: return CFG_STREAM_MEETINGS;
	case BLOOM_UNIT_MEETING_TODOS:
	case BLOOM_UNIT_USER_TODOS: return CFG_STREAM_TODOS;
	case BLOOM_UNIT_MEASURABLES:
	case BLOOM_UNIT_MEETING_SCORES:
	case BLOOM_UNIT_USER_SCORES: return CFG_STREAM_SCORECARD;
	case BLOOM_UNIT_GOALS:
	case BLOOM_UNIT_ARCHIVED_GOALS: return CFG_STREAM_GOALS;
	case BLOOM_UNIT_MEETING_ISSUES:
	case BLOOM_UNIT_USER_ISSUES: return CFG_STREAM_ISSUES;
	case BLOOM_UNIT_MEETING_HEADLINES:
	case BLOOM_UNIT_USER_HEADLINES: return CFG_STREAM_HEADLINES;
	default: return 0;
	}
}

/* Child units named lately in this session (see filter_children): 512 KiB,
 * 65,536 units, more than the meetings' sub-units of the bench's 10x org. */
#define RECENT_UNITS_BITS 16

_Static_assert(BLOOM_UNIT_KIND_END <= 16, "a unit kind fits in 4 bits");

/* A unit as a hash_recent entry, exactly: kind and ref packed into 64 bits
 * and mixed by a bijection (an odd multiplier), so two units never share
 * one; 0 (none fits: refs beyond 2^59, or the value hash_recent takes for
 * its own) leaves the unit out of the cache. */
static uint64_t unit_entry(const bloom_unit *u)
{
	if (u->ref < 0 || u->ref >= ((int64_t)1 << 59))
		return 0;
	uint64_t e = (((uint64_t)u->ref << 4) | (uint64_t)u->kind) * 0x9e3779b97f4a7c15ull;
	return e > 1 ? e : 0;
}

/* Drops the child units of streams left out of sync.streams, and those
 * this session named lately. A meeting's seven units are named by the
 * meeting list of each of its attendees: without this, half the units a
 * medium org's batches staged (35,224 of them) were ones the run already
 * had, each costing PostgreSQL a staged row and a lookup. Safe: a unit
 * named by an earlier result is recorded by that result's batch, which
 * commits no later than this one's (results are committed in the order
 * they come); a run whose batch fails stops, and the next one starts with
 * an empty cache. */
static void filter_children(fetch_stage *f, bloom_result *r)
{
	size_t kept = 0;
	for (size_t i = 0; i < r->nchildren; i++) {
		if (!(unit_stream_bit(r->children[i].kind) & f->streams))
			continue;
		uint64_t e = f->recent_units ? unit_entry(&r->children[i]) : 0;
		if (e && hash_recent_add(f->recent_units, e))
			continue;
		r->children[kept++] = r->children[i];
	}
	r->nchildren = kept;
}

/* The mirror tables (bit = index in mirror_tables) whose stream is on: a
 * complete run marks deleted rows in those only. A table belongs to the
 * stream of the unit kinds that write it. */
static uint32_t table_mask(unsigned streams)
{
	uint32_t mask = 0;
	for (int k = BLOOM_UNIT_USERS; k < BLOOM_UNIT_KIND_END; k++) {
		int si = mirror_table_index(bloom_unit_stream((bloom_unit_kind)k));
		if (si >= 0 && (unit_stream_bit((bloom_unit_kind)k) & streams))
			mask |= (uint32_t)1 << si;
	}
	if (streams & CFG_STREAM_SCORECARD)
		mask |= (uint32_t)1 << mirror_table_index("meeting_measurables");
	if (streams & CFG_STREAM_GOALS)
		mask |= (uint32_t)1 << mirror_table_index("goal_meetings");
	return mask;
}

static void fetch_deliver(fetch_stage *f, job *j, msg_kind kind)
{
	j->kind = kind;
	if (j->result && !j->bytes) {
		j->bytes = bloom_result_size(j->result) + j->yields_cap;
		atomic_fetch_add(&f->jobs->result_bytes, j->bytes);
	}
	if (queue_push(f->results, j) != 0)
		job_free(f->jobs, j);
}

/* Logs in again and hands the new token to the engine. On failure fills
 * j->error and returns the message kind that ends the unit. */
static int fetch_renew(fetch_stage *f, job *j, long status, msg_kind *kind)
{
	char *token = NULL;
	char err[200];
	time_t expires = 0;
	auth_status st = auth_get_token(f->auth, true, &token, &expires, NULL, err, sizeof(err));
	if (st != AUTH_OK) {
		snprintf(j->error, sizeof(j->error), "cannot renew the API token: %s", err);
		*kind = st == AUTH_REJECTED ? MSG_AUTH : MSG_FAILED;
		return -1;
	}
	int rc = http_set_token(f->http, token);
	auth_token_free(token);
	if (rc != 0) {
		snprintf(j->error, sizeof(j->error), "cannot switch to the renewed API token: out of memory");
		*kind = MSG_FAILED;
		return -1;
	}
	f->token_gen++;
	f->token_expires = expires;
	char until[32];
	struct tm tm;
	strftime(until, sizeof(until), "%Y-%m-%d %H:%M:%SZ", gmtime_r(&expires, &tm));
	log_info("the API refused the token (HTTP %ld): logged in again as %s, the new token is valid until %s",
		 status, f->auth->username, until);
	return 0;
}

/* A 401 or 403. With a fixed key the run stops. With credentials the same
 * unit is fetched again: at once when it was sent with an older token than
 * the current one, after a new login when the current token itself was
 * refused; a unit refused again with a token obtained after its own 401
 * (and not yet expired) stops the run. Neither re-send uses up one of
 * api.max_retries, which are for the server's failures. */
static http_cb_result fetch_auth_failed(fetch_stage *f, job *j, const http_response *resp)
{
	msg_kind kind = MSG_AUTH;
	if (!f->auth) {
		snprintf(j->error, sizeof(j->error), "the API rejected the key (HTTP %ld for %s)", resp->status,
			 resp->path);
	} else if (j->token_gen != f->token_gen) {
		j->token_gen = f->token_gen; /* sent with a token replaced since: try the new one */
		return HTTP_CB_RESEND;
	} else if (j->auth_retried && time(NULL) < f->token_expires) {
		snprintf(j->error, sizeof(j->error),
			 "the API rejected a freshly issued token (HTTP %ld for %s right after logging in as %s)",
			 resp->status, resp->path, f->auth->username);
	} else if (fetch_renew(f, j, resp->status, &kind) == 0) {
		j->auth_retried = true;
		j->token_gen = f->token_gen;
		return HTTP_CB_RESEND;
	}
	fetch_deliver(f, j, kind);
	return HTTP_CB_DONE;
}

/* Builds the request path of a job: the unit's path, plus the page asked
 * for when list endpoints are read page by page. */
static int job_path(const fetch_stage *f, job *j, char *path, size_t pathlen)
{
	if (bloom_unit_path(&j->unit.unit, path, pathlen) != 0)
		return -1;
	if (f->page_size <= 0 || !bloom_unit_pages(j->unit.unit.kind))
		return 0;
	if (j->page < 1)
		j->page = 1;
	size_t used = strlen(path);
	int n = snprintf(path + used, pathlen - used, "%cpage=%d&pageSize=%d", strchr(path, '?') ? '&' : '?', j->page,
			 f->page_size);
	return n < 0 || (size_t)n >= pathlen - used ? -1 : 0;
}

/* Rows already handed to the loader in this session, by a hash of their
 * COPY line (every column, raw included) and their target: the same row
 * reaches us through several lists (a score in a meeting's and in a user's
 * scorecard, a todo in a meeting's and in its owner's list), and staging it
 * again only costs the database a row to stage and compare. A row a target
 * wrote stands for the same row of every target it covers
 * (mirror_target_covers): a user's todo list's row for its meeting's list's
 * copy, not the other way (that one cannot erase an owner); a meeting's
 * headline list's row for no other (the user's list owns raw). Fixed in
 * size, so memory stays flat; a miss only means the row is written twice,
 * as before. Sets of four (hash_recent): a score's second arrival (its
 * meeting's scorecard) comes most of a run after its first (its owner's):
 * on the bench's large org a direct-mapped table of half this size let
 * 79,824 repeated score rows through, this one 7,523. Safe for resume: a
 * row is dropped only when an identical one is already in this session's
 * stream of batches, and a unit whose batch did not commit is fetched
 * again. */
#define RECENT_ROWS_BITS 19 /* 4 MiB */

/* The entry of a COPY line (its hash) as written by target t. */
static uint64_t row_entry(uint64_t line_hash, int t)
{
	uint64_t seed = (uint64_t)t + 1;
	return hash_bytes(line_hash, &seed, sizeof(seed));
}

_Static_assert(MIRROR_T_COUNT <= 32, "a set of targets fits in 32 bits");

/* Which targets cover which (mirror_target_covers), once for the run. */
static void note_coverers(fetch_stage *f)
{
	for (int t = 0; t < MIRROR_T_COUNT; t++)
		for (int u = 0; u < MIRROR_T_COUNT; u++)
			if (u != t && mirror_target_covers((mirror_target_id)u, (mirror_target_id)t))
				f->coverers[t] |= (uint32_t)1 << u;
}

/* Whether the line (hash h) was handed over already by target t or by one
 * covering it; if not, it is recorded for t (only: a hash per row, so the
 * cache holds as many rows as before there were two targets of a table). */
static bool row_seen(const fetch_stage *f, uint64_t h, int t)
{
	for (uint32_t c = f->coverers[t]; c; c &= c - 1)
		if (hash_recent_has(f->recent_rows, row_entry(h, __builtin_ctz(c))))
			return true;
	return hash_recent_add(f->recent_rows, row_entry(h, t));
}

static void drop_repeated_rows(fetch_stage *f, bloom_result *r)
{
	if (!f->recent_rows)
		return;
	for (int t = 0; t < MIRROR_T_COUNT; t++) {
		bloom_buf *b = &r->copy[t];
		size_t w = 0;
		for (size_t p = 0; p < b->len;) {
			const char *nl = memchr(b->data + p, '\n', b->len - p);
			size_t n = nl ? (size_t)(nl - (b->data + p)) + 1 : b->len - p;
			if (row_seen(f, hash_bytes(0, b->data + p, n), t)) {
				r->nrows[t]--;
			} else {
				memmove(b->data + w, b->data + p, n);
				w += n;
			}
			p += n;
		}
		b->len = w;
		if (b->data)
			b->data[w] = '\0';
	}
}

/* ---- sources that did not change ----
 * A source's digest is hash_bytes over its body (page after page), seeded
 * with what else decides the rows a body maps to: the mapping's version, the
 * program's (a release re-reads everything once, in case a mapping change
 * went without a bump) and the streams synced. The same digest as the one
 * recorded (sync_sources) means the same rows as the mirror holds from it:
 * the body is not mapped (list bodies are, for the units they name) and
 * nothing is staged. */

static uint64_t source_digest_seed(unsigned streams, const char *version)
{
	char seed[128];
	int n = snprintf(seed, sizeof(seed), "bloomsync %s mapping %d streams %u", version ? version : "",
			 BLOOM_MAPPING_VERSION, streams);
	if (n < 0 || (size_t)n >= sizeof(seed))
		n = (int)sizeof(seed) - 1;
	return hash_bytes(0, seed, (size_t)n);
}

/* Whether a unit's body names other units (it must be mapped for them). */
static bool unit_names_units(bloom_unit_kind kind)
{
	return kind == BLOOM_UNIT_USERS || kind == BLOOM_UNIT_USER_MEETINGS;
}

static bool body_is_known(const fetch_stage *f, const job *j, uint64_t digest)
{
	return !f->full && j->unit.has_digest && digest == j->unit.digest;
}

/* An unchanged source's result: its children (when mapped) and nothing else. */
static void keep_children_only(bloom_result *r)
{
	bloom_result kept = {.unit = r->unit,
			     .children = r->children,
			     .nchildren = r->nchildren,
			     .children_cap = r->children_cap};
	r->children = NULL;
	bloom_result_free(r);
	*r = kept;
}

static int yields_add(job *j, const char *line, size_t n)
{
	if (j->yields_len + n + 1 > j->yields_cap) {
		size_t cap = j->yields_cap ? j->yields_cap * 2 : 256;
		while (cap < j->yields_len + n + 1)
			cap *= 2;
		char *p = realloc(j->yields, cap);
		if (!p)
			return -1;
		j->yields = p;
		j->yields_cap = cap;
	}
	memcpy(j->yields + j->yields_len, line, n);
	j->yields_len += n;
	return 0;
}

/* Reads the leading integer field of a COPY line at p; NULL when it is not one. */
static const char *key_field(const char *p, const char *end, int64_t *out)
{
	char *stop;
	if (p >= end || !(*p == '-' || (*p >= '0' && *p <= '9')))
		return NULL;
	*out = strtoll(p, &stop, 10);
	return stop <= end && (stop == end || *stop == '\t' || *stop == '\n') ? stop : NULL;
}

/* Appends key k to a COPY array under way, *n keys long so far. */
static int add_key(job *j, int64_t k, size_t *n)
{
	char key[24];
	int len = snprintf(key, sizeof(key), "%s%" PRId64, *n ? "," : "", k);
	if (yields_add(j, key, (size_t)len) != 0)
		return -1;
	(*n)++;
	return 0;
}

/* Whether the record rejected by the mapping has a whole key in table si. */
static bool reject_keyed_in(const bloom_reject *rj, int si)
{
	return rj->has_key && mirror_target_get(rj->target)->table_index == si;
}

/* Appends the keys (column col, 0 or 1) of the rows of every target of
 * table si as a COPY array "{k,k,...}"; *n gets how many. Rows without an
 * integer key are refused by the database anyway (and rejected there).
 * Records the mapping rejected are named too when their key is known: they
 * still exist upstream, so their rows (from an earlier run) stay, stale but
 * not marked deleted. */
static int add_keys(job *j, int si, int col, size_t *n)
{
	*n = 0;
	if (yields_add(j, "{", 1) != 0)
		return -1;
	for (size_t i = 0; i < j->result->nrejects; i++) {
		const bloom_reject *rj = &j->result->rejects[i];
		if (reject_keyed_in(rj, si) && add_key(j, rj->key[col], n) != 0)
			return -1;
	}
	for (int t = 0; t < MIRROR_T_COUNT; t++) {
		const mirror_target *mt = mirror_target_get((mirror_target_id)t);
		if (mt->table_index != si)
			continue;
		const bloom_buf *b = &j->result->copy[t];
		for (const char *p = b->data, *end = b->data + b->len; p && p < end;) {
			const char *nl = memchr(p, '\n', (size_t)(end - p));
			const char *eol = nl ? nl : end;
			int64_t k1 = 0, k2 = 0;
			const char *q = key_field(p, eol, &k1);
			if (q && mt->nkeys > 1)
				q = q < eol ? key_field(q + 1, eol, &k2) : NULL;
			if (q && add_key(j, col ? k2 : k1, n) != 0)
				return -1;
			p = eol + 1;
		}
	}
	return yields_add(j, "}", 1);
}

/* The yields of a source read in full: a sync_yields COPY line per table it
 * has rows for (see load_item.yields). */
static int collect_yields(job *j)
{
	const char *kind = bloom_unit_kind_name(j->unit.unit.kind);
	for (int si = 0; si < MIRROR_TABLE_COUNT; si++) {
		int nkeys = 0;
		for (int t = 0; t < MIRROR_T_COUNT; t++) {
			const mirror_target *mt = mirror_target_get((mirror_target_id)t);
			if (mt->table_index == si && j->result->nrows[t])
				nkeys = (int)mt->nkeys;
		}
		for (size_t i = 0; i < j->result->nrejects; i++)
			if (reject_keyed_in(&j->result->rejects[i], si))
				nkeys = (int)mirror_target_get(j->result->rejects[i].target)->nkeys;
		if (!nkeys)
			continue;
		size_t mark = j->yields_len, n = 0, n2 = 0;
		char head[96];
		int len = snprintf(head, sizeof(head), "%s\t%" PRId64 "\t%d\t", kind, j->unit.unit.ref, si);
		if (yields_add(j, head, (size_t)len) != 0 || add_keys(j, si, 0, &n) != 0 ||
		    (nkeys > 1 ? yields_add(j, "\t", 1) != 0 || add_keys(j, si, 1, &n2) != 0
			       : yields_add(j, "\t\\N", 3) != 0) ||
		    yields_add(j, "\n", 1) != 0)
			return -1;
		if (n == 0)
			j->yields_len = mark; /* no row with a key: nothing to name */
		j->named[si] = (uint32_t)n;
	}
	/* it waits for its batch with hundreds of others: no slack kept */
	if (j->yields_len == 0) {
		free(j->yields);
		j->yields = NULL;
		j->yields_cap = 0;
	} else if (j->yields_len < j->yields_cap) {
		char *p = realloc(j->yields, j->yields_len);
		if (p) {
			j->yields = p;
			j->yields_cap = j->yields_len;
		}
	}
	return 0;
}

/* Whether the mapping rejected a record whose rows the run cannot name:
 * one without its whole key, or one with link rows (see hold_hidden_tables
 * in load.c). */
static bool has_hiding_reject(const bloom_result *r)
{
	for (size_t i = 0; i < r->nrejects; i++) {
		const bloom_reject *rj = &r->rejects[i];
		if (!rj->has_key || bloom_tables_linked(mirror_target_get(rj->target)->table))
			return true;
	}
	return false;
}

/* A source whose last page is in: skipped, mapped but unchanged, or read in
 * full (its yields collected before repeated rows are dropped: a source
 * still yields a row another one staged first). */
static int finish_source(fetch_stage *f, job *j)
{
	filter_children(f, j->result);
	if (body_is_known(f, j, j->digest)) {
		j->unchanged = true;
		keep_children_only(j->result);
		return 0;
	}
	if (collect_yields(j) != 0)
		return -1;
	/* a record rejected without its key cannot be named, nor can the link
	 * rows of one rejected with it, so those tables' deletes are held while
	 * a run rejects it (see hold_hidden_tables in load.c); recorded with a
	 * digest its body does not have, the source is read in full, and the
	 * reject recorded, by every run */
	if (has_hiding_reject(j->result))
		j->digest = ~j->digest;
	drop_repeated_rows(f, j->result);
	return 0;
}

/* A list read page by page ends at its first short page; this many pages
 * of one list means the server does not page the way we ask (a loop of
 * different bodies), and memory must stay bounded. */
#define MAX_PAGES 10000

/* An organisation has at least the key's own user: a users list naming no
 * user (and rejecting none) is an API fault, and taken as real it would have
 * the complete run mark every row of the mirror deleted. */
static bool names_no_user(const job *j)
{
	const bloom_result *r = j->result;
	return j->unit.unit.kind == BLOOM_UNIT_USERS && r->nrows[MIRROR_T_USERS] == 0 && r->nrejects == 0;
}

/* The last page of a source is in. */
static http_cb_result page_done(fetch_stage *f, job *j, const char *label)
{
	if (names_no_user(j)) {
		snprintf(j->error, sizeof(j->error),
			 "%s: the API's user list names no user, not even the key's own: not taken as an empty "
			 "organisation",
			 label);
		fetch_deliver(f, j, MSG_FAILED);
		return HTTP_CB_DONE;
	}
	if (finish_source(f, j) != 0) {
		snprintf(j->error, sizeof(j->error), "%s: out of memory", label);
		fetch_deliver(f, j, MSG_FAILED);
		return HTTP_CB_DONE;
	}
	fetch_deliver(f, j, MSG_OK);
	return HTTP_CB_DONE;
}

/* A 2xx body: parse it into the job's result (appending, page after page,
 * when the list is paged); a bad body is fetched again. */
static http_cb_result fetch_ok(fetch_stage *f, job *j, const http_response *resp, const char *label)
{
	char err[200];
	size_t elements = 0;
	if (!j->result) {
		j->result = calloc(1, sizeof(*j->result));
		if (!j->result) {
			snprintf(j->error, sizeof(j->error), "%s: out of memory", label);
			fetch_deliver(f, j, MSG_FAILED);
			return HTTP_CB_DONE;
		}
		j->result->unit = j->unit.unit;
		j->digest = f->digest_seed;
	}
	/* a body refused below is fetched again: it counts only once parsed */
	uint64_t digest = hash_bytes(j->digest, resp->body, resp->body_len);
	if (j->page == 0 && !unit_names_units(j->unit.unit.kind) && body_is_known(f, j, digest)) {
		j->digest = digest;
		j->unchanged = true; /* not even mapped */
		j->error[0] = '\0';
		fetch_deliver(f, j, MSG_OK);
		return HTTP_CB_DONE;
	}
	uint64_t page_hash = hash_bytes(0, resp->body, resp->body_len);
	if (j->page > 1 && page_hash == j->page_hash) {
		/* the same body as the page before: the server ignores page=.
		 * Whether it sent the whole list or only its first pageSize items
		 * cannot be told, and taking it as complete could mark the rest
		 * deleted: the unit fails */
		snprintf(j->error, sizeof(j->error),
			 "%s: page %d repeats page %d: the API ignores paging (set api.page_size = 0)", label, j->page,
			 j->page - 1);
		fetch_deliver(f, j, MSG_FAILED);
		return HTTP_CB_DONE;
	}
	int rc = bloom_parse_page(&j->unit.unit, resp->body, resp->body_len, j->result, &elements, err, sizeof(err));
	if (rc != 0) {
		snprintf(j->error, sizeof(j->error), "%s: %s", label, err);
		if (rc == BLOOM_NOMEM) {
			fetch_deliver(f, j, MSG_FAILED);
			return HTTP_CB_DONE;
		}
		LOG_AT(LOG_DEBUG, bloom_unit_stream(j->unit.unit.kind), label, "bad body, fetching again: %s", err);
		return HTTP_CB_RETRY;
	}
	j->error[0] = '\0';
	j->digest = digest;
	j->page_hash = page_hash;
	/* a page shorter than page_size is the last; a longer one (a server
	 * with a larger least page size, or one that ignores pageSize) may
	 * have a next one: asking costs a request, and a server that sends the
	 * whole list each time gives the same page again (failed above) */
	if (j->page > 0 && elements >= (size_t)f->page_size) {
		char path[320];
		if (j->page >= MAX_PAGES) {
			snprintf(j->error, sizeof(j->error),
				 "%s: more than %d pages of %d: raise api.page_size, or set it to 0 if the API ignores "
				 "paging",
				 label, MAX_PAGES, f->page_size);
			fetch_deliver(f, j, MSG_FAILED);
			return HTTP_CB_DONE;
		}
		j->page++;
		j->attempts_before = j->attempts;
		j->retries_before = j->retries;
		if (job_path(f, j, path, sizeof(path)) == 0 && http_submit(f->http, path, j) == 0)
			return HTTP_CB_DONE;
		snprintf(j->error, sizeof(j->error), "%s: cannot queue page %d", label, j->page);
		fetch_deliver(f, j, MSG_FAILED);
		return HTTP_CB_DONE;
	}
	return page_done(f, j, label);
}

/* The engine's verdict plus ours on the body: the one place a fetch ends. */
static http_cb_result fetch_done(void *ctx, void *user, const http_response *resp)
{
	fetch_stage *f = ctx;
	job *j = user;
	char label[64];
	bloom_unit_label(&j->unit.unit, label, sizeof(label));
	j->attempts = j->attempts_before + (uint32_t)resp->attempts;
	j->retries = j->retries_before + (uint32_t)resp->retries;
	switch (resp->outcome) {
	case HTTP_OK:
		return fetch_ok(f, j, resp, label);
	case HTTP_NOT_FOUND:
		if (bloom_unit_404_is_vanished(j->unit.unit.kind)) {
			LOG_AT(LOG_INFO, bloom_unit_stream(j->unit.unit.kind), label, "vanished (404), skipped");
			fetch_deliver(f, j, MSG_VANISHED);
		} else {
			snprintf(j->error, sizeof(j->error), "%s: HTTP 404 for %s", label, resp->path);
			fetch_deliver(f, j, MSG_FAILED);
		}
		return HTTP_CB_DONE;
	case HTTP_AUTH:
		return fetch_auth_failed(f, j, resp);
	case HTTP_FAILED:
		/* a body that never parsed keeps its parse error: it says more */
		if (resp->status < 200 || resp->status >= 300 || !j->error[0])
			snprintf(j->error, sizeof(j->error), "%s: %s", label, resp->error ? resp->error : "failed");
		fetch_deliver(f, j, MSG_FAILED);
		return HTTP_CB_DONE;
	}
	return HTTP_CB_DONE;
}

static void *fetch_main(void *arg)
{
	fetch_stage *f = arg;
	while (!atomic_load(&f->stop)) {
		while ((int)http_pending(f->http) < f->window && !atomic_load(&f->stop) &&
		       atomic_load(&f->jobs->result_bytes) < RESULT_BUDGET) {
			job *j = queue_pop(f->dispatch, 0);
			if (!j)
				break;
			char path[320];
			j->token_gen = f->token_gen;
			if (job_path(f, j, path, sizeof(path)) != 0 || http_submit(f->http, path, j) != 0) {
				snprintf(j->error, sizeof(j->error), "cannot queue the request");
				fetch_deliver(f, j, MSG_FAILED);
			}
		}
		if (http_pending(f->http) == 0 && atomic_load(&f->finished) && queue_length(f->dispatch) == 0)
			break;
		if (http_run(f->http, 100) < 0) {
			log_error("the http engine failed");
			break;
		}
	}
	/* tell the consumer no more results are coming (the results queue is
	 * never closed, so the push always lands) */
	f->exited.kind = MSG_FETCH_EXITED;
	queue_push(f->results, &f->exited);
	return NULL;
}

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* ---- the load stage (the calling thread) ---- */

typedef struct run_state {
	const pipeline_opts *opts;
	load_db *db;
	load_run run;
	fetch_stage fetch;
	job_list jobs;
	/* the checkpoint cursor */
	load_unit local[LOCAL_UNITS];
	size_t local_n, local_pos;
	int64_t cursor;
	bool more;           /* the unit table may hold pending units past the cursor */
	size_t outstanding;  /* jobs handed to the fetch stage, not yet back */
	bool fetch_exited;
	/* the open batch */
	job *batch[MAX_BATCH_ITEMS];
	size_t batch_n, batch_rows;
	double batch_opened; /* when its first unit came in */
	/* outcome */
	pipeline_status status;
	bool stopping;
	bool commit_failed;  /* a batch could not be written: nothing after it may be */
	char error[512];
	/* figures */
	progress_state prog;
	uint64_t batches;
	double db_seconds; /* time spent in batch transactions */
	int64_t units_unchanged; /* committed sources whose body had not changed */
	int64_t left_out;        /* pending units of streams no longer synced (see skip_left_out) */
	int redo_passes;         /* reads of the checkpoint again from its start (see units_left_behind) */
	load_counts uncommitted[MIRROR_TABLE_COUNT]; /* requests of fetched units never committed */
} run_state;

static void stop_run(run_state *s, pipeline_status status, const char *error)
{
	if (!s->stopping) {
		s->status = status;
		if (error)
			snprintf(s->error, sizeof(s->error), "%s", error);
	}
	s->stopping = true;
	atomic_store(&s->fetch.stop, true);
	http_wakeup(s->fetch.http);
}

static bool signalled(const run_state *s)
{
	return s->opts->cancel && atomic_load(s->opts->cancel);
}

/* What a unit or batch that could not be done makes of the run: failed, or
 * cancelled when a signal cut short what it was waiting for. */
static pipeline_status failed_or_cancelled(const run_state *s)
{
	return signalled(s) ? PIPELINE_CANCELLED : PIPELINE_FAILED;
}

/* Sleeps ms, in naps short enough to notice a signal soon; returns true
 * when one came. */
static bool nap_unless_signalled(const run_state *s, int ms)
{
	while (ms > 0 && !signalled(s)) {
		int nap = ms < 100 ? ms : 100;
		struct timespec ts = {0, (long)nap * 1000000L};
		nanosleep(&ts, NULL);
		ms -= nap;
	}
	return signalled(s);
}

/* After a lost connection (or a transaction PostgreSQL asks to redo):
 * reconnects with capped backoff, taking the run lock again. Returns 0 when
 * connected, -1 with err filled when it gives up, or at once on a signal
 * (the reconnecting can last a minute; a service manager's stop must not). */
static int reconnect_db(run_state *s, load_error *err)
{
	int delay = 250;
	for (int attempt = 0; attempt < DB_RETRY_LIMIT; attempt++) {
		log_warn("database connection lost (%s); reconnecting in %d ms", err->msg, delay);
		if (nap_unless_signalled(s, delay)) {
			snprintf(err->msg, sizeof(err->msg), "cancelled by a signal while reconnecting to the database");
			return -1;
		}
		delay = delay < 8000 ? delay * 2 : 8000;
		if (load_reconnect(s->db, err) == 0) {
			log_info("reconnected to the database");
			return 0;
		}
		if (err->outcome != LOAD_RETRY)
			return -1;
	}
	return -1;
}

/* Reads more pending units from the checkpoint when the local buffer is empty. */
static int refill_units(run_state *s)
{
	if (s->local_pos < s->local_n || !s->more)
		return 0;
	load_error err;
	size_t n = 0;
	int attempts = 0;
	while (load_units_next(s->db, s->run.id, s->cursor, s->local, LOCAL_UNITS, &n, &err) != 0) {
		if (err.outcome != LOAD_RETRY || ++attempts > DB_RETRY_LIMIT || reconnect_db(s, &err) != 0) {
			stop_run(s, failed_or_cancelled(s), err.msg);
			return -1;
		}
	}
	s->local_n = n;
	s->local_pos = 0;
	if (n == 0)
		s->more = false;
	else
		s->cursor = s->local[n - 1].seq;
	return 0;
}

static void take_result(run_state *s, job *j);

/* A unit of a stream left out of sync.streams can only be pending when the
 * run was resumed under another setting (children of those streams are
 * dropped when found). It is not fetched: it ends as if it had vanished,
 * counted skipped, and its source is forgotten at the end of the run, as a
 * fresh run with this setting would have it. */
static void skip_left_out(run_state *s, job *j)
{
	if (s->left_out++ == 0)
		log_info("units of streams left out of sync.streams, queued before this run was resumed, are skipped");
	j->kind = MSG_VANISHED;
	s->outstanding++;
	take_result(s, j);
}

static void dispatch_units(run_state *s)
{
	bool pushed = false;
	while (s->local_pos < s->local_n && s->batch_n < MAX_BATCH_ITEMS) {
		job *j = job_new(&s->jobs, &s->local[s->local_pos]);
		if (!j) {
			stop_run(s, PIPELINE_FAILED, "out of memory");
			break;
		}
		if (!(unit_stream_bit(j->unit.unit.kind) & s->fetch.streams)) {
			s->local_pos++;
			skip_left_out(s, j);
			continue;
		}
		if (!queue_try_push(s->fetch.dispatch, j)) {
			job_free(&s->jobs, j);
			break;
		}
		s->local_pos++;
		s->outstanding++;
		pushed = true;
	}
	if (pushed)
		http_wakeup(s->fetch.http);
}

/* Takes back the jobs the fetch stage has not started, on a stop. */
static void reclaim_dispatched(run_state *s)
{
	job *j;
	while ((j = queue_pop(s->fetch.dispatch, 0)) != NULL) {
		job_free(&s->jobs, j);
		s->outstanding--;
	}
}

/* A fetched unit that will not be committed: its requests are counted
 * apart (batches count the others), so a failed run shows what it cost. */
static void count_uncommitted(run_state *s, const job *j)
{
	int si = mirror_table_index(bloom_unit_stream(j->unit.unit.kind));
	if (si < 0 || j->attempts == 0)
		return;
	s->uncommitted[si].requests += j->attempts;
	s->uncommitted[si].retries += j->retries;
}

static void free_batch(run_state *s)
{
	for (size_t i = 0; i < s->batch_n; i++)
		job_free(&s->jobs, s->batch[i]);
	s->batch_n = 0;
	s->batch_rows = 0;
}

/* Drops the open batch, not committed. */
static void drop_batch(run_state *s)
{
	for (size_t i = 0; i < s->batch_n; i++)
		count_uncommitted(s, s->batch[i]);
	free_batch(s);
}


/* The counts load_item.named is to carry for the job. */
static const uint32_t *item_named(const job *j)
{
	if (!j->result)
		return NULL;
	if (j->unchanged)
		return j->unit.has_named ? j->unit.named : NULL;
	return j->named;
}

/* Commits the open batch; on a lost connection reconnects with backoff and
 * redoes it (the batch is still in memory, so nothing is lost or doubled). */
static int commit_batch(run_state *s)
{
	load_item items[MAX_BATCH_ITEMS];
	/* later batches lean on the failed one: their rows repeated from it
	 * were dropped, their children found by it were not queued again */
	if (s->commit_failed) {
		drop_batch(s);
		return -1;
	}
	for (size_t i = 0; i < s->batch_n; i++) {
		job *j = s->batch[i];
		items[i] = (load_item){.seq = j->unit.seq,
				       .unit = j->unit.unit,
				       .result = j->result,
				       .attempts = j->attempts,
				       .retries = j->retries,
				       .unchanged = j->unchanged,
				       .digest = j->digest,
				       .yields = j->yields,
				       .yields_len = j->yields_len,
				       .named = item_named(j)};
	}
	load_batch b = {.run_id = s->run.id, .items = items, .nitems = s->batch_n};
	load_batch_result res;
	load_error err;
	double t0 = now_s();
	int attempts = 0;
	while (load_batch_commit(s->db, &b, &res, &err) != 0) {
		/* the batch is still in memory: after a reconnect it is redone whole */
		if (err.outcome != LOAD_RETRY || ++attempts > DB_RETRY_LIMIT || reconnect_db(s, &err) != 0) {
			char msg[600];
			snprintf(msg, sizeof(msg), "cannot write a batch of %zu units: %s", s->batch_n, err.msg);
			log_error("%s", msg);
			stop_run(s, failed_or_cancelled(s), msg);
			s->commit_failed = true;
			drop_batch(s);
			return -1;
		}
	}
	s->batches++;
	s->db_seconds += now_s() - t0;
	log_debug("batch of %zu units, %zu rows written in %.1f ms", s->batch_n, res.rows, (now_s() - t0) * 1e3);
	if (res.children_added > 0)
		s->more = true;
	s->prog.units_done += res.units_marked;
	for (size_t i = 0; i < s->batch_n; i++)
		s->units_unchanged += s->batch[i]->unchanged;
	s->prog.units_known += res.children_added;
	for (int si = 0; si < MIRROR_TABLE_COUNT; si++) {
		s->prog.rows_written += res.streams[si].inserted + res.streams[si].updated;
		s->prog.rows_seen += res.streams[si].inserted + res.streams[si].updated + res.streams[si].unchanged;
	}
	free_batch(s);
	return 0;
}

static void take_result(run_state *s, job *j)
{
	if (j->kind == MSG_FETCH_EXITED) {
		s->fetch_exited = true;
		if (!s->stopping)
			stop_run(s, PIPELINE_FAILED, "the fetch stage stopped unexpectedly");
		return;
	}
	s->outstanding--;
	s->prog.requests += j->attempts;
	switch (j->kind) {
	case MSG_OK:
	case MSG_VANISHED:
		if (s->commit_failed)
			break; /* it would not be written (see commit_batch) */
		/* full already: skip_left_out fills a batch without the dispatch
		 * loop's check, and a result may come right after */
		if (s->batch_n == MAX_BATCH_ITEMS)
			commit_batch(s);
		if (s->batch_n == 0)
			s->batch_opened = now_s();
		s->batch[s->batch_n++] = j;
		if (j->result)
			for (int t = 0; t < MIRROR_T_COUNT; t++)
				s->batch_rows += j->result->nrows[t];
		return;
	case MSG_AUTH:
		log_error("%s", j->error);
		stop_run(s, PIPELINE_AUTH, j->error);
		break;
	case MSG_FAILED:
	default:
		log_error("%s", j->error);
		stop_run(s, failed_or_cancelled(s), j->error); /* e.g. a login cut short */
		break;
	}
	count_uncommitted(s, j);
	job_free(&s->jobs, j);
}

static bool run_is_over(const run_state *s)
{
	if (s->batch_n > 0)
		return false;
	if (s->stopping)
		return s->outstanding == 0 || s->fetch_exited;
	return s->outstanding == 0 && s->local_pos == s->local_n && !s->more;
}

static void consume(run_state *s)
{
	int batch_size = s->opts->config->batch_size;
	while (!run_is_over(s)) {
		if (signalled(s) && !s->stopping) {
			log_warn("stopping on a signal; committing what has arrived");
			stop_run(s, PIPELINE_CANCELLED, "cancelled by a signal");
		}
		if (s->stopping) {
			reclaim_dispatched(s);
		} else {
			refill_units(s);
			dispatch_units(s);
		}
		/* Commit when the batch is full, or when nothing more is waiting and
		 * the fetch stage is about to run dry (it only gets the children of
		 * committed units): small batches when the work is scarce, full
		 * ones when it is plentiful. */
		bool starving = queue_length(s->fetch.dispatch) < (size_t)s->opts->config->concurrency ||
				s->stopping;
		job *j = queue_pop(s->fetch.results, s->batch_n ? (starving ? 0 : 5) : 100);
		if (j)
			take_result(s, j);
		bool drained = j == NULL;
		/* Over the budget the fetch stage starts nothing new; the results
		 * that fill it are in memory already, so they are taken into the
		 * batch first (committing one by one would only multiply the
		 * transactions when the database is the slower stage). */
		bool full = s->batch_rows >= (size_t)batch_size || s->batch_n >= MAX_BATCH_ITEMS ||
			    (drained && atomic_load(&s->jobs.result_bytes) >= RESULT_BUDGET) ||
			    (s->batch_n > 0 && now_s() - s->batch_opened >= BATCH_MAX_AGE_S);
		if (s->batch_n > 0 && ((drained && starving) || full))
			commit_batch(s);
		progress_update(&s->prog);
	}
}

/* Whether units are pending still when the run looks done, and must be
 * fetched again. It happens only when the server lost batches it had
 * acknowledged (a crash, with synchronous_commit off: see connect_session),
 * so the checkpoint is read again from its start; the rows and children
 * of the lost batches were dropped from later ones as already handed over,
 * so the session forgets what it handed over. */
static bool units_left_behind(run_state *s)
{
	if (s->status != PIPELINE_SUCCEEDED || s->stopping)
		return false;
	s->cursor = 0;
	s->more = true;
	s->local_n = s->local_pos = 0;
	if (refill_units(s) != 0 || s->local_n == 0)
		return false;
	if (++s->redo_passes > REDO_PASS_LIMIT) {
		stop_run(s, PIPELINE_FAILED, "units committed to the database keep coming back pending");
		return false;
	}
	log_warn("units the database had acknowledged as done are pending again (the server lost its last "
		 "commits, e.g. in a crash); fetching them again (%zu+ units)",
		 s->local_n);
	hash_recent_clear(s->fetch.recent_rows);
	hash_recent_clear(s->fetch.recent_units);
	/* the session counted the lost batches' units done; the database,
	 * which lost their counts with them, counts each unit once */
	load_error err;
	if (load_run_progress(s->db, &s->run, &err) == 0) {
		s->prog.units_done = s->run.units_done;
		s->prog.units_known = s->run.units_known;
	} else {
		log_warn("%s", err.msg);
	}
	return true;
}

/* ---- the run controller ---- */

static int open_database(run_state *s, pipeline_summary *out)
{
	load_error err;
	const cfg *c = s->opts->config;
	s->db = load_open(c->conninfo, c->schema, &err);
	if (!s->db) {
		snprintf(out->error, sizeof(out->error), "%s", err.msg);
		return -1;
	}
	load_cancel_on_signal(s->db); /* a stop must not wait on a lock */
	int applied = 0;
	if (load_migrate(s->db, &applied, &err) != 0) {
		snprintf(out->error, sizeof(out->error), "%s", err.msg);
		if (strcmp(err.sqlstate, LOAD_SQLSTATE_LOCKED) == 0)
			out->status = PIPELINE_LOCKED; /* an older sync runs: exit 3, as for any second sync */
		return -1;
	}
	bool locked = false;
	char holder[256] = "";
	if (load_lock(s->db, &locked, holder, sizeof(holder), &err) != 0) {
		snprintf(out->error, sizeof(out->error), "%s", err.msg);
		return -1;
	}
	if (!locked) {
		snprintf(out->error, sizeof(out->error), "another sync holds the lock for schema %s: %s", c->schema,
			 holder);
		out->status = PIPELINE_LOCKED;
		return -1;
	}
	char streams[128];
	cfg_streams_format(c->streams, streams, sizeof(streams));
	if (load_run_open(s->db, s->opts->restart, s->opts->version, streams, &s->run, &err) != 0) {
		snprintf(out->error, sizeof(out->error), "%s", err.msg);
		return -1;
	}
	return 0;
}

static size_t queue_depth(int concurrency)
{
	size_t depth = (size_t)concurrency * 8;
	return depth < 64 ? 64 : depth;
}

static int start_fetch(run_state *s, char *error, size_t errlen)
{
	const cfg *c = s->opts->config;
	http_opts ho = {
	    .base_url = c->base_url,
	    .token = s->opts->token,
	    .concurrency = c->concurrency,
	    .rate_limit = c->rate_limit,
	    .timeout_ms = c->timeout_ms,
	    .max_retries = c->max_retries,
	};
	fetch_stage *f = &s->fetch;
	f->jobs = &s->jobs;
	f->window = c->concurrency * 2;
	f->streams = c->streams;
	f->page_size = c->page_size;
	f->recent_rows = hash_recent_new(RECENT_ROWS_BITS);
	note_coverers(f);
	f->recent_units = hash_recent_new(RECENT_UNITS_BITS);
	f->digest_seed = source_digest_seed(c->streams, s->opts->version);
	f->full = s->opts->full;
	if (s->opts->auth) {
		/* a renewal login in progress when the run stops for another
		 * reason than a signal (a batch that failed) gives up too, not
		 * after its retries against a silent token endpoint */
		f->auth_own = *s->opts->auth;
		f->auth_own.stop = &f->stop;
		f->auth = &f->auth_own;
	}
	f->token_expires = s->opts->token_expires;
	/* Both queues hold a few round trips' worth of work, so the fetch stage
	 * neither runs dry nor blocks while the consumer is inside a batch
	 * transaction (tens of milliseconds for a full batch). Still bounded. */
	f->dispatch = queue_new(queue_depth(c->concurrency));
	f->results = queue_new(queue_depth(c->concurrency));
	f->http = http_new(&ho, fetch_done, f, error, errlen);
	if (!f->dispatch || !f->results || !f->http) {
		if (f->dispatch && f->results && !f->http)
			return -1;
		snprintf(error, errlen, "out of memory");
		return -1;
	}
	/* SIGINT, SIGTERM and SIGHUP go to this thread, the one that owns the database
	 * session they cancel (load_cancel_on_signal); the fetch thread, and
	 * the resolver threads libcurl starts from it, inherit them blocked */
	sigset_t old;
	load_block_stop_signals(&old);
	int rc = pthread_create(&f->thread, NULL, fetch_main, f);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (rc != 0) {
		snprintf(error, errlen, "cannot start the fetch thread");
		return -1;
	}
	return 0;
}

static void stop_fetch(run_state *s, bool started)
{
	fetch_stage *f = &s->fetch;
	if (started) {
		atomic_store(&f->finished, true);
		if (s->stopping)
			atomic_store(&f->stop, true);
		http_wakeup(f->http);
		/* the fetch thread may be blocked on a full results queue */
		job *j;
		while (true) {
			j = queue_pop(f->results, 50);
			if (j && j->kind == MSG_FETCH_EXITED)
				break;
			if (j) {
				count_uncommitted(s, j);
				job_free(&s->jobs, j);
			}
			if (!j && s->fetch_exited)
				break;
		}
		pthread_join(f->thread, NULL);
	}
}


static const char *status_word(pipeline_status st)
{
	switch (st) {
	case PIPELINE_SUCCEEDED: return "succeeded";
	case PIPELINE_CANCELLED: return "cancelled";
	default: return "failed";
	}
}

/* Whether another sync took the run lock while this session reconnected:
 * it goes on with this run (it resumed it), so recording the run's end, or
 * adding this session's requests to it, would say so of a run that is
 * running. Then reads the run's counts into out, for the summary. */
static bool run_taken_over(run_state *s, pipeline_summary *out)
{
	if (!load_lost_lock(s->db))
		return false;
	log_error("run %" PRId64 " is another sync's now: its end is not recorded here", s->run.id);
	load_error err;
	if (load_run_counts(s->db, s->run.id, out->streams, &err) != 0)
		log_warn("cannot read the run's counts: %s", err.msg);
	return true;
}

static void finish_run(run_state *s, pipeline_summary *out)
{
	load_error err;
	bool complete = s->status == PIPELINE_SUCCEEDED;
	uint64_t deleted[MIRROR_TABLE_COUNT];
	int rc = -1;
	/* after a signal, a lock that held a batch back (and was cancelled)
	 * must not hold the stop back here: the run is left open instead, and
	 * the next sync resumes it */
	if (signalled(s) && load_lock_timeout(s->db, 5000, &err) != 0)
		log_warn("%s", err.msg);
	if (run_taken_over(s, out))
		return;
	for (int attempt = 0; attempt < 4 && rc != 0; attempt++) {
		rc = load_run_finish(s->db, s->run.id, status_word(s->status), s->error[0] ? s->error : NULL, complete,
				     table_mask(s->opts->config->streams), deleted, &err);
		/* the signal's cancel may land on this statement, not the one it
		 * was meant for */
		if (rc != 0 && signalled(s) && strcmp(err.sqlstate, LOAD_SQLSTATE_CANCELED) == 0)
			continue;
		if (rc != 0 && (err.outcome != LOAD_RETRY || reconnect_db(s, &err) != 0))
			break;
	}
	if (rc != 0 && run_taken_over(s, out)) /* lost on a reconnect of the loop above */
		return;
	if (rc != 0) {
		log_error("cannot record the end of run %" PRId64 ": %s", s->run.id, err.msg);
		if (s->status == PIPELINE_SUCCEEDED) {
			s->status = PIPELINE_FAILED;
			snprintf(s->error, sizeof(s->error), "%s", err.msg);
		}
	}
	if (load_run_add_requests(s->db, s->run.id, s->uncommitted, &err) != 0)
		log_warn("cannot record the requests of units not committed: %s", err.msg);
	if (load_run_counts(s->db, s->run.id, out->streams, &err) != 0)
		log_warn("cannot read the run's counts: %s", err.msg);
}

pipeline_status pipeline_sync(const pipeline_opts *opts, pipeline_summary *out)
{
	memset(out, 0, sizeof(*out));
	double t0 = now_s();
	run_state *s = calloc(1, sizeof(*s));
	if (!s) {
		out->status = PIPELINE_FAILED;
		snprintf(out->error, sizeof(out->error), "out of memory");
		return out->status;
	}
	s->opts = opts;
	s->more = true;
	s->status = PIPELINE_SUCCEEDED;
	job_list_init(&s->jobs);
	out->status = PIPELINE_FAILED;
	bool started = false;

	if (open_database(s, out) != 0) {
		/* a signal cancels a statement waiting on a lock (the migrate lock,
		 * sync_runs): that is a stop, not a failure */
		if (out->status == PIPELINE_FAILED && signalled(s))
			out->status = PIPELINE_CANCELLED;
		goto done;
	}
	out->run_id = s->run.id;
	out->resumed = s->run.resumed;
	log_set_run_id(s->run.id);
	if (s->run.resumed)
		log_info("resuming run %" PRId64 " (%" PRId64 " of %" PRId64 " units already done)", s->run.id,
			 s->run.units_done, s->run.units_known);
	else
		log_info("starting run %" PRId64, s->run.id);
	s->prog.units_done = s->run.units_done;
	s->prog.units_known = s->run.units_known;

	char error[256] = "";
	if (start_fetch(s, error, sizeof(error)) != 0) {
		stop_run(s, PIPELINE_FAILED, error);
	} else {
		started = true;
		progress_begin(opts->progress_tty);
		do
			consume(s);
		while (units_left_behind(s));
		progress_end();
	}
	stop_fetch(s, started);
	log_info("%" PRIu64 " batches, %.2f s in database transactions", s->batches, s->db_seconds);
	if (s->fetch.http)
		http_get_stats(s->fetch.http, &out->http);
	finish_run(s, out);
	out->status = s->status;
	snprintf(out->error, sizeof(out->error), "%s", s->error);
	out->units_done = s->prog.units_done;
	out->units_known = s->prog.units_known;
	out->units_unchanged = s->units_unchanged;
done:
	http_free(s->fetch.http);
	hash_recent_free(s->fetch.recent_rows);
	hash_recent_free(s->fetch.recent_units);
	/* jobs abandoned inside the engine are freed here, after it is gone */
	job_list_free_all(&s->jobs);
	queue_free(s->fetch.dispatch);
	queue_free(s->fetch.results);
	load_close(s->db);
	free(s);
	out->seconds = now_s() - t0;
	log_set_run_id(0);
	return out->status;
}

/* The summary's first line: how the run ended. */
static void summary_headline(const pipeline_summary *s, char *buf, size_t len)
{
	const char *word = s->status == PIPELINE_SUCCEEDED ? "succeeded"
			   : s->status == PIPELINE_CANCELLED ? "was cancelled"
			   : s->status == PIPELINE_LOCKED    ? "did not start"
							     : "failed";
	if (s->run_id)
		snprintf(buf, len, "run %" PRId64 " %s in %.1f s%s", s->run_id, word, s->seconds,
			 s->resumed ? " (resumed)" : "");
	else
		snprintf(buf, len, "sync %s", word);
}

static load_counts summary_totals(const pipeline_summary *s)
{
	load_counts t = {0};
	for (int i = 0; i < MIRROR_TABLE_COUNT; i++) {
		const load_counts *c = &s->streams[i];
		t.requests += c->requests;
		t.retries += c->retries;
		t.inserted += c->inserted;
		t.updated += c->updated;
		t.unchanged += c->unchanged;
		t.skipped += c->skipped;
		t.rejected += c->rejected;
		t.deleted += c->deleted;
		t.nul_removed += c->nul_removed;
	}
	return t;
}

/* The summary's closing lines (this session's requests, then notes on
 * rejected records and removed NULs); calls line for each. */
static void summary_footer(const pipeline_summary *s, const load_counts *total, void (*line)(void *, const char *),
			   void *arg)
{
	char buf[320];
	double rate = s->seconds > 0 ? (double)s->http.requests / s->seconds : 0;
	snprintf(buf, sizeof(buf),
		 "this session: %" PRIu64 " requests (%.0f/s), %" PRIu64 " retries, peak %d in flight, units %" PRId64
		 "/%" PRId64 ", %" PRId64 " unchanged",
		 s->http.requests, rate, s->http.retries, s->http.peak_inflight, s->units_done, s->units_known,
		 s->units_unchanged);
	line(arg, buf);
	if (total->rejected) {
		snprintf(buf, sizeof(buf), "%" PRIu64 " records could not be stored: see the rejected_records table",
			 total->rejected);
		line(arg, buf);
	}
	if (total->nul_removed) {
		snprintf(buf, sizeof(buf), "%" PRIu64 " NUL characters were removed from strings", total->nul_removed);
		line(arg, buf);
	}
}

static void print_line(void *f, const char *line)
{
	fprintf(f, "%s\n", line);
}

static void print_counts(FILE *f, const char *name, const load_counts *c)
{
	fprintf(f, "%-20s %9" PRIu64 " %8" PRIu64 " %9" PRIu64 " %8" PRIu64 " %9" PRIu64 " %8" PRIu64 " %8" PRIu64
		   " %8" PRIu64 "\n",
		name, c->requests, c->retries, c->inserted, c->updated, c->unchanged, c->skipped, c->rejected,
		c->deleted);
}

void pipeline_print_summary(const pipeline_summary *s, FILE *f)
{
	char head[160];
	summary_headline(s, head, sizeof(head));
	fprintf(f, "%s\n", head);
	if (s->error[0])
		fprintf(f, "error: %s\n", s->error);
	if (!s->run_id)
		return;
	fprintf(f, "%-20s %9s %8s %9s %8s %9s %8s %8s %8s\n", "stream", "requests", "retries", "inserted", "updated",
		"unchanged", "skipped", "rejected", "deleted");
	for (int i = 0; i < MIRROR_TABLE_COUNT; i++)
		print_counts(f, mirror_tables[i], &s->streams[i]);
	load_counts total = summary_totals(s);
	print_counts(f, "total", &total);
	summary_footer(s, &total, print_line, f);
}

static void log_line(void *arg, const char *line)
{
	(void)arg;
	log_info("%s", line);
}

static void log_counts(const char *stream, const load_counts *c)
{
	LOG_AT(LOG_INFO, stream, NULL,
	       "summary: requests=%" PRIu64 " retries=%" PRIu64 " inserted=%" PRIu64 " updated=%" PRIu64
	       " unchanged=%" PRIu64 " skipped=%" PRIu64 " rejected=%" PRIu64 " deleted=%" PRIu64,
	       c->requests, c->retries, c->inserted, c->updated, c->unchanged, c->skipped, c->rejected, c->deleted);
}

void pipeline_log_summary(const pipeline_summary *s)
{
	char head[160];
	summary_headline(s, head, sizeof(head));
	if (!s->run_id) { /* its error, if any, was logged by the caller */
		log_info("%s", head);
		return;
	}
	/* pipeline_sync let go of the run's id, but these lines are the run's
	 * own: an operator greps for run=N (or "run_id" in JSON) */
	log_set_run_id(s->run_id);
	if (s->error[0])
		log_error("%s: %s", head, s->error);
	else
		log_info("%s", head);
	for (int i = 0; i < MIRROR_TABLE_COUNT; i++)
		log_counts(mirror_tables[i], &s->streams[i]);
	load_counts total = summary_totals(s);
	log_counts("total", &total);
	summary_footer(s, &total, log_line, NULL);
	log_set_run_id(0);
}
