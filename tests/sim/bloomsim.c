/* bloomsim.c — the Bloom Growth API simulator: command line, HTTP server
 * (libmicrohttpd, epoll thread pool), latency via suspend/resume and a timer
 * thread, fault injection, statistics and the admin endpoints.
 *
 * See docs/bloomsim.md for the command line and the admin surface. */
#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "sim_api.h"
#include "sim_auth.h"
#include "sim_buf.h"
#include "sim_expect.h"
#include "sim_org.h"
#include "sim_rng.h"
#include "sim_timer.h"

#define MAX_UPLOAD (1 << 20)
#define MAX_STATUS 600

enum { F_429 = 0, F_5XX, F_RESET, F_TRUNCATE, F_STALL, F_COUNT, F_NONE = -1 };
static const char *const fault_names[F_COUNT] = { "429", "5xx", "reset", "truncate", "stall" };

/* Settings that /__faults can change while serving. */
typedef struct faults {
	double p[F_COUNT];
	long after;
	long retry_after;
	long stall_ms;
	long latency_ms;
	long jitter_ms;
} faults;

typedef struct config {
	long port;
	const char *key;
	sim_org_params org;
	faults faults;
	uint64_t fault_seed;
	long page_size;
	long least_page_size;
	long mutate;
	const char *expect;
	long threads;
	const char *username; /* the token endpoint's user (with password) */
	const char *password;
	long token_ttl_s;
} config;

typedef struct server {
	config cfg;
	sim_org *org;
	pthread_rwlock_t org_lock;
	sim_timer *timer;
	atomic_bool shutting;
	pthread_mutex_t fault_lock;
	faults faults; /* guarded by fault_lock */
	atomic_long seq; /* API requests since start, reset or a new "after" */
	atomic_long total, inflight, peak;
	atomic_long endpoints[SIM_EP_COUNT];
	atomic_long status[MAX_STATUS];
	atomic_long fault_count[F_COUNT];
	sim_auth *auth; /* NULL without --username */
	atomic_long tokens_issued, token_rejected;
} server;

enum { REQ_NEW = 0, REQ_WAITING };

typedef struct req {
	server *srv;
	struct MHD_Connection *conn;
	bool admin;
	bool token; /* POST /Token */
	int state;
	sim_buf upload;
	int status;
	char *body;
	size_t body_len;
	long retry_after; /* -1: no header */
} req;

/* ---- command line ---- */

typedef enum { OPT_LONG, OPT_U64, OPT_DOUBLE, OPT_STR } opt_type;

typedef struct option {
	const char *name;
	opt_type type;
	size_t offset;
	double min, max;
	const char *help;
} option;

