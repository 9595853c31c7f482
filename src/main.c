/* main.c — the command line: options, commands, exit codes. */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <curl/curl.h>

#include "auth.h"
#include "config.h"
#include "http.h"
#include "load.h"
#include "load_migrations.h"
#include "log.h"
#include "metrics.h"
#include "pipeline.h"
#include <time.h>

#define BLOOMSYNC_VERSION "0.1.0"

/* Exit codes: the one table (documented in --help, the README and the man page). */
enum {
	EXIT_OK = 0,
	EXIT_RUN_FAILED = 1,
	EXIT_USAGE = 2,
	EXIT_LOCKED = 3,
	EXIT_AUTH = 4,
	EXIT_CANCELLED = 5,
};

static int exit_code_for(pipeline_status st)
{
	switch (st) {
	case PIPELINE_SUCCEEDED: return EXIT_OK;
	case PIPELINE_LOCKED: return EXIT_LOCKED;
	case PIPELINE_AUTH: return EXIT_AUTH;
	case PIPELINE_CANCELLED: return EXIT_CANCELLED;
	case PIPELINE_FAILED: break;
	}
	return EXIT_RUN_FAILED;
}

static const char usage_text[] =
    "usage: bloomsync [-c FILE] [-v|-q] [--log-format text|json] [--metrics-file PATH] COMMAND [ARGS]\n"
    "\n"
    "Mirrors a Bloom Growth organisation into PostgreSQL.\n"
    "\n"
    "commands:\n"
    "  sync [--restart] [--full]\n"
    "                          mirror the organisation (resumes an interrupted run)\n"
    "  migrate                 create or upgrade the mirror schema\n"
    "  status [--json] [-n N]  show the latest runs and the progress of an unfinished one\n"
    "  check                   check the config, the API key and the database\n"
    "  version                 print the version\n"
    "  help [COMMAND]          show help\n"
    "\n"
    "options:\n"
    "  -c, --config FILE       config file (default $BLOOMSYNC_CONFIG, else " CFG_DEFAULT_PATH ")\n"
    "  -v, --verbose           log debug lines\n"
    "  -q, --quiet             log warnings and errors only\n"
    "      --log-format FMT    text or json (overrides log.format)\n"
    "      --metrics-file PATH write Prometheus metrics there after each run (overrides metrics_file)\n"
    "  -h, --help              show this help\n"
    "\n"
    "environment: BG_API_KEY (the API key; wins over api.key and api.key_file), BLOOMSYNC_CONFIG,\n"
    "             BG_USERNAME, BG_PASSWORD (credentials instead of a key; win over api.username,\n"
    "             api.password and api.password_file; a key wins over credentials),\n"
    "             PGHOST, PGUSER, PGPASSWORD, ... (libpq's, for postgres.conninfo)\n"
    "\n"
    "exit codes:\n"
    "  0  success\n"
    "  1  the run failed (see the error; the next sync resumes it)\n"
    "  2  usage or configuration error\n"
    "  3  another sync holds the lock for this database and schema\n"
    "  4  the API rejected the key, or the username and password\n"
    "  5  cancelled by a signal (the next sync resumes)\n";

static const char *const command_help[][2] = {
    {"sync",
     "usage: bloomsync [options] sync [--restart] [--full]\n\n"
     "Mirrors the organisation into the configured schema. Applies pending migrations first.\n"
     "An interrupted, failed or cancelled run is resumed: units already committed are not\n"
     "fetched again. Rows that vanished upstream get deleted_at only after a complete run.\n\n"
     "A source (one GET) whose body is byte for byte what it was when last read is not\n"
     "mapped or written again: its rows stand as they are.\n\n"
     "  --restart   abandon an unfinished run and start a fresh one\n"
     "  --full      map and compare every body, even one that did not change (after the\n"
     "              mirror's rows were edited by hand, say)\n"},
    {"migrate", "usage: bloomsync [options] migrate\n\nCreates the schema and applies the embedded SQL migrations "
		"not applied yet.\nSafe to run again: applied migrations are skipped.\n"},
    {"status", "usage: bloomsync [options] status [--json] [-n N]\n\nShows the last N runs (default 10): id, "
	       "start, duration, status, rows changed,\nrequests and error, and the progress of an unfinished run.\n\n"
	       "  --json   machine-readable output\n  -n N     how many runs\n"},
    {"check", "usage: bloomsync [options] check\n\nChecks that the config is valid, the API answers and accepts "
	      "the key, and the\ndatabase is reachable, not migrated by a newer bloomsync, and open to the role\n"
	      "for what a sync does there. Exit 0 when all hold; pending migrations are noted\n"
	      "(the next sync applies them).\n"},
    {"version", "usage: bloomsync version\n\nPrints the version.\n"},
};

