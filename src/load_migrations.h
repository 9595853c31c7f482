/* load_migrations.h — the SQL migrations embedded at build time (sql/embed.sh). */
#ifndef BLOOMSYNC_SRC_LOAD_MIGRATIONS_H
#define BLOOMSYNC_SRC_LOAD_MIGRATIONS_H

#include <stddef.h>

typedef struct load_migration {
	const char *version; /* file name without ".sql", e.g. "001_init" */
	const char *sql;     /* run with search_path set to the mirror schema */
	const char *checksum; /* md5 of sql, lowercase hex (recorded in schema_migrations) */
} load_migration;

extern const load_migration load_migrations[];
extern const size_t load_migrations_count;

#endif