#define OFF(field) offsetof(config, field)
static const option options[] = {
	{ "port", OPT_LONG, OFF(port), 0, 65535, "TCP port on 127.0.0.1 (0: pick one, print it)" },
	{ "key", OPT_STR, OFF(key), 0, 0, "the accepted Bearer token (required)" },
	{ "seed", OPT_U64, OFF(org.seed), 0, 0, "organisation seed (1)" },
	{ "users", OPT_LONG, OFF(org.users), 1, 5000000, "users (40)" },
	{ "meetings", OPT_LONG, OFF(org.meetings), 1, 1000000, "meetings (8)" },
	{ "todos-per-meeting", OPT_LONG, OFF(org.todos_per_meeting), 0, 10000, "todos per meeting (12)" },
	{ "personal-todos", OPT_LONG, OFF(org.personal_todos), 0, 1000, "personal todos per user (2)" },
	{ "measurables", OPT_LONG, OFF(org.measurables_per_meeting), 1, 1000, "measurables per meeting (3)" },
	{ "weeks", OPT_LONG, OFF(org.weeks), 1, 520, "weeks of scores per measurable (6)" },
	{ "latency-ms", OPT_LONG, OFF(faults.latency_ms), 0, 3600000, "delay of every response (0)" },
	{ "jitter-ms", OPT_LONG, OFF(faults.jitter_ms), 0, 3600000, "extra random delay 0..J (0)" },
	{ "fault-429", OPT_DOUBLE, OFF(faults.p[F_429]), 0, 1, "probability of 429 (0)" },
	{ "retry-after", OPT_LONG, OFF(faults.retry_after), 0, 86400, "Retry-After seconds of a 429 (1)" },
	{ "fault-5xx", OPT_DOUBLE, OFF(faults.p[F_5XX]), 0, 1, "probability of 500/502/503 (0)" },
	{ "fault-reset", OPT_DOUBLE, OFF(faults.p[F_RESET]), 0, 1, "probability of a closed connection (0)" },
	{ "fault-truncate", OPT_DOUBLE, OFF(faults.p[F_TRUNCATE]), 0, 1, "probability of a cut JSON body (0)" },
	{ "fault-stall", OPT_DOUBLE, OFF(faults.p[F_STALL]), 0, 1, "probability of a stalled response (0)" },
	{ "stall-ms", OPT_LONG, OFF(faults.stall_ms), 0, 86400000, "how long a stall lasts (60000)" },
	{ "fault-after", OPT_LONG, OFF(faults.after), 0, 1e15, "no faults for the first N requests (0)" },
	{ "fault-seed", OPT_U64, OFF(fault_seed), 0, 0, "fault and jitter seed (1)" },
	{ "page-size", OPT_LONG, OFF(page_size), 0, 1e9, "enable paging with this default pageSize (0: off)" },
	{ "least-page-size", OPT_LONG, OFF(least_page_size), 0, 1e9, "with paging: a smaller pageSize asked is raised to this (0)" },
	{ "mutate", OPT_LONG, OFF(mutate), 0, 10000, "mutation rounds before serving (0)" },
	{ "expect", OPT_STR, OFF(expect), 0, 0, "write the expected mirror JSON to FILE and exit" },
	{ "threads", OPT_LONG, OFF(threads), 1, 256, "HTTP threads (2)" },
	{ "username", OPT_STR, OFF(username), 0, 0, "user accepted by POST /Token (with --password)" },
	{ "password", OPT_STR, OFF(password), 0, 0, "password accepted by POST /Token" },
	{ "token-ttl-s", OPT_LONG, OFF(token_ttl_s), 1, 1e9, "lifetime of an issued token (1209599)" },
};
#define N_OPTIONS (sizeof options / sizeof options[0])

static void usage(FILE *f)
{
	size_t i;

	fprintf(f, "usage: bloomsim --port P --key K [options]\n");
	for (i = 0; i < N_OPTIONS; i++)
		fprintf(f, "  --%-18s %s\n", options[i].name, options[i].help);
}

static void config_defaults(config *c)
{
	memset(c, 0, sizeof *c);
	c->port = -1;
	sim_org_default_params(&c->org);
	c->faults.retry_after = 1;
	c->faults.stall_ms = 60000;
	c->fault_seed = 1;
	c->threads = 2;
	c->token_ttl_s = 1209599;
}

static int set_option(config *c, const option *o, const char *value)
{
	char *end = NULL;
	void *field = (char *)c + o->offset;
	double d;

	errno = 0;
	switch (o->type) {
	case OPT_STR:
		*(const char **)field = value;
		return 0;
	case OPT_U64:
		*(uint64_t *)field = strtoull(value, &end, 10);
		break;
	case OPT_LONG:
		*(long *)field = strtol(value, &end, 10);
		d = (double)*(long *)field;
		if (d < o->min || d > o->max)
			return -1;
		break;
	case OPT_DOUBLE:
		d = strtod(value, &end);
		if (!(d >= o->min && d <= o->max))
			return -1;
		*(double *)field = d;
		break;
	}
	return (errno != 0 || end == value || *end != '\0') ? -1 : 0;
}

static int parse_args(config *c, int argc, char **argv)
{
	int i;
	size_t k;

	for (i = 1; i < argc; i++) {
		const char *arg = argv[i];

		if (strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0)
			return 1;
		for (k = 0; k < N_OPTIONS; k++)
			if (strncmp(arg, "--", 2) == 0 && strcmp(arg + 2, options[k].name) == 0)
				break;
		if (k == N_OPTIONS || i + 1 >= argc) {
			fprintf(stderr, "bloomsim: unknown option or missing value: %s\n", arg);
			return -1;
		}
		if (set_option(c, &options[k], argv[++i]) != 0) {
			fprintf(stderr, "bloomsim: bad value for --%s: %s\n", options[k].name, argv[i]);
			return -1;
		}
	}
	if (c->expect == NULL && (c->port < 0 || c->key == NULL || c->key[0] == '\0')) {
		fprintf(stderr, "bloomsim: --port and --key are required\n");
		return -1;
	}
	if ((c->username == NULL) != (c->password == NULL)) {
		fprintf(stderr, "bloomsim: --username and --password go together\n");
		return -1;
	}
	return 0;
}