/* The help of one command; NULL for a name that is no command. */
static const char *command_help_text(const char *command)
{
	for (size_t i = 0; i < sizeof(command_help) / sizeof(command_help[0]); i++)
		if (strcmp(command_help[i][0], command) == 0)
			return command_help[i][1];
	return NULL;
}

static void print_command_help(const char *command, FILE *f)
{
	const char *text = command_help_text(command);
	fputs(text ? text : usage_text, f);
}

/* A usage error found once the log format is known (--log-format is read
 * first). With JSON logs it is one error line, like every other line: a
 * log shipper would drop or mangle plain text, and a help text would break
 * one object per line. As text it is for a person at a terminal: the
 * message, then help (help may be NULL), to fix the command line with. */
static void usage_error(const char *help, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void usage_error(const char *help, const char *fmt, ...)
{
	char msg[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (log_current_format() == LOG_FORMAT_JSON) {
		log_error("%s", msg);
		return;
	}
	fprintf(stderr, "bloomsync: %s\n", msg);
	if (help)
		fprintf(stderr, "\n%s", help);
}

static void report_unknown_command(const char *command)
{
	usage_error(usage_text, "unknown command '%s'", command);
}

/* Set by the handler, read by the main thread and, through auth_opts and
 * pipeline_opts, by the fetch thread: volatile sig_atomic_t is only good
 * for the thread the signal interrupted (and the handler may run on a
 * resolver thread of libcurl's); a lock-free atomic is good for all, and
 * may be written in a handler (C11 7.14.1.1). */
_Static_assert(ATOMIC_INT_LOCK_FREE == 2, "a signal handler may write only a lock-free atomic");
static atomic_int cancel_requested;

/* seconds a stop waits for the database to answer (see on_signal) */
#define STOP_GRACE_S 10

static void on_signal(int sig)
{
	(void)sig;
	int saved = errno;
	/* a server that ignores the cancel (frozen; or cut off, where TCP
	 * waits for hours) must not hold the stop: STOP_GRACE_S after the
	 * first signal, on_alarm closes the session's socket */
	if (!cancel_requested)
		alarm(STOP_GRACE_S);
	cancel_requested = 1;
	load_cancel_from_signal(); /* a database call blocked on a lock returns */
	errno = saved;
}

static void on_alarm(int sig)
{
	(void)sig;
	int saved = errno;
	/* no socket now (a connection being made, bounded by its own
	 * connect_timeout): look again in a second */
	if (!load_abandon_from_signal())
		alarm(1);
	errno = saved;
}

static void install_signals(void)
{
	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	/* the terminal or ssh session a backfill runs in went away: stop as
	 * for SIGTERM (commit what arrived, record the run cancelled, write
	 * the metrics), not die with the run left 'running'; unless it is
	 * ignored already (nohup): then the run is meant to outlive it */
	struct sigaction hup;
	if (sigaction(SIGHUP, NULL, &hup) == 0 && hup.sa_handler != SIG_IGN)
		sigaction(SIGHUP, &sa, NULL);
	sa.sa_handler = on_alarm;
	sigaction(SIGALRM, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
}

typedef struct cli {
	const char *config_path;
	int verbosity; /* -1 quiet, 0 config, 1 debug */
	const char *log_format;
	const char *metrics_file;
	const char *command;
	int argc; /* the command's own arguments */
	char **argv;
} cli;

static int parse_cli(int argc, char **argv, cli *out)
{
	static const struct option opts[] = {
	    {"config", required_argument, NULL, 'c'},   {"verbose", no_argument, NULL, 'v'},
	    {"quiet", no_argument, NULL, 'q'},          {"log-format", required_argument, NULL, 'F'},
	    {"metrics-file", required_argument, NULL, 'M'}, {"help", no_argument, NULL, 'h'},
	    {"version", no_argument, NULL, 'V'},       {NULL, 0, NULL, 0},
	};
	int opt;
	bool bad = false;
	/* '+': stop at the command; its own options are parsed by the command */
	while ((opt = getopt_long(argc, argv, "+c:vqh", opts, NULL)) != -1) {
		switch (opt) {
		case 'c': out->config_path = optarg; break;
		case 'v': out->verbosity = 1; break;
		case 'q': out->verbosity = -1; break;
		case 'F': out->log_format = optarg; break;
		case 'M': out->metrics_file = optarg; break;
		case 'h': out->command = "help"; return bad ? -1 : 0;
		case 'V': out->command = "version"; return bad ? -1 : 0;
		default: bad = true; break; /* getopt said why; read on, for the command */
		}
	}
	if (optind >= argc) {
		if (!bad)
			fprintf(stderr, "bloomsync: no command given\n\n%s", usage_text);
		return -1;
	}
	out->command = argv[optind];
	out->argc = argc - optind;
	out->argv = argv + optind;
	return bad ? -1 : 0;
}

/* Loads the config and sets up logging from it and the command line. */
static int load_config(const cli *c, cfg *config)
{
	const char *path = c->config_path;
	if (path && !*path) { /* -c "$UNSET_VARIABLE" must not fall back to the production file */
		log_error("-c: the config file path is empty");
		return -1;
	}
	if (!path)
		path = getenv("BLOOMSYNC_CONFIG");
	if (!path || !*path)
		path = CFG_DEFAULT_PATH;
	cfg_error err;
	if (cfg_load(path, config, &err) != 0) {
		log_error("%s", err.msg); /* in --log-format's format: the config's is not known */
		return -1;
	}
	log_level level = config->log_level;
	if (c->verbosity > 0)
		level = LOG_DEBUG;
	else if (c->verbosity < 0)
		level = LOG_WARN;
	log_format format = config->log_format;
	if (c->log_format && log_format_parse(c->log_format, &format) != 0) {
		/* plain text: the format asked for is the thing that is wrong */
		fprintf(stderr, "bloomsync: --log-format: expected text or json, got '%s'\n", c->log_format);
		return -1;
	}
	/* what the command line asked for is what the run uses (the progress
	 * line is text only, say) */
	config->log_level = level;
	config->log_format = format;
	log_init(level, format);
	cfg_log_warnings(config); /* kept by cfg_load until the log was set up from the config */
	return 0;
}

/* Parses the options of a command that takes only flags from `allowed`. */
static int command_flag(const cli *c, const char *flag)
{
	for (int i = 1; i < c->argc; i++)
		if (strcmp(c->argv[i], flag) == 0)
			return i;
	return 0;
}

/* The value of a command's option that takes one: "-n 5" or, as getopt
 * allows, "-n5". "" when the option ends the line without its value; NULL
 * when it is not given. */
static const char *command_value(const cli *c, const char *flag)
{
	size_t len = strlen(flag);
	for (int i = 1; i < c->argc; i++) {
		if (strcmp(c->argv[i], flag) == 0)
			return i + 1 < c->argc ? c->argv[i + 1] : "";
		if (strncmp(c->argv[i], flag, len) == 0)
			return c->argv[i] + len;
	}
	return NULL;
}

/* Checks a command's arguments against `allowed`; its first
 * with_value_count entries take a value (checked by the command), given
 * apart or, for a one-letter option, joined ("-n 5", "-n5"). Returns 1
 * when help was asked for and printed, -1 on an unknown argument, else 0. */
static int check_args(const cli *c, const char *const *allowed, int with_value_count)
{
	for (int i = 1; i < c->argc; i++) {
		const char *arg = c->argv[i];
		if (strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0) {
			print_command_help(c->command, stdout);
			return 1;
		}
		int a = 0;
		while (allowed[a] && strcmp(arg, allowed[a]) != 0 &&
		       !(a < with_value_count && strlen(allowed[a]) == 2 && strncmp(arg, allowed[a], 2) == 0))
			a++;
		if (!allowed[a]) {
			usage_error(command_help_text(c->command), "%s: unknown argument '%s'", c->command, arg);
			return -1;
		}
		if (a < with_value_count && strcmp(arg, allowed[a]) == 0)
			i++; /* its value, apart */
	}
	return 0;
}

/* The URL as check shows it: the password of its userinfo replaced, how
 * short it may be (log_redact leaves secrets under four bytes alone), then
 * redacted as every log line is. */
static const char *shown_url(const char *url, char *buf, size_t len)
{
	size_t start, plen;
	char shown[1024];
	if (cfg_url_password(url, &start, &plen))
		snprintf(shown, sizeof(shown), "%.*s[redacted]%s", (int)start, url, url + start + plen);
	else
		snprintf(shown, sizeof(shown), "%s", url);
	log_redact(shown, buf, len);
	return buf;
}

static void auth_opts_of(const cfg *config, auth_opts *out)
{
	static char token_url_shown[1024]; /* one config per process */
	*out = (auth_opts){
	    .token_url = config->token_url,
	    .token_url_shown = config->token_url ? shown_url(config->token_url, token_url_shown, sizeof(token_url_shown))
						 : NULL,
	    .username = config->username,
	    .password = config->password,
	    .cache_path = config->token_cache,
	    .timeout_ms = config->timeout_ms,
	    .max_retries = config->max_retries < 3 ? config->max_retries : 3,
	    .cancel = &cancel_requested,
	};
}

static void format_utc(time_t t, char *buf, size_t len)
{
	struct tm tm;
	strftime(buf, len, "%Y-%m-%d %H:%M:%SZ", gmtime_r(&t, &tm));
}

/* With credentials: the token for this run (cached or from a login). On
 * failure fills the summary as a run that could not start. */
static int sync_login(const cfg *config, const auth_opts *ao, char **token, time_t *expires,
		      pipeline_summary *summary)
{
	auth_origin origin;
	char until[32];
	auth_status st = auth_get_token(ao, false, token, expires, &origin, summary->error, sizeof(summary->error));
	if (st != AUTH_OK) {
		summary->status = st == AUTH_REJECTED    ? PIPELINE_AUTH
				  : st == AUTH_CANCELLED ? PIPELINE_CANCELLED
							 : PIPELINE_FAILED;
		return -1;
	}
	format_utc(*expires, until, sizeof(until));
	if (origin == AUTH_FROM_CACHE)
		log_info("using the cached API token of %s (valid until %s)", config->username, until);
	else
		log_info("logged in as %s; the token is valid until %s", config->username, until);
	return 0;
}

/* Writes the metrics file of a sync when one is known: --metrics-file, else
 * the config's metrics_file (config NULL or not loaded: none). s is NULL
 * when the sync could not start (exit 2); the file then says so, so that an
 * alert on the last run does not keep showing the success before it (see
 * run_command and main). A file that cannot be written is logged, not
 * fatal: the exit status says more. */
static void sync_metrics(const cli *c, const cfg *config, const pipeline_summary *s, int exit_code,
			 time_t started)
{
	const char *path = c->metrics_file ? c->metrics_file : config ? config->metrics_file : NULL;
	char err[512];
	if (path && metrics_write(path, s, exit_code, started, time(NULL), err, sizeof(err)) != 0)
		log_warn("cannot write metrics: %s", err);
}

/* The end-of-run summary on stderr. The table is a report for whoever
 * watches, at level info (the default). With JSON logs, and below info (-q,
 * log.level warn or error), it goes through the logger instead, where only a
 * failed or cancelled run's outcome is an error line: a quiet successful
 * sync prints nothing, so a cron job piped to logger(1) fills no syslog. */
static void report_sync(const cfg *config, const pipeline_summary *s)
{
	if (config->log_format == LOG_FORMAT_JSON || !log_enabled(LOG_INFO))
		pipeline_log_summary(s);
	else
		pipeline_print_summary(s, stderr);
}

/* Returns EXIT_USAGE only when the sync cannot start (exit_code_for never
 * gives it): its metrics file is then run_command's to write; a sync that
 * started writes its own. */
static int cmd_sync(const cli *c, cfg *config, time_t started)
{
	cfg_error cerr;
	if (cfg_read_secrets(config, &cerr) != 0) {
		log_error("%s", cerr.msg);
		return EXIT_USAGE;
	}
	if (!config->key && !config->username) {
		log_error("no API key or credentials: set api.key, api.key_file or BG_API_KEY, "
			  "or api.username and api.password in %s", config->path);
		return EXIT_USAGE;
	}
	auth_opts ao;
	auth_opts_of(config, &ao);
	char *token = NULL;
	time_t expires = 0;
	pipeline_summary summary;
	memset(&summary, 0, sizeof(summary));
	pipeline_status st;
	if (config->username && sync_login(config, &ao, &token, &expires, &summary) != 0) {
		st = summary.status;
	} else {
		pipeline_opts opts = {
		    .config = config,
		    .token = token ? token : config->key,
		    .auth = token ? &ao : NULL,
		    .token_expires = expires,
		    .restart = command_flag(c, "--restart") > 0,
		    .full = command_flag(c, "--full") > 0,
		    /* quiet means quiet on a terminal too */
		    .progress_tty = isatty(STDERR_FILENO) && config->log_format == LOG_FORMAT_TEXT &&
				    log_enabled(LOG_INFO),
		    .cancel = &cancel_requested,
		    .version = BLOOMSYNC_VERSION,
		};
		st = pipeline_sync(&opts, &summary);
	}
	auth_token_free(token);
	sync_metrics(c, config, &summary, exit_code_for(st), started);
	if (st == PIPELINE_LOCKED) {
		log_error("%s", summary.error);
	} else if (summary.run_id == 0 && summary.error[0]) {
		log_error("%s", summary.error);
	}
	report_sync(config, &summary);
	return exit_code_for(st);
}

/* load_open for a command other than sync, whose statements a stop signal
 * cancels (and whose socket its grace closes), as sync's are: migrate,
 * status and check wait on locks too. */
static load_db *open_db(const cfg *config, load_error *err)
{
	load_db *db = load_open(config->conninfo, config->schema, err);
	if (db)
		load_cancel_on_signal(db);
	return db;
}

static int cmd_migrate(const cfg *config)
{
	load_error err;
	load_db *db = open_db(config, &err);
	if (!db) {
		log_error("%s", err.msg);
		return EXIT_RUN_FAILED;
	}
	int applied = 0;
	int rc = load_migrate(db, &applied, &err);
	load_close(db);
	if (rc != 0) {
		log_error("%s", err.msg);
		if (cancel_requested)
			return EXIT_CANCELLED;
		/* a sync holds the run lock: the same exit as a second sync's */
		return strcmp(err.sqlstate, LOAD_SQLSTATE_LOCKED) == 0 ? EXIT_LOCKED : EXIT_RUN_FAILED;
	}
	printf("schema %s: %d migration%s applied, up to date\n", config->schema, applied, applied == 1 ? "" : "s");
	return EXIT_OK;
}

static int cmd_status(const cli *c, const cfg *config)
{
	int limit = 10;
	const char *count = command_value(c, "-n");
	if (count) {
		char *end = NULL;
		long v = *count ? strtol(count, &end, 10) : 0;
		if (!end || *end || v < 1 || v > 10000) {
			usage_error(NULL, "status: -n takes a number from 1 to 10000");
			return EXIT_USAGE;
		}
		limit = (int)v;
	}
	load_error err;
	load_db *db = open_db(config, &err);
	if (!db) {
		log_error("%s", err.msg);
		return EXIT_RUN_FAILED;
	}
	int pending = 0;
	int rc = load_pending_migrations(db, &pending, &err);
	bool json = command_flag(c, "--json") > 0;
	if (rc == 0 && pending == (int)load_migrations_count) {
		if (json) /* what a script reads: the same document, with no run */
			printf("{\n  \"runs\": []\n}\n");
		else
			printf("no runs yet (schema %s not migrated)\n", config->schema);
	} else if (rc == 0) {
		rc = load_status(db, limit, json, stdout, &err);
	}
	load_close(db);
	if (rc != 0) {
		log_error("%s", err.msg);
		return cancel_requested ? EXIT_CANCELLED : EXIT_RUN_FAILED;
	}
	return EXIT_OK;
}

/* One GET of users/mine, to see that the API answers and takes the key. */
typedef struct probe {
	bool done;
	http_outcome outcome;
	long status;
	char error[256];
} probe;

/* Keeps the outcome and why it is not HTTP_OK. The engine gives a text
 * only for HTTP_FAILED; a 404 (say, a base_url without /api/v1, where a web
 * server answers) needs one of its own, or check would print no reason. */
static http_cb_result probe_done(void *ctx, void *user, const http_response *resp)
{
	(void)user;
	probe *p = ctx;
	p->done = true;
	p->outcome = resp->outcome;
	p->status = resp->status;
	if (resp->error && resp->error[0])
		snprintf(p->error, sizeof(p->error), "%s", resp->error);
	else if (resp->outcome == HTTP_NOT_FOUND)
		snprintf(p->error, sizeof(p->error),
			 "HTTP 404 for %s: no Bloom Growth API there. Check api.base_url: it is the API's root, "
			 "like https://app.bloomgrowth.com/api/v1.", resp->path);
	else if (resp->status > 0)
		snprintf(p->error, sizeof(p->error), "HTTP %ld for %s", resp->status, resp->path);
	else
		snprintf(p->error, sizeof(p->error), "no answer for %s", resp->path);
	return HTTP_CB_DONE;
}

/* One GET of users/mine with token; returns -1 (and prints why) when the
 * request could not even be made. */
static int probe_api(const cfg *config, const char *token, probe *p)
{
	http_opts ho = {.base_url = config->base_url, .token = token, .concurrency = 1,
			.timeout_ms = config->timeout_ms, .max_retries = config->max_retries < 2 ? config->max_retries : 2};
	char err[256];
	memset(p, 0, sizeof(*p));
	http_engine *h = http_new(&ho, probe_done, p, err, sizeof(err));
	if (!h || http_submit(h, "users/mine", NULL) != 0) {
		printf("api:      FAIL %s\n", h ? "out of memory" : err);
		http_free(h);
		return -1;
	}
	while (!p->done && http_run(h, 1000) >= 0 && !cancel_requested)
		;
	http_free(h);
	return 0;
}

/* With credentials: a token (cached, or from a login) and a description of
 * it for check's report, never the token or the password itself. */
static int check_login(const cfg *config, bool force, char **token, char *how, size_t howlen)
{
	auth_opts ao;
	auth_origin origin;
	time_t expires;
	char err[512], until[32];
	auth_opts_of(config, &ao);
	auth_status st = auth_get_token(&ao, force, token, &expires, &origin, err, sizeof(err));
	if (st != AUTH_OK) {
		printf("api:      FAIL %s\n", err);
		return st == AUTH_REJECTED ? EXIT_AUTH : st == AUTH_CANCELLED ? EXIT_CANCELLED : EXIT_RUN_FAILED;
	}
	format_utc(expires, until, sizeof(until));
	snprintf(how, howlen, "username and password of %s (password from %s), token %s %s, valid until %s",
		 config->username, config->password_source,
		 origin == AUTH_FROM_CACHE ? "read from the cache" : "obtained now and cached in", config->token_cache,
		 until);
	return EXIT_OK;
}

static int check_api(cfg *config)
{
	char url[1024];
	cfg_error cerr;
	if (cfg_read_secrets(config, &cerr) != 0) {
		printf("api:      FAIL %s\n", cerr.msg);
		return EXIT_USAGE;
	}
	if (!config->key && !config->username) {
		printf("api:      FAIL no API key (api.key, api.key_file or BG_API_KEY) and no username and "
		       "password (api.username, api.password or api.password_file, BG_USERNAME, BG_PASSWORD)\n");
		return EXIT_USAGE;
	}
	char how[512];
	char *token = NULL;
	probe p;
	int rc = EXIT_OK;
	if (config->username)
		rc = check_login(config, false, &token, how, sizeof(how));
	else
		snprintf(how, sizeof(how), "fixed key from %s", config->key_source);
	if (rc != EXIT_OK)
		return rc;
	rc = probe_api(config, token ? token : config->key, &p);
	if (rc == 0 && token && p.done && p.outcome == HTTP_AUTH) {
		/* a cached token the API no longer takes: log in once and try again */
		auth_token_free(token);
		token = NULL;
		rc = check_login(config, true, &token, how, sizeof(how));
		if (rc != EXIT_OK)
			return rc;
		rc = probe_api(config, token, &p);
	}
	auth_token_free(token);
	if (rc != 0)
		return EXIT_RUN_FAILED;
	if (p.done && p.outcome == HTTP_OK) {
		printf("api:      ok %s answers; authenticated with %s\n", shown_url(config->base_url, url, sizeof(url)),
		       how);
		return EXIT_OK;
	}
	if (p.done && p.outcome == HTTP_AUTH) {
		if (config->username)
			printf("api:      FAIL the API rejected a freshly issued token (HTTP %ld; %s)\n", p.status, how);
		else
			printf("api:      FAIL the API rejected the key (HTTP %ld; key from %s)\n", p.status,
			       config->key_source);
		return EXIT_AUTH;
	}
	printf("api:      FAIL %s: %s\n", shown_url(config->base_url, url, sizeof(url)),
	       p.done ? p.error : cancel_requested ? "interrupted" : "the HTTP engine failed (see the log)");
	return !p.done && cancel_requested ? EXIT_CANCELLED : EXIT_RUN_FAILED;
}

static int check_database(const cfg *config)
{
	load_error err;
	load_db *db = open_db(config, &err);
	if (!db) {
		printf("database: FAIL %s\n", err.msg);
		return EXIT_RUN_FAILED;
	}
	int pending = 0;
	bool exists = false;
	char problem[512];
	int rc = load_pending_migrations(db, &pending, &err);
	if (rc == 0)
		rc = load_sync_privileges(db, pending, &exists, problem, sizeof(problem), &err);
	load_close(db);
	if (rc != 0) {
		printf("database: FAIL %s\n", err.msg);
		return EXIT_RUN_FAILED;
	}
	/* reachable is not enough: a role that cannot migrate or write would
	 * pass here and fail the first sync */
	if (problem[0]) {
		printf("database: FAIL %s\n", problem);
		return EXIT_RUN_FAILED;
	}
	/* Pending migrations are no failure: sync applies them before it
	 * starts, so neither a fresh install nor one upgraded since the last
	 * sync is broken. Failing here made the documented first steps (check,
	 * then sync) fail, and a cron health check alarm between an upgrade and
	 * the next run. A schema migrated by a newer bloomsync, which sync
	 * refuses, still fails (load_pending_migrations' error above). */
	if (!exists)
		printf("database: ok reachable; schema %s not created yet: the first sync (or bloomsync migrate) "
		       "creates it\n", config->schema);
	else if (pending == (int)load_migrations_count)
		printf("database: ok reachable; schema %s exists, not migrated yet: the first sync (or bloomsync "
		       "migrate) creates its tables\n", config->schema);
	else if (pending > 0)
		printf("database: ok reachable; %d migration%s pending in schema %s: the next sync (or bloomsync "
		       "migrate) applies %s\n",
		       pending, pending == 1 ? "" : "s", config->schema, pending == 1 ? "it" : "them");
	else
		printf("database: ok reachable, schema %s up to date\n", config->schema);
	return EXIT_OK;
}

static int cmd_check(cfg *config)
{
	printf("config:   ok %s\n", config->path);
	int api = check_api(config);
	/* SIGINT, SIGTERM or SIGHUP stops check as it stops sync, with the same exit
	 * status: a script tells "interrupted" from "unhealthy" */
	if (cancel_requested) {
		printf("database: not checked (interrupted)\n");
		return EXIT_CANCELLED;
	}
	int db = check_database(config);
	if (cancel_requested)
		return EXIT_CANCELLED;
	/* the more specific failure wins: a rejected key says more than "failed" */
	return api != EXIT_OK ? api : db;
}

/* help [COMMAND]. A name that is no command is a usage error, as it is
 * without "help": a typo must not look like an answer. */
static int cmd_help(const cli *c)
{
	/* help's own help is the usage: it lists "help [COMMAND]"; and every
	 * command takes -h and --help, help too (bloomsync.1) */
	if (c->argc < 2 || strcmp(c->argv[1], "help") == 0 || strcmp(c->argv[1], "--help") == 0 ||
	    strcmp(c->argv[1], "-h") == 0) {
		fputs(usage_text, stdout);
		return EXIT_OK;
	}
	const char *text = command_help_text(c->argv[1]);
	if (!text) {
		report_unknown_command(c->argv[1]);
		return EXIT_USAGE;
	}
	fputs(text, stdout);
	return EXIT_OK;
}

static int run_command(const cli *c)
{
	static const char *const sync_args[] = {"--restart", "--full", NULL};
	static const char *const status_args[] = {"-n", "--json", NULL};
	static const char *const no_args[] = {NULL};
	const char *const *allowed = no_args;
	int with_value = 0;
	if (strcmp(c->command, "sync") == 0)
		allowed = sync_args;
	else if (strcmp(c->command, "status") == 0) {
		allowed = status_args;
		with_value = 1;
	} else if (strcmp(c->command, "migrate") != 0 && strcmp(c->command, "check") != 0) {
		report_unknown_command(c->command);
		return EXIT_USAGE;
	}
	bool sync = strcmp(c->command, "sync") == 0;
	time_t started = time(NULL);
	int a = check_args(c, allowed, with_value);
	if (a > 0)
		return EXIT_OK;
	cfg config = {0};
	int rc;
	if (a < 0 || load_config(c, &config) != 0)
		rc = EXIT_USAGE;
	else if (sync)
		rc = cmd_sync(c, &config, started);
	else if (strcmp(c->command, "migrate") == 0)
		rc = cmd_migrate(&config);
	else if (strcmp(c->command, "status") == 0)
		rc = cmd_status(c, &config);
	else
		rc = cmd_check(&config);
	/* A sync that cannot start (a bad argument, config or secret) still
	 * leaves its mark in the metrics file, when it knows where that is:
	 * --metrics-file, or the config once read (config.metrics_file is set
	 * even when only --log-format was wrong, and NULL when the config could
	 * not be read). A sync that started wrote its own. */
	if (sync && rc == EXIT_USAGE)
		sync_metrics(c, &config, NULL, EXIT_USAGE, started);
	cfg_free(&config);
	return rc;
}

/* The log format of the command line, before the config is read: errors
 * found from then on (a bad argument, a config that does not load) are
 * written in it. An invalid value is text here; load_config reports it. */
static log_format cli_log_format(const cli *c)
{
	log_format format = LOG_FORMAT_TEXT;
	if (c->log_format && log_format_parse(c->log_format, &format) != 0)
		format = LOG_FORMAT_TEXT;
	return format;
}

/* What a command printed must have reached stdout: `status --json` into a
 * full disk or a closed pipe is an error, not an empty success. A sync's
 * own outcome is recorded apart, so its exit code stays what it was. */
static int output_written(const cli *c, int rc)
{
	if (fflush(stdout) == 0 && !ferror(stdout))
		return rc;
	if (c->command && strcmp(c->command, "sync") == 0)
		return rc;
	fprintf(stderr, "bloomsync: cannot write the output: %s\n", strerror(errno));
	return rc == EXIT_OK ? EXIT_RUN_FAILED : rc;
}

static int run_main(cli *c, int argc, char **argv);

int main(int argc, char **argv)
{
	cli c = {0};
	int rc = run_main(&c, argc, argv);
	return output_written(&c, rc);
}

static int run_main(cli *c, int argc, char **argv)
{
	log_init(LOG_INFO, LOG_FORMAT_TEXT);
	if (parse_cli(argc, argv, c) != 0) {
		/* a sync that cannot start leaves its mark in the metrics file
		 * given by --metrics-file (the config is not read yet), whichever
		 * argument was wrong (see run_command) */
		if (c->command && strcmp(c->command, "sync") == 0)
			sync_metrics(c, NULL, NULL, EXIT_USAGE, time(NULL));
		return EXIT_USAGE;
	}
	log_init(LOG_INFO, cli_log_format(c));
	log_format format;
	bool plain = strcmp(c->command, "help") == 0 || strcmp(c->command, "version") == 0;
	if (plain && c->log_format && log_format_parse(c->log_format, &format) != 0) {
		/* the other commands say so once they know the config's format */
		fprintf(stderr, "bloomsync: --log-format: expected text or json, got '%s'\n", c->log_format);
		return EXIT_USAGE;
	}
	if (strcmp(c->command, "help") == 0)
		return cmd_help(c);
	if (strcmp(c->command, "version") == 0) {
		static const char *const no_args[] = {NULL};
		int help = check_args(c, no_args, 0);
		if (help != 0)
			return help > 0 ? EXIT_OK : EXIT_USAGE;
		printf("bloomsync %s (%s)\n", BLOOMSYNC_VERSION, curl_version());
		return EXIT_OK;
	}
	install_signals();
	curl_global_init(CURL_GLOBAL_DEFAULT);
	int rc = run_command(c);
	curl_global_cleanup();
	log_shutdown();
	return rc;
}
