/* config.h — the configuration file (libconfig) and its environment overrides.
 *
 * Settings are described by one table in config.c (name, type, default,
 * range, description); parsing, validation and defaults come from it.
 * Errors are reported as "FILE:LINE: what is wrong" naming the setting. */
#ifndef BLOOMSYNC_SRC_CONFIG_H
#define BLOOMSYNC_SRC_CONFIG_H

#include <stdbool.h>
#include <stddef.h>

#include "log.h"

#define CFG_DEFAULT_PATH "/etc/bloomsync/bloomsync.conf"
#define CFG_WARNINGS_MAX 8 /* more than one load can raise (three at most) */

/* The streams of sync.streams, one bit each. What each name covers:
 *   users      search/all (the users table)
 *   meetings   the users' meeting lists, each meeting's detail and attendees
 *   todos      the meetings' and the users' todo lists
 *   scorecard  measurables, meeting_measurables and scores
 *   goals      goals and goal_meetings (rocks/user, archivedrocks/user)
 *   issues     the meetings' and the users' issue lists
 *   headlines  the meetings' and the users' headline lists
 * users and meetings are always on: every other stream is found through
 * them, so leaving them out of the list changes nothing. */
typedef enum {
	CFG_STREAM_USERS = 1u << 0,
	CFG_STREAM_MEETINGS = 1u << 1,
	CFG_STREAM_TODOS = 1u << 2,
	CFG_STREAM_SCORECARD = 1u << 3,
	CFG_STREAM_GOALS = 1u << 4,
	CFG_STREAM_ISSUES = 1u << 5,
	CFG_STREAM_HEADLINES = 1u << 6,
} cfg_stream;

#define CFG_STREAMS_ALL 0x7Fu
#define CFG_STREAMS_ALWAYS (CFG_STREAM_USERS | CFG_STREAM_MEETINGS)

/* The bit of a stream name ("users", ..., "headlines"); 0 when unknown. */
unsigned cfg_stream_parse(const char *name);

/* The names of the streams whose bits are set, comma-separated, in the
 * order above ("users,meetings,todos"); truncated to len. */
void cfg_streams_format(unsigned streams, char *buf, size_t len);

typedef struct cfg {
	/* api */
	char *base_url;       /* default "https://app.bloomgrowth.com/api/v1", no trailing slash */
	char *key;            /* resolved key: BG_API_KEY env > api.key > contents of api.key_file (trimmed); NULL if
	                       * none, and NULL until cfg_read_secrets when it is to come from api.key_file */
	const char *key_source; /* "environment BG_API_KEY" | "api.key" | "api.key_file" | NULL (static string);
	                         * set by cfg_load whenever a key is configured, even one not read yet */
	char *key_file;       /* api.key_file, from the config's directory when relative; NULL when unset */
	int key_file_line;    /* its line, for messages; 0 when it is not where the key comes from (while
	                       * key is NULL, cfg_read_secrets has the file to read) */
	/* credentials, the alternative to a fixed key (see cfg_resolve_credentials in config.c):
	 * both set or both NULL; when a key is set too the key wins and these are NULL,
	 * even when only one of them was given */
	char *username;       /* BG_USERNAME env > api.username */
	char *password;       /* BG_PASSWORD env > api.password > contents of api.password_file; NULL until
	                       * cfg_read_secrets when it is to come from api.password_file */
	const char *password_source; /* "environment BG_PASSWORD" | "api.password" | "api.password_file" | NULL */
	char *password_file;  /* api.password_file, from the config's directory when relative; NULL when unset */
	int password_file_line; /* its line, for messages; 0 when it is not where the password comes from
	                         * (while password is NULL, cfg_read_secrets has the file to read) */
	char *token_url;      /* default "https://app.bloomgrowth.com/token" */
	char *token_cache;    /* token cache file, default "/var/lib/bloomsync/token"; relative: from the config's directory */
	int concurrency;      /* 1..1024, default 8 */
	double rate_limit;    /* >= 0, default 10.0; 0 = no limit */
	int timeout_ms;       /* 100..600000, default 30000 */
	int max_retries;      /* 0..100, default 6 */
	int page_size;        /* 0..100000, default 0: list endpoints answer whole arrays (the real API) */
	/* postgres */
	char *conninfo;       /* default "dbname=bloom" */
	char *schema;         /* default "bloom"; must be a plain identifier [a-z_][a-z0-9_]* up to 63 bytes */
	int batch_size;       /* 1..100000, default 500 */
	/* sync */
	unsigned streams;     /* cfg_stream bits; default CFG_STREAMS_ALL; always has CFG_STREAMS_ALWAYS */
	/* log */
	log_level log_level;  /* default info */
	log_format log_format;/* default text */
	/* top level */
	char *metrics_file;   /* optional, NULL when unset; relative: from the config file's directory */
	/* where it came from */
	char *path;           /* the file read (owned copy) */
	/* what cfg_load found worth a warning, kept for cfg_log_warnings */
	char *warnings[CFG_WARNINGS_MAX]; /* owned, the first warning_count set */
	size_t warning_count;
} cfg;

typedef struct cfg_error {
	char msg[1024]; /* "FILE:LINE: what is wrong" (or "FILE: ..." when no line applies) */
} cfg_error;

/* Fills *out with the defaults (every string owned, as after cfg_load). */
void cfg_defaults(cfg *out);

/* Reads and validates the file at path (defaults fill what is absent), then
 * applies environment overrides (BG_API_KEY, BG_USERNAME, BG_PASSWORD).
 * Rejects a missing or unreadable file, syntax errors, unknown settings,
 * wrong types and out-of-range values, and a password without a username
 * (or the reverse) when no key is given. When a key and credentials (a
 * whole pair or half of one) are both given the key wins and the
 * credentials are dropped with a warning. Does not read api.key_file or
 * api.password_file (see cfg_read_secrets): migrate and status need no
 * secret, and a systemd credential exists only inside the service. Registers
 * the key and the password it has with log_add_secret. Warns when the file
 * holds a key or a password and is readable by group/others: the warnings
 * are kept in out->warnings, not logged (see cfg_log_warnings).
 * On error returns -1, fills err, and leaves *out freed (cfg_free-able). */
int cfg_load(const char *path, cfg *out, cfg_error *err) __attribute__((warn_unused_result));

/* Reads what a command that talks to the API needs and cfg_load left in
 * files: the key from api.key_file when that is where the key comes from
 * (not when BG_API_KEY or api.key wins), and the password from
 * api.password_file when credentials are used and it is where the password
 * comes from. Checks and registers them (log_add_secret) as cfg_load does;
 * a file others may read is logged at once (log_warn; call it after
 * cfg_log_warnings) and kept in c->warnings. Reading again is a no-op.
 * On error returns -1 with "FILE:LINE: api.key_file: cannot read PATH: why"
 * (or what is wrong with its content) in err; what could not be read stays
 * NULL. */
int cfg_read_secrets(cfg *c, cfg_error *err) __attribute__((warn_unused_result));

/* Logs (log_warn) the warnings cfg_load kept. cfg_load does not log them
 * itself because the log's level and format come from the very file it
 * reads: call this once log_init has applied them. */
void cfg_log_warnings(const cfg *c);

/* Frees every owned string and warning; safe on a zeroed or already-freed cfg. */
void cfg_free(cfg *c);

/* Where the password of url's userinfo ("http://user:PASSWORD@host/...")
 * is: false when it has none. */
bool cfg_url_password(const char *url, size_t *start, size_t *len);

#endif