/* ---- responses ---- */

static void req_set(req *r, int status, char *body, size_t len)
{
	free(r->body);
	r->status = status;
	r->body = body;
	r->body_len = len;
}

static void req_set_text(req *r, int status, const char *text)
{
	size_t len = strlen(text);
	char *copy = malloc(len + 1);

	if (copy != NULL)
		memcpy(copy, text, len + 1);
	req_set(r, status, copy, copy ? len : 0);
}

static void req_set_buf(req *r, int status, sim_buf *b)
{
	size_t len = 0;
	char *body = sim_buf_steal(b, &len);

	req_set(r, body ? status : 500, body, len);
}

static enum MHD_Result send_response(req *r)
{
	struct MHD_Response *resp;
	enum MHD_Result ret;
	char num[24];

	if (r->body == NULL)
		return MHD_NO;
	resp = MHD_create_response_from_buffer(r->body_len, r->body, MHD_RESPMEM_MUST_FREE);
	if (resp == NULL)
		return MHD_NO;
	r->body = NULL;
	MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json; charset=utf-8");
	if (r->retry_after >= 0) {
		snprintf(num, sizeof num, "%ld", r->retry_after);
		MHD_add_response_header(resp, MHD_HTTP_HEADER_RETRY_AFTER, num);
	}
	ret = MHD_queue_response(r->conn, (unsigned int)r->status, resp);
	MHD_destroy_response(resp);
	return ret;
}

/* ---- statistics ---- */

static void stats_reset(server *srv)
{
	int i;

	atomic_store(&srv->total, 0);
	atomic_store(&srv->peak, atomic_load(&srv->inflight));
	atomic_store(&srv->seq, 0);
	for (i = 0; i < SIM_EP_COUNT; i++)
		atomic_store(&srv->endpoints[i], 0);
	for (i = 0; i < MAX_STATUS; i++)
		atomic_store(&srv->status[i], 0);
	for (i = 0; i < F_COUNT; i++)
		atomic_store(&srv->fault_count[i], 0);
	atomic_store(&srv->tokens_issued, 0);
	atomic_store(&srv->token_rejected, 0);
}

static void stats_json(server *srv, sim_buf *b)
{
	int i;
	bool first = true;

	sim_buf_addf(b, "{\"total\":%ld,\"peak_inflight\":%ld,\"inflight\":%ld,\"endpoints\":{",
		     atomic_load(&srv->total), atomic_load(&srv->peak), atomic_load(&srv->inflight));
	for (i = 0; i < SIM_EP_COUNT; i++)
		sim_buf_addf(b, "%s\"%s\":%ld", i ? "," : "", sim_api_endpoint_name(i), atomic_load(&srv->endpoints[i]));
	sim_buf_adds(b, "},\"status\":{");
	for (i = 0; i < MAX_STATUS; i++) {
		long n = atomic_load(&srv->status[i]);

		if (n == 0)
			continue;
		sim_buf_addf(b, "%s\"%d\":%ld", first ? "" : ",", i, n);
		first = false;
	}
	sim_buf_adds(b, "},\"faults\":{");
	for (i = 0; i < F_COUNT; i++)
		sim_buf_addf(b, "%s\"%s\":%ld", i ? "," : "", fault_names[i], atomic_load(&srv->fault_count[i]));
	sim_buf_addf(b, "},\"tokens_issued\":%ld,\"token_rejected\":%ld}\n", atomic_load(&srv->tokens_issued),
		     atomic_load(&srv->token_rejected));
}

/* ---- admin ---- */

static void faults_json(const faults *f, sim_buf *b)
{
	int i;

	sim_buf_adds(b, "{");
	for (i = 0; i < F_COUNT; i++)
		sim_buf_addf(b, "\"%s\":%g,", fault_names[i], f->p[i]);
	sim_buf_addf(b, "\"after\":%ld,\"retry_after\":%ld,\"stall_ms\":%ld,\"latency_ms\":%ld,\"jitter_ms\":%ld}\n",
		     f->after, f->retry_after, f->stall_ms, f->latency_ms, f->jitter_ms);
}

