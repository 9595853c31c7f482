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

typedef struct cfg {
	/* api */
	char *base_url;       /* default "https://app.bloomgrowth.com/api/v1", no trailing slash */
	char *key;            /* resolved key: BG_API_KEY env > api.key > contents of api.key_file (trimmed); NULL if none */
	const char *key_source; /* "environment BG_API_KEY" | "api.key" | "api.key_file" | NULL (static string) */
	int concurrency;      /* 1..1024, default 8 */
	double rate_limit;    /* >= 0, default 10.0; 0 = no limit */
	int timeout_ms;       /* 100..600000, default 30000 */
	int max_retries;      /* 0..100, default 6 */
	/* postgres */
	char *conninfo;       /* default "dbname=bloom" */
	char *schema;         /* default "bloom"; must be a plain identifier [a-z_][a-z0-9_]* up to 63 bytes */
	int batch_size;       /* 1..100000, default 500 */
	/* log */
	log_level log_level;  /* default info */
	log_format log_format;/* default text */
	/* top level */
	char *metrics_file;   /* optional, NULL when unset */
	/* where it came from */
	char *path;           /* the file read (owned copy) */
} cfg;

typedef struct cfg_error {
	char msg[512]; /* "FILE:LINE: what is wrong" (or "FILE: ..." when no line applies) */
} cfg_error;

/* Fills *out with the defaults (every string owned, as after cfg_load). */
void cfg_defaults(cfg *out);

/* Reads and validates the file at path (defaults fill what is absent), then
 * applies environment overrides (BG_API_KEY). Rejects a missing or unreadable
 * file, syntax errors, unknown settings, wrong types and out-of-range values.
 * Warns (log_warn) when the file holds a key and is readable by group/others.
 * On error returns -1, fills err, and leaves *out freed (cfg_free-able). */
int cfg_load(const char *path, cfg *out, cfg_error *err) __attribute__((warn_unused_result));

/* Frees every owned string; safe on a zeroed or already-freed cfg. */
void cfg_free(cfg *c);

#endif