static int faults_update(faults *f, json_t *obj, bool *after_set)
{
	static const char *const longs[] = { "after", "retry_after", "stall_ms", "latency_ms", "jitter_ms" };
	faults next = *f;
	long *targets[] = { &next.after, &next.retry_after, &next.stall_ms, &next.latency_ms, &next.jitter_ms };
	json_t *v;
	size_t i;

	for (i = 0; i < F_COUNT; i++) {
		v = json_object_get(obj, fault_names[i]);
		if (v == NULL)
			continue;
		if (!json_is_number(v) || json_number_value(v) < 0 || json_number_value(v) > 1)
			return -1;
		next.p[i] = json_number_value(v);
	}
	for (i = 0; i < sizeof longs / sizeof longs[0]; i++) {
		v = json_object_get(obj, longs[i]);
		if (v == NULL)
			continue;
		if (!json_is_integer(v) || json_integer_value(v) < 0)
			return -1;
		*targets[i] = (long)json_integer_value(v);
	}
	*after_set = json_object_get(obj, "after") != NULL;
	*f = next;
	return 0;
}

static void admin_faults(server *srv, req *r, sim_buf *b)
{
	json_t *obj = json_loadb(r->upload.data ? r->upload.data : "{}", r->upload.len ? r->upload.len : 2, 0, NULL);
	bool after_set = false;
	int rc = -1;

	pthread_mutex_lock(&srv->fault_lock);
	if (json_is_object(obj))
		rc = faults_update(&srv->faults, obj, &after_set);
	if (rc == 0) {
		if (after_set)
			atomic_store(&srv->seq, 0);
		faults_json(&srv->faults, b);
	}
	pthread_mutex_unlock(&srv->fault_lock);
	json_decref(obj);
	if (rc == 0)
		req_set_buf(r, 200, b);
	else
		req_set_text(r, 400, "{\"error\":\"bad fault settings\"}\n");
}

static void admin(server *srv, req *r, const char *url, const char *method)
{
	bool get = strcmp(method, "GET") == 0, post = strcmp(method, "POST") == 0;
	sim_buf b;
	long g;

	sim_buf_init(&b);
	if (get && strcasecmp(url, "/__stats") == 0) {
		stats_json(srv, &b);
		req_set_buf(r, 200, &b);
	} else if (post && strcasecmp(url, "/__reset") == 0) {
		stats_reset(srv);
		req_set_text(r, 200, "{\"ok\":true}\n");
	} else if (post && strcasecmp(url, "/__mutate") == 0) {
		pthread_rwlock_wrlock(&srv->org_lock);
		g = sim_org_mutate(srv->org);
		pthread_rwlock_unlock(&srv->org_lock);
		sim_buf_addf(&b, "{\"generation\":%ld}\n", g);
		req_set_buf(r, g < 0 ? 500 : 200, &b);
	} else if (get && strcasecmp(url, "/__expect") == 0) {
		pthread_rwlock_rdlock(&srv->org_lock);
		if (sim_expect_write(srv->org, &b) != 0)
			sim_buf_clear(&b);
		pthread_rwlock_unlock(&srv->org_lock);
		req_set_buf(r, b.len ? 200 : 500, &b);
	} else if (post && strcasecmp(url, "/__faults") == 0) {
		admin_faults(srv, r, &b);
	} else if (get && strcasecmp(url, "/__tokens") == 0) {
		sim_auth_tokens_json(srv->auth, &b);
		req_set_buf(r, 200, &b);
	} else {
		req_set_text(r, 404, "{\"error\":\"unknown admin endpoint\"}\n");
	}
	sim_buf_free(&b);
}

/* ---- API requests ---- */

typedef struct query_ctx {
	sim_query q;
	long page_size_param;
} query_ctx;

static enum MHD_Result query_arg(void *cls, enum MHD_ValueKind kind, const char *key, const char *value)
{
	query_ctx *qc = cls;

	(void)kind;
	if (value == NULL)
		return MHD_YES;
	if (strcasecmp(key, "include_closed") == 0)
		qc->q.include_closed = strcasecmp(value, "true") == 0;
	else if (strcasecmp(key, "include_resolved") == 0)
		qc->q.include_resolved = strcasecmp(value, "true") == 0;
	else if (strcasecmp(key, "include_origin") == 0)
		qc->q.include_origin = strcasecmp(value, "true") == 0;
	else if (strcasecmp(key, "page") == 0)
		qc->q.page = strtol(value, NULL, 10);
	else if (strcasecmp(key, "pagesize") == 0)
		qc->page_size_param = strtol(value, NULL, 10);
	else if (strcasecmp(key, "term") == 0)
		qc->q.term = value;
	return MHD_YES;
}

static bool authorized(server *srv, struct MHD_Connection *conn)
{
	const char *auth = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION);

	if (auth == NULL || strncasecmp(auth, "Bearer ", 7) != 0)
		return false;
	return strcmp(auth + 7, srv->cfg.key) == 0 || sim_auth_valid(srv->auth, auth + 7);
}

/* POST /Token: a login with the form body (not an API request: not counted
 * in total, endpoints or status, and never faulted or delayed). */
static void token_endpoint(server *srv, req *r, const char *method)
{
	sim_buf b;
	int status;

	sim_buf_init(&b);
	if (strcmp(method, "POST") != 0) {
		req_set_text(r, 405, "{\"Message\":\"The requested resource does not support this method.\"}");
	} else if (srv->auth == NULL) {
		atomic_fetch_add(&srv->token_rejected, 1);
		req_set_text(r, 400, "{\"error\":\"invalid_grant\",\"error_description\":"
				     "\"The user name or password is incorrect.\"}");
	} else {
		status = sim_auth_token(srv->auth, r->upload.data ? r->upload.data : "", r->upload.len, &b);
		atomic_fetch_add(status == 200 ? &srv->tokens_issued : &srv->token_rejected, 1);
		req_set_buf(r, status, &b);
	}
	sim_buf_free(&b);
}

static int pick_fault(server *srv, long seq, const faults *f)
{
	int i;

	if (seq <= f->after)
		return F_NONE;
	/* reset first: it pre-empts everything else */
	if (sim_rng_unit(sim_rng_hash(srv->cfg.fault_seed, (uint64_t)seq, 100 + F_RESET)) < f->p[F_RESET])
		return F_RESET;
	for (i = 0; i < F_COUNT; i++)
		if (i != F_RESET && sim_rng_unit(sim_rng_hash(srv->cfg.fault_seed, (uint64_t)seq, 100 + (uint64_t)i)) < f->p[i])
			return i;
	return F_NONE;
}

static void serve_api(server *srv, req *r, sim_endpoint ep, int64_t id)
{
	query_ctx qc = { .q = { .include_closed = false, .page = 1, .page_size = 0, .term = NULL }, .page_size_param = 0 };
	sim_buf b;
	int status;

	MHD_get_connection_values(r->conn, MHD_GET_ARGUMENT_KIND, query_arg, &qc);
	if (srv->cfg.page_size > 0)
		qc.q.page_size = qc.page_size_param > 0 ? qc.page_size_param : srv->cfg.page_size;
	if (qc.q.page_size > 0 && qc.q.page_size < srv->cfg.least_page_size)
		qc.q.page_size = srv->cfg.least_page_size; /* a server that pages by more than asked */
	sim_buf_init(&b);
	pthread_rwlock_rdlock(&srv->org_lock);
	status = sim_api_respond(srv->org, ep, id, &qc.q, &b);
	pthread_rwlock_unlock(&srv->org_lock);
	req_set_buf(r, status, &b);
	sim_buf_free(&b);
}

static void apply_fault(server *srv, req *r, int fault, long seq, const faults *f)
{
	static const int codes[3] = { 500, 502, 503 };

	switch (fault) {
	case F_429:
		req_set_text(r, 429, "{\"Message\":\"Too many requests\"}");
		r->retry_after = f->retry_after;
		break;
	case F_5XX:
		req_set_text(r, codes[sim_rng_hash(srv->cfg.fault_seed, (uint64_t)seq, 7) % 3],
			     "{\"Message\":\"An error has occurred.\"}");
		break;
	case F_TRUNCATE:
		if (r->status == 200 && r->body_len >= 2)
			r->body_len = r->body_len / 2;
		break;
	default:
		break;
	}
}

static void on_due(void *arg)
{
	req *r = arg;

	MHD_resume_connection(r->conn);
}

static enum MHD_Result api(server *srv, req *r, const char *url, const char *method)
{
	faults f;
	long seq, delay;
	int fault = F_NONE;
	sim_endpoint ep;
	int64_t id;

	pthread_mutex_lock(&srv->fault_lock);
	f = srv->faults;
	pthread_mutex_unlock(&srv->fault_lock);
	ep = sim_api_route(url, &id);
	atomic_fetch_add(&srv->total, 1);
	atomic_fetch_add(&srv->endpoints[ep], 1);
	if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0) {
		req_set_text(r, 405, "{\"Message\":\"The requested resource does not support this method.\"}");
	} else if (!authorized(srv, r->conn)) {
		req_set_text(r, 401, "{\"Message\":\"Authorization has been denied for this request.\"}");
	} else {
		seq = atomic_fetch_add(&srv->seq, 1) + 1;
		fault = pick_fault(srv, seq, &f);
		if (fault != F_NONE)
			atomic_fetch_add(&srv->fault_count[fault], 1);
		if (fault == F_RESET)
			return MHD_NO;
		if (fault == F_429 || fault == F_5XX)
			apply_fault(srv, r, fault, seq, &f);
		else
			serve_api(srv, r, ep, id);
		if (fault == F_TRUNCATE)
			apply_fault(srv, r, fault, seq, &f);
	}
	if (r->status > 0 && r->status < MAX_STATUS)
		atomic_fetch_add(&srv->status[r->status], 1);
	delay = f.latency_ms;
	if (f.jitter_ms > 0)
		delay += (long)(sim_rng_hash(srv->cfg.fault_seed ^ 0x6a6974, (uint64_t)atomic_load(&srv->total), 9) %
				(uint64_t)(f.jitter_ms + 1));
	if (fault == F_STALL)
		delay = f.stall_ms;
	if (delay <= 0 || atomic_load(&srv->shutting))
		return send_response(r);
	r->state = REQ_WAITING;
	MHD_suspend_connection(r->conn);
	if (sim_timer_add(srv->timer, sim_timer_now_ms() + (uint64_t)delay, r) != 0)
		MHD_resume_connection(r->conn);
	return MHD_YES;
}

/* ---- libmicrohttpd callbacks ---- */

static req *req_new(server *srv, struct MHD_Connection *conn, const char *url)
{
	req *r = calloc(1, sizeof *r);
	long now, peak;

	if (r == NULL)
		return NULL;
	r->srv = srv;
	r->conn = conn;
	r->admin = strncmp(url, "/__", 3) == 0;
	r->token = strcasecmp(url, "/token") == 0 || strcasecmp(url, "/token/") == 0;
	r->retry_after = -1;
	sim_buf_init(&r->upload);
	if (!r->admin && !r->token) {
		now = atomic_fetch_add(&srv->inflight, 1) + 1;
		peak = atomic_load(&srv->peak);
		while (now > peak && !atomic_compare_exchange_weak(&srv->peak, &peak, now))
			;
	}
	return r;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url, const char *method,
				  const char *version, const char *upload_data, size_t *upload_data_size,
				  void **con_cls)
{
	server *srv = cls;
	req *r = *con_cls;

	(void)version;
	if (r == NULL) {
		r = req_new(srv, conn, url);
		*con_cls = r;
		return r ? MHD_YES : MHD_NO;
	}
	if (*upload_data_size > 0) {
		if (r->upload.len + *upload_data_size <= MAX_UPLOAD)
			sim_buf_add(&r->upload, upload_data, *upload_data_size);
		*upload_data_size = 0;
		return MHD_YES;
	}
	if (r->state == REQ_WAITING) {
		r->state = REQ_NEW;
		return send_response(r);
	}
	if (r->admin) {
		admin(srv, r, url, method);
		return send_response(r);
	}
	if (r->token) {
		token_endpoint(srv, r, method);
		return send_response(r);
	}
	return api(srv, r, url, method);
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls, enum MHD_RequestTerminationCode toe)
{
	server *srv = cls;
	req *r = *con_cls;

	(void)conn;
	(void)toe;
	if (r == NULL)
		return;
	if (!r->admin && !r->token)
		atomic_fetch_sub(&srv->inflight, 1);
	sim_buf_free(&r->upload);
	free(r->body);
	free(r);
	*con_cls = NULL;
}

/* ---- main ---- */

static int write_expect(const sim_org *org, const char *path)
{
	sim_buf b;
	FILE *f;
	int rc = -1;

	sim_buf_init(&b);
	if (sim_expect_write(org, &b) != 0) {
		fprintf(stderr, "bloomsim: out of memory writing the expected mirror\n");
		goto done;
	}
	f = fopen(path, "wb");
	if (f == NULL) {
		fprintf(stderr, "bloomsim: cannot open %s: %s\n", path, strerror(errno));
		goto done;
	}
	if (fwrite(b.data, 1, b.len, f) == b.len)
		rc = 0;
	if (fclose(f) != 0)
		rc = -1;
	if (rc != 0)
		fprintf(stderr, "bloomsim: cannot write %s\n", path);
done:
	sim_buf_free(&b);
	return rc;
}

static struct MHD_Daemon *start_daemon(server *srv)
{
	struct sockaddr_in addr;
	unsigned int flags = MHD_USE_EPOLL_INTERNAL_THREAD | MHD_ALLOW_SUSPEND_RESUME | MHD_USE_TURBO;

	memset(&addr, 0, sizeof addr);
	addr.sin_family = AF_INET;
	addr.sin_port = htons((uint16_t)srv->cfg.port);
	addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	return MHD_start_daemon(flags, (uint16_t)srv->cfg.port, NULL, NULL, on_request, srv,
				MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&addr,
				MHD_OPTION_THREAD_POOL_SIZE, (unsigned int)(srv->cfg.threads > 1 ? srv->cfg.threads : 0),
				MHD_OPTION_NOTIFY_COMPLETED, on_completed, srv,
				MHD_OPTION_CONNECTION_LIMIT, (unsigned int)16000,
				MHD_OPTION_LISTEN_BACKLOG_SIZE, (unsigned int)4096,
				MHD_OPTION_END);
}

static int serve(server *srv)
{
	struct MHD_Daemon *daemon;
	const union MHD_DaemonInfo *info;
	sigset_t set;
	int sig;

	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	signal(SIGPIPE, SIG_IGN);
	srv->timer = sim_timer_new(on_due);
	if (srv->timer == NULL) {
		fprintf(stderr, "bloomsim: cannot start the timer thread\n");
		return -1;
	}
	daemon = start_daemon(srv);
	if (daemon == NULL) {
		fprintf(stderr, "bloomsim: cannot listen on 127.0.0.1:%ld\n", srv->cfg.port);
		sim_timer_free(srv->timer);
		return -1;
	}
	info = MHD_get_daemon_info(daemon, MHD_DAEMON_INFO_BIND_PORT);
	printf("%u\n", info ? (unsigned int)info->port : (unsigned int)srv->cfg.port);
	fflush(stdout);
	sigwait(&set, &sig);
	atomic_store(&srv->shutting, true);
	sim_timer_stop(srv->timer);
	MHD_stop_daemon(daemon);
	sim_timer_free(srv->timer);
	return 0;
}

int main(int argc, char **argv)
{
	static server srv;
	long i;
	int rc;

	config_defaults(&srv.cfg);
	rc = parse_args(&srv.cfg, argc, argv);
	if (rc != 0) {
		usage(rc > 0 ? stdout : stderr);
		return rc > 0 ? 0 : 2;
	}
	srv.org = sim_org_new(&srv.cfg.org);
	if (srv.org == NULL) {
		fprintf(stderr, "bloomsim: cannot generate the organisation\n");
		return 1;
	}
	for (i = 0; i < srv.cfg.mutate; i++)
		if (sim_org_mutate(srv.org) < 0) {
			fprintf(stderr, "bloomsim: mutation failed\n");
			sim_org_free(srv.org);
			return 1;
		}
	if (srv.cfg.expect != NULL) {
		rc = write_expect(srv.org, srv.cfg.expect);
		sim_org_free(srv.org);
		return rc == 0 ? 0 : 1;
	}
	srv.faults = srv.cfg.faults;
	if (srv.cfg.username != NULL) {
		srv.auth = sim_auth_new(srv.cfg.username, srv.cfg.password, srv.cfg.token_ttl_s);
		if (srv.auth == NULL) {
			fprintf(stderr, "bloomsim: out of memory\n");
			sim_org_free(srv.org);
			return 1;
		}
	}
	pthread_rwlock_init(&srv.org_lock, NULL);
	pthread_mutex_init(&srv.fault_lock, NULL);
	rc = serve(&srv);
	pthread_mutex_destroy(&srv.fault_lock);
	pthread_rwlock_destroy(&srv.org_lock);
	sim_auth_free(srv.auth);
	sim_org_free(srv.org);
	return rc == 0 ? 0 : 1;
}
