/* config.c — the configuration file (libconfig) and its environment overrides.
 *
 * cfg_settings[] below is the one description of every setting: its path in
 * the file, type, where it lands in struct cfg, default, range, an optional
 * check, and a line of description. Defaults, parsing, type and range
 * checks, and unknown-setting detection all walk that table. Only the API
 * key needs logic of its own (api.key vs api.key_file vs BG_API_KEY), in
 * cfg_resolve_key(), and so do the username and password (environment,
 * password file, and which wins over the key), in cfg_resolve_credentials().
 * The files named by api.key_file and api.password_file are read later, by
 * cfg_read_secrets(), and only by the commands that talk to the API. */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <libconfig.h>
#include <libpq-fe.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#define CFG_FILE_MAX (64 * 1024) /* a config file larger than this is a mistake (the example is 8 KiB) */
#define CFG_RATE_LEAST 0.001     /* requests per second: one in about 17 minutes */
#define CFG_KEY_FILE_MAX (64 * 1024)
#define CFG_PATH_MAX 128
#define CFG_KEY_ENV "BG_API_KEY"
#define CFG_USER_ENV "BG_USERNAME"
#define CFG_PASSWORD_ENV "BG_PASSWORD"

/* CFG_PATH is a CFG_STRING naming a file, taken from the config file's
 * directory when relative (see cfg_conf_relative). */
typedef enum { CFG_STRING, CFG_PATH, CFG_INT, CFG_FLOAT, CFG_LEVEL, CFG_FORMAT, CFG_STREAMS } cfg_type;

/* Validates (and may normalise in place) a string value. On failure returns
 * -1 and writes what is wrong into why. */
typedef int (*cfg_check_fn)(char *value, char *why, size_t whylen);

typedef struct cfg_setting {
	const char *path;    /* "group.name" or "name" */
	cfg_type type;
	size_t offset;       /* into struct cfg */
	const char *def_str; /* default of CFG_STRING / CFG_PATH / CFG_LEVEL / CFG_FORMAT (NULL: unset) */
	double def_num;      /* default of CFG_INT / CFG_FLOAT */
	double min, max;     /* range of CFG_INT / CFG_FLOAT */
	cfg_check_fn check;  /* extra check of CFG_STRING / CFG_PATH, may be NULL */
	const char *desc;
} cfg_setting;

static int cfg_check_url(char *value, char *why, size_t whylen);
static int cfg_check_key(char *value, char *why, size_t whylen);
static int cfg_check_password(char *value, char *why, size_t whylen);
static int cfg_check_nonempty(char *value, char *why, size_t whylen);
static int cfg_check_schema(char *value, char *why, size_t whylen);
static int cfg_check_conninfo(char *value, char *why, size_t whylen);

#define F(field) offsetof(cfg, field)

static const cfg_setting cfg_settings[] = {
	{ "api.base_url", CFG_STRING, F(base_url), "https://app.bloomgrowth.com/api/v1", 0, 0, 0,
	  cfg_check_url, "base URL of the Bloom Growth API" },
	{ "api.key", CFG_STRING, F(key), NULL, 0, 0, 0, cfg_check_key,
	  "API key; " CFG_KEY_ENV " in the environment wins" },
	{ "api.key_file", CFG_PATH, F(key_file), NULL, 0, 0, 0, cfg_check_nonempty,
	  "file holding the API key (instead of api.key)" },
	{ "api.username", CFG_STRING, F(username), NULL, 0, 0, 0, cfg_check_key,
	  "user to log in as (instead of a key); " CFG_USER_ENV " in the environment wins" },
	{ "api.password", CFG_STRING, F(password), NULL, 0, 0, 0, cfg_check_password,
	  "password of api.username; " CFG_PASSWORD_ENV " in the environment wins" },
	{ "api.password_file", CFG_PATH, F(password_file), NULL, 0, 0, 0, cfg_check_nonempty,
	  "file holding the password (instead of api.password)" },
	{ "api.token_url", CFG_STRING, F(token_url), "https://app.bloomgrowth.com/token", 0, 0, 0, cfg_check_url,
	  "where to log in with api.username and api.password" },
	{ "api.token_cache", CFG_PATH, F(token_cache), "/var/lib/bloomsync/token", 0, 0, 0, cfg_check_nonempty,
	  "file caching the token obtained by logging in (mode 0600)" },
	{ "api.concurrency", CFG_INT, F(concurrency), NULL, 8, 1, 1024, NULL,
	  "requests in flight at most" },
	{ "api.rate_limit", CFG_FLOAT, F(rate_limit), NULL, 10.0, 0, 100000, NULL,
	  "requests per second at most; 0 = no limit" },
	{ "api.timeout_ms", CFG_INT, F(timeout_ms), NULL, 30000, 100, 600000, NULL,
	  "longest silence of one request, in milliseconds" },
	{ "api.max_retries", CFG_INT, F(max_retries), NULL, 6, 0, 100, NULL,
	  "retries of a failed request before its unit fails" },
	{ "api.page_size", CFG_INT, F(page_size), NULL, 0, 0, 100000, NULL,
	  "ask list endpoints for pages of this many items (page, pageSize); 0 = whole arrays, as the v1 API answers" },
	{ "postgres.conninfo", CFG_STRING, F(conninfo), "dbname=bloom", 0, 0, 0, cfg_check_conninfo,
	  "libpq conninfo string or URI; PG* variables apply" },
	{ "postgres.schema", CFG_STRING, F(schema), "bloom", 0, 0, 0, cfg_check_schema,
	  "schema that holds the mirror" },
	{ "postgres.batch_size", CFG_INT, F(batch_size), NULL, 500, 1, 100000, NULL,
	  "rows per transaction" },
	{ "sync.streams", CFG_STREAMS, F(streams), NULL, CFG_STREAMS_ALL, 0, 0, NULL,
	  "users, meetings, todos, scorecard, goals, issues, headlines" },
	{ "log.level", CFG_LEVEL, F(log_level), "info", 0, 0, 0, NULL,
	  "error | warn | info | debug" },
	{ "log.format", CFG_FORMAT, F(log_format), "text", 0, 0, 0, NULL, "text | json" },
	{ "metrics_file", CFG_PATH, F(metrics_file), NULL, 0, 0, 0, cfg_check_nonempty,
	  "Prometheus textfile written after each run (optional)" },
};

#undef F

#define CFG_SETTING_COUNT (sizeof cfg_settings / sizeof cfg_settings[0])

/* State of one cfg_load call. */
typedef struct cfg_ctx {
	const char *path; /* the file, for messages */
	const char *text; /* its contents, to double-check integers */
	cfg *out;
	cfg_error *err;
} cfg_ctx;

/* ---- small helpers ---- */

/* True when s is held in a string field of struct cfg. */
static bool cfg_has_str_field(const cfg_setting *s)
{
	return s->type == CFG_STRING || s->type == CFG_PATH;
}

static char **cfg_str_field(cfg *c, const cfg_setting *s)
{
	return (char **)(void *)((char *)c + s->offset);
}

static void *cfg_field(cfg *c, const cfg_setting *s)
{
	return (char *)c + s->offset;
}

/* Writes "FILE:LINE: message" (or "FILE: message" when line is 0). */
static void cfg_fail(cfg_ctx *ctx, int line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void cfg_fail(cfg_ctx *ctx, int line, const char *fmt, ...)
{
	char *msg = ctx->err->msg;
	size_t cap = sizeof ctx->err->msg;
	va_list ap;
	va_start(ap, fmt);
	int n = line > 0 ? snprintf(msg, cap, "%s:%d: ", ctx->path, line)
			 : snprintf(msg, cap, "%s: ", ctx->path);
	/* When the path alone fills the buffer, keep what fits. */
	if (n >= 0 && (size_t)n < cap)
		vsnprintf(msg + n, cap - (size_t)n, fmt, ap);
	va_end(ap);
}

/* Keeps a warning for cfg_log_warnings (see config.h). One that cannot be
 * kept (out of memory, or past CFG_WARNINGS_MAX) is logged at once: early,
 * maybe in the wrong format, but not lost. */
static void cfg_warn(cfg_ctx *ctx, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void cfg_warn(cfg_ctx *ctx, const char *fmt, ...)
{
	cfg *out = ctx->out;
	char *msg;
	va_list ap;
	va_start(ap, fmt);
	int n = vasprintf(&msg, fmt, ap);
	va_end(ap);
	if (n < 0) {
		log_warn("%s: a warning was dropped: out of memory", ctx->path);
		return;
	}
	if (out->warning_count == CFG_WARNINGS_MAX) {
		log_warn("%s", msg);
		free(msg);
		return;
	}
	out->warnings[out->warning_count++] = msg;
}

/* Logs the kept warnings from the first-th on. */
static void cfg_log_warnings_from(const cfg *c, size_t first)
{
	for (size_t i = first; i < c->warning_count; i++)
		log_warn("%s", c->warnings[i]);
}

void cfg_log_warnings(const cfg *c)
{
	cfg_log_warnings_from(c, 0);
}

static const char *cfg_type_name(int config_type)
{
	switch (config_type) {
	case CONFIG_TYPE_GROUP: return "a group";
	case CONFIG_TYPE_INT:
	case CONFIG_TYPE_INT64: return "an integer";
	case CONFIG_TYPE_FLOAT: return "a number";
	case CONFIG_TYPE_STRING: return "a string";
	case CONFIG_TYPE_BOOL: return "a boolean";
	case CONFIG_TYPE_ARRAY: return "an array";
	case CONFIG_TYPE_LIST: return "a list";
	default: return "an unknown type";
	}
}

static const char *cfg_expected_name(cfg_type type)
{
	switch (type) {
	case CFG_INT: return "an integer";
	case CFG_FLOAT: return "a number";
	case CFG_STREAMS: return "a list of strings";
	default: return "a string";
	}
}

static const char *const cfg_stream_names[] = {
	"users", "meetings", "todos", "scorecard", "goals", "issues", "headlines",
};

unsigned cfg_stream_parse(const char *name)
{
	for (size_t i = 0; i < sizeof cfg_stream_names / sizeof cfg_stream_names[0]; i++)
		if (strcmp(cfg_stream_names[i], name) == 0)
			return 1u << i;
	return 0;
}

void cfg_streams_format(unsigned streams, char *buf, size_t len)
{
	size_t used = 0;
	if (len)
		buf[0] = '\0';
	for (size_t i = 0; i < sizeof cfg_stream_names / sizeof cfg_stream_names[0]; i++) {
		if (!(streams & (1u << i)) || used >= len)
			continue;
		int n = snprintf(buf + used, len - used, "%s%s", used ? "," : "", cfg_stream_names[i]);
		used += n > 0 ? (size_t)n : 0;
	}
}

static const cfg_setting *cfg_find(const char *path)
{
	for (size_t i = 0; i < CFG_SETTING_COUNT; i++) {
		if (strcmp(cfg_settings[i].path, path) == 0)
			return &cfg_settings[i];
	}
	return NULL;
}

/* True when some setting lives inside the group at path. */
static bool cfg_is_group(const char *path)
{
	size_t len = strlen(path);
	for (size_t i = 0; i < CFG_SETTING_COUNT; i++) {
		if (strncmp(cfg_settings[i].path, path, len) == 0 && cfg_settings[i].path[len] == '.')
			return true;
	}
	return false;
}

/* ---- checks of string values ---- */

static bool cfg_has_control(const char *value, bool space_too)
{
	for (const unsigned char *p = (const unsigned char *)value; *p; p++) {
		if (*p < 0x20 || *p == 0x7F || (space_too && *p == ' '))
			return true;
	}
	return false;
}

/* Registers the password of a URL's userinfo (http://user:PASSWORD@host/)
 * as a secret, as cfg_conninfo_secrets does for a conninfo's: whatever
 * prints the URL through the log, or through log_redact (check does), shows
 * "[redacted]" in its place. */
bool cfg_url_password(const char *url, size_t *start, size_t *len)
{
	const char *authority = strstr(url, "://");
	if (!authority)
		return false;
	authority += 3;
	size_t alen = strcspn(authority, "/?#");
	const char *at = NULL;
	for (const char *p = authority; p < authority + alen; p++)
		if (*p == '@')
			at = p; /* the last one: a password may hold an unencoded '@' */
	const char *colon = at ? memchr(authority, ':', (size_t)(at - authority)) : NULL;
	if (!colon || colon + 1 == at)
		return false;
	*start = (size_t)(colon + 1 - url);
	*len = (size_t)(at - colon - 1);
	return true;
}

static void cfg_url_secrets(const char *url)
{
	size_t start, len;
	if (!cfg_url_password(url, &start, &len))
		return;
	char *password = strndup(url + start, len);
	log_add_secret(password);
	if (password)
		explicit_bzero(password, strlen(password));
	free(password);
}

static int cfg_check_url(char *value, char *why, size_t whylen)
{
	size_t scheme = 0;
	cfg_url_secrets(value); /* before the value can be quoted in an error */
	if (strncasecmp(value, "https://", 8) == 0)
		scheme = 8;
	else if (strncasecmp(value, "http://", 7) == 0)
		scheme = 7;
	size_t len = strlen(value);
	while (len > scheme && value[len - 1] == '/')
		len--;
	if (scheme == 0 || len == scheme || cfg_has_control(value, true)) {
		snprintf(why, whylen, "must be an http:// or https:// URL (got \"%.100s\")", value);
		return -1;
	}
	value[len] = '\0';
	return 0;
}

/* A key or password: never echoed in the message, it is a secret. A key
 * goes into an HTTP header, so no spaces either; a password may hold them. */
static int cfg_check_secret(const char *value, bool spaces_ok, char *why, size_t whylen)
{
	if (value[0] == '\0') {
		snprintf(why, whylen, "must not be empty");
		return -1;
	}
	if (cfg_has_control(value, !spaces_ok)) {
		snprintf(why, whylen, spaces_ok ? "must not contain control characters"
						: "must not contain spaces or control characters");
		return -1;
	}
	return 0;
}

static int cfg_check_key(char *value, char *why, size_t whylen)
{
	if (cfg_check_secret(value, false, why, whylen) != 0)
		return -1;
	/* a key is ASCII: anything else is a copying mistake the API would
	 * only answer with 401 */
	for (const unsigned char *p = (const unsigned char *)value; *p; p++)
		if (*p >= 0x80) {
			snprintf(why, whylen, "must hold ASCII characters only (is it the right file or text?)");
			return -1;
		}
	return 0;
}

static int cfg_check_password(char *value, char *why, size_t whylen)
{
	return cfg_check_secret(value, true, why, whylen);
}

/* cppcheck-suppress constParameter ; the signature is cfg_check_fn's */
static int cfg_check_nonempty(char *value, char *why, size_t whylen)
{
	if (value[0] == '\0') {
		snprintf(why, whylen, "must not be empty (leave the setting out instead)");
		return -1;
	}
	return 0;
}

static int cfg_check_schema(char *value, char *why, size_t whylen)
{
	size_t len = strlen(value);
	bool ok = len >= 1 && len <= 63 && (islower((unsigned char)value[0]) || value[0] == '_');
	for (size_t i = 1; ok && i < len; i++) {
		unsigned char c = (unsigned char)value[i];
		ok = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_';
	}
	if (!ok) {
		snprintf(why, whylen,
			 "must be a plain identifier: a-z, 0-9 and _, not starting with a digit, "
			 "at most 63 bytes (got \"%.80s\")", value);
		return -1;
	}
	if (strncmp(value, "pg_", 3) == 0) {
		snprintf(why, whylen, "names starting with pg_ are reserved by PostgreSQL (got \"%s\")",
			 value);
		return -1;
	}
	return 0;
}

/* A conninfo libpq cannot parse would come back inside libpq's error
 * message, password and all, at every command: refuse it here, without
 * echoing any of it. */
static int cfg_check_conninfo(char *value, char *why, size_t whylen)
{
	char *parse_error = NULL;
	PQconninfoOption *opts = PQconninfoParse(value, &parse_error);
	PQfreemem(parse_error); /* it may quote the string */
	if (!opts) {
		snprintf(why, whylen,
			 "not a libpq connection string or URI (key=value pairs, or postgresql://...); "
			 "the value is not shown, it may hold a password");
		return -1;
	}
	PQconninfoFree(opts);
	return 0;
}

/* Registers the password a conninfo holds (if any) as a secret, so that
 * no log line or error message can carry it. */
static void cfg_conninfo_secrets(const char *conninfo)
{
	PQconninfoOption *opts = PQconninfoParse(conninfo, NULL);
	for (PQconninfoOption *o = opts; o && o->keyword; o++)
		if (strcmp(o->keyword, "password") == 0 && o->val)
			log_add_secret(o->val);
	PQconninfoFree(opts);
}

/* ---- defaults ---- */

void cfg_defaults(cfg *out)
{
	memset(out, 0, sizeof *out);
	for (size_t i = 0; i < CFG_SETTING_COUNT; i++) {
		const cfg_setting *s = &cfg_settings[i];
		switch (s->type) {
		case CFG_STRING:
		case CFG_PATH:
			*cfg_str_field(out, s) = s->def_str ? strdup(s->def_str) : NULL;
			break;
		case CFG_INT:
			*(int *)cfg_field(out, s) = (int)s->def_num;
			break;
		case CFG_FLOAT:
			*(double *)cfg_field(out, s) = s->def_num;
			break;
		case CFG_LEVEL:
			if (log_level_parse(s->def_str, (log_level *)cfg_field(out, s)) != 0)
				*(log_level *)cfg_field(out, s) = LOG_INFO;
			break;
		case CFG_FORMAT:
			if (log_format_parse(s->def_str, (log_format *)cfg_field(out, s)) != 0)
				*(log_format *)cfg_field(out, s) = LOG_FORMAT_TEXT;
			break;
		case CFG_STREAMS:
			*(unsigned *)cfg_field(out, s) = (unsigned)s->def_num;
			break;
		}
	}
}

/* True when every string that has a default got one (strdup can fail). */
static bool cfg_defaults_complete(cfg *c)
{
	for (size_t i = 0; i < CFG_SETTING_COUNT; i++) {
		const cfg_setting *s = &cfg_settings[i];
		if (cfg_has_str_field(s) && s->def_str && !*cfg_str_field(c, s))
			return false;
	}
	return true;
}

void cfg_free(cfg *c)
{
	if (!c)
		return;
	if (c->password)
		explicit_bzero(c->password, strlen(c->password));
	for (size_t i = 0; i < CFG_SETTING_COUNT; i++) {
		const cfg_setting *s = &cfg_settings[i];
		if (cfg_has_str_field(s)) {
			char **field = cfg_str_field(c, s);
			free(*field);
			*field = NULL;
		}
	}
	free(c->path);
	c->path = NULL;
	for (size_t i = 0; i < c->warning_count; i++) {
		free(c->warnings[i]);
		c->warnings[i] = NULL;
	}
	c->warning_count = 0;
	c->key_source = NULL;
	c->password_source = NULL;
	c->key_file_line = 0; /* nothing left for cfg_read_secrets to read */
	c->password_file_line = 0;
}

/* ---- reading the file ---- */

/* Reads the whole file at path into a malloc'd NUL-terminated buffer and its
 * status into *st. On error returns NULL with the reason in errno. */
static char *cfg_slurp(const char *path, size_t max, struct stat *st)
{
	char *buf = NULL;
	/* not blocking in open: a FIFO no one writes to would hold it (and a
	 * sync) for ever; once open, reads block again, so a pipe with a
	 * writer (-c <(...)) is read whole, and one without reads as empty */
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
	if (fd < 0)
		return NULL;
	if (fstat(fd, st) != 0)
		goto fail;
	if (S_ISDIR(st->st_mode)) {
		errno = EISDIR;
		goto fail;
	}
	int flags = fcntl(fd, F_GETFL);
	if (flags < 0 || fcntl(fd, F_SETFL, flags & ~O_NONBLOCK) < 0)
		goto fail;
	size_t cap = max + 1, len = 0;
	buf = malloc(cap + 1);
	if (!buf)
		goto fail;
	for (;;) {
		ssize_t n = read(fd, buf + len, cap - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			goto fail;
		if (n == 0)
			break;
		len += (size_t)n;
		if (len > max) {
			errno = EFBIG;
			goto fail;
		}
	}
	buf[len] = '\0';
	if (memchr(buf, '\0', len)) {
		errno = EILSEQ;
		goto fail;
	}
	close(fd);
	return buf;
fail: {
	int saved = errno;
	free(buf);
	close(fd);
	errno = saved;
	return NULL;
}
}

/* ---- scanning the text ----
 *
 * libconfig 1.5 silently wraps integers that do not fit in 32 bits
 * (4294967297 reads as 1), so the value it gives must be checked against
 * what the file says; its "duplicate setting name" error does not say
 * which; and it reads @include'd files on its own, which would escape the
 * checks made here on the one file read. A setting's value may sit behind
 * comments and line breaks, and its name may also appear in a string or a
 * comment, so this is a small scanner of libconfig's syntax (comments,
 * strings, names, punctuation) that knows which setting each value belongs
 * to, rather than a search of the setting's line. It never judges the
 * syntax: libconfig does that. */

#define CFG_NAME_CHARS "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-*"
#define CFG_NUMBER_CHARS "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-+."
#define CFG_SCAN_DEPTH 32 /* our settings are two deep; deeper ones are unknown anyway */

typedef enum {
	CFG_TOK_END,
	CFG_TOK_NAME,   /* a setting's name, or a bare word as a value (true) */
	CFG_TOK_ASSIGN, /* = or : */
	CFG_TOK_OPEN,   /* { ( [ */
	CFG_TOK_CLOSE,  /* } ) ] */
	CFG_TOK_INCLUDE, /* @include */
	CFG_TOK_OTHER,  /* a string, a number, ; , and anything else */
} cfg_tok_kind;

typedef struct cfg_tok {
	cfg_tok_kind kind;
	const char *start; /* into the text */
	size_t len;
	int line;
} cfg_tok;

typedef struct cfg_lexer {
	const char *p;
	int line;
} cfg_lexer;

/* Moves lx->p forward to end, counting the line breaks passed. */
static void cfg_lex_advance(cfg_lexer *lx, const char *end)
{
	for (; lx->p < end; lx->p++)
		if (*lx->p == '\n')
			lx->line++;
}

/* Skips white space and comments: # and // to the end of the line, and
 * slash-star to star-slash. */
static void cfg_lex_blank(cfg_lexer *lx)
{
	for (;;) {
		const char *p = lx->p;
		if (*p && isspace((unsigned char)*p)) {
			cfg_lex_advance(lx, p + 1);
		} else if (*p == '#' || (p[0] == '/' && p[1] == '/')) {
			cfg_lex_advance(lx, p + strcspn(p, "\n"));
		} else if (p[0] == '/' && p[1] == '*') {
			const char *end = strstr(p + 2, "*/");
			cfg_lex_advance(lx, end ? end + 2 : p + strlen(p));
		} else {
			return;
		}
	}
}

/* The end of the string whose opening quote is at p: after its closing
 * quote, or at the end of the text when it has none. */
static const char *cfg_string_end(const char *p)
{
	for (p++; *p && *p != '"'; p++)
		if (*p == '\\' && p[1])
			p++;
	return *p ? p + 1 : p;
}

static cfg_tok cfg_lex(cfg_lexer *lx)
{
	cfg_lex_blank(lx);
	const char *p = lx->p;
	cfg_tok tok = { CFG_TOK_OTHER, p, 0, lx->line };
	const char *end = p + 1;
	if (*p == '\0') {
		tok.kind = CFG_TOK_END;
		end = p;
	} else if (*p == '"') {
		end = cfg_string_end(p);
	} else if (isalpha((unsigned char)*p) || *p == '*') {
		tok.kind = CFG_TOK_NAME;
		end = p + strspn(p, CFG_NAME_CHARS);
	} else if (isdigit((unsigned char)*p) || *p == '-' || *p == '+' || *p == '.') {
		end = p + strspn(p, CFG_NUMBER_CHARS);
	} else if (*p == '@' && strncmp(p + 1, "include", 7) == 0) {
		tok.kind = CFG_TOK_INCLUDE;
		end = p + 8;
	} else if (*p == '=' || *p == ':') {
		tok.kind = CFG_TOK_ASSIGN;
	} else if (strchr("{([", *p)) {
		tok.kind = CFG_TOK_OPEN;
	} else if (strchr("})]", *p)) {
		tok.kind = CFG_TOK_CLOSE;
	}
	tok.len = (size_t)(end - p);
	cfg_lex_advance(lx, end);
	return tok;
}

/* One "name = value" (or "name : value") of the text. */
typedef struct cfg_assign {
	char path[CFG_PATH_MAX]; /* "api.concurrency"; a group inside a list adds no part */
	const char *name;        /* in the text */
	size_t name_len;
	size_t group;            /* the group that holds it: 1 + offset of its '{', 0 for the root */
	int line;                /* of the name */
	const char *value;       /* the value's first character, in the text */
} cfg_assign;

/* Called for each setting in file order; returns true to end the scan. */
typedef bool (*cfg_visit_fn)(const cfg_assign *a, void *arg);

/* An open group or list: the name it was assigned to (NULL inside a
 * list), and 1 + the offset of its opening bracket. */
typedef struct cfg_frame {
	const char *name;
	size_t name_len;
	size_t id;
} cfg_frame;

/* Writes the path of the setting name inside the open frames. */
static void cfg_scan_path(const cfg_frame *open, int depth, const cfg_tok *name, char *path, size_t len)
{
	size_t used = 0;
	path[0] = '\0';
	for (int i = 0; i <= depth; i++) {
		const char *part = i < depth ? open[i].name : name->start;
		size_t part_len = i < depth ? open[i].name_len : name->len;
		if (!part)
			continue;
		int n = snprintf(path + used, len - used, "%s%.*s", used ? "." : "", (int)part_len, part);
		if (n < 0 || (size_t)n >= len - used)
			return; /* truncated: longer than any path of ours, it matches none */
		used += (size_t)n;
	}
}

/* Calls visit for each setting of text, in file order, until it returns
 * true. Stops at nesting deeper than CFG_SCAN_DEPTH. */
static void cfg_scan(const char *text, cfg_visit_fn visit, void *arg)
{
	cfg_lexer lx = { text, 1 };
	cfg_frame open[CFG_SCAN_DEPTH];
	int depth = 0;
	cfg_tok tok = cfg_lex(&lx);
	while (tok.kind != CFG_TOK_END) {
		cfg_tok next = cfg_lex(&lx);
		cfg_frame frame = { NULL, 0, 0 };
		if (tok.kind == CFG_TOK_NAME && next.kind == CFG_TOK_ASSIGN) {
			cfg_tok value = cfg_lex(&lx);
			cfg_assign a = { .name = tok.start, .name_len = tok.len, .line = tok.line,
					 .group = depth ? open[depth - 1].id : 0, .value = value.start };
			cfg_scan_path(open, depth, &tok, a.path, sizeof a.path);
			if (visit(&a, arg))
				return;
			frame = (cfg_frame){ tok.start, tok.len, 0 };
			tok = value;
			next = cfg_lex(&lx);
		}
		if (tok.kind == CFG_TOK_OPEN) {
			if (depth == CFG_SCAN_DEPTH)
				return;
			frame.id = (size_t)(tok.start - text) + 1;
			open[depth++] = frame;
		} else if (tok.kind == CFG_TOK_CLOSE && depth > 0) {
			depth--;
		}
		tok = next;
	}
}

typedef struct cfg_value_of {
	const char *path;  /* the setting looked for */
	const char *value; /* its value in the text, NULL until found */
} cfg_value_of;

static bool cfg_visit_value_of(const cfg_assign *a, void *arg)
{
	cfg_value_of *v = arg;
	if (strcmp(a->path, v->path) != 0)
		return false;
	v->value = a->value;
	return true;
}

/* Compares value, as libconfig read the integer setting at path, with the
 * literal the text holds; returns false when they differ (libconfig
 * wrapped it). A literal that is not found or not an integer is left to
 * libconfig, which parsed it. */
static bool cfg_int_literal_ok(const cfg_ctx *ctx, const char *path, long long value)
{
	cfg_value_of found = { path, NULL };
	cfg_scan(ctx->text, cfg_visit_value_of, &found);
	const char *v = found.value;
	if (!v)
		return true;
	const char *digits = (*v == '-' || *v == '+') ? v + 1 : v;
	int base = (digits[0] == '0' && (digits[1] == 'x' || digits[1] == 'X')) ? 16 : 10;
	errno = 0;
	char *end;
	long long literal = strtoll(v, &end, base);
	if (end == v)
		return true;
	return errno != ERANGE && literal == value;
}

/* The line of the first @include outside strings and comments; 0 when
 * there is none. Found here rather than with config_set_include_func,
 * which libconfig has only from 1.7 on. */
static int cfg_include_line(const char *text)
{
	cfg_lexer lx = { text, 1 };
	for (cfg_tok tok = cfg_lex(&lx); tok.kind != CFG_TOK_END; tok = cfg_lex(&lx))
		if (tok.kind == CFG_TOK_INCLUDE)
			return tok.line;
	return 0;
}

/* The first setting of a group with a given name. */
typedef struct cfg_first {
	size_t group;
	const char *name;
	size_t name_len;
	const char *found; /* its name in the text, NULL until found */
	int line;
} cfg_first;

static bool cfg_visit_first(const cfg_assign *a, void *arg)
{
	cfg_first *f = arg;
	if (a->group != f->group || a->name_len != f->name_len || memcmp(a->name, f->name, f->name_len) != 0)
		return false;
	f->found = a->name;
	f->line = a->line;
	return true;
}

/* Looks for the setting libconfig called a duplicate: on its error line,
 * the first one whose group already has a setting of that name. */
typedef struct cfg_dup {
	const char *text;
	int line;                /* libconfig's error line: that of the second name */
	char path[CFG_PATH_MAX]; /* found: the setting given twice */
	int first_line;          /* and where it was first given; 0 until found */
} cfg_dup;

static bool cfg_visit_dup(const cfg_assign *a, void *arg)
{
	cfg_dup *d = arg;
	if (a->line != d->line)
		return a->line > d->line;
	cfg_first first = { a->group, a->name, a->name_len, NULL, 0 };
	cfg_scan(d->text, cfg_visit_first, &first);
	if (first.found == a->name)
		return false;
	snprintf(d->path, sizeof d->path, "%s", a->path);
	d->first_line = first.line;
	return true;
}

/* Reports libconfig's parse error as "FILE:LINE: what", naming the setting
 * when libconfig found one given twice (its message does not). */
static void cfg_fail_parse(cfg_ctx *ctx, const config_t *conf)
{
	int line = config_error_line(conf);
	const char *what = config_error_text(conf);
	cfg_dup dup = { .text = ctx->text, .line = line };
	if (what && strcmp(what, "duplicate setting name") == 0)
		cfg_scan(ctx->text, cfg_visit_dup, &dup);
	if (dup.first_line > 0)
		cfg_fail(ctx, line, "%s: duplicate setting (first set on line %d)", dup.path, dup.first_line);
	else
		cfg_fail(ctx, line, "%s", what ? what : "cannot parse");
}

/* name, taken from the directory of the config file conf when relative.
 * The person writing the file has its directory in mind, not the working
 * directory of whatever starts bloomsync (cron's is $HOME or /). Returns
 * a malloc'd string, NULL when out of memory. */
static char *cfg_conf_relative(const char *conf, const char *name)
{
	const char *slash = strrchr(conf, '/');
	char *full;
	if (name[0] == '/' || !slash)
		return strdup(name);
	if (asprintf(&full, "%.*s/%s", (int)(slash - conf), conf, name) < 0)
		return NULL;
	return full;
}

/* ---- storing one setting ---- */

static int cfg_store_string(cfg_ctx *ctx, const cfg_setting *s, const config_setting_t *set,
			    int line)
{
	char why[300];
	char *value = strdup(config_setting_get_string(set));
	if (!value) {
		cfg_fail(ctx, line, "%s: out of memory", s->path);
		return -1;
	}
	if (s->check && s->check(value, why, sizeof why) != 0) {
		cfg_fail(ctx, line, "%s: %s", s->path, why);
		free(value);
		return -1;
	}
	if (s->type == CFG_PATH) {
		char *full = cfg_conf_relative(ctx->path, value);
		free(value);
		if (!full) {
			cfg_fail(ctx, line, "%s: out of memory", s->path);
			return -1;
		}
		value = full;
	}
	char **field = cfg_str_field(ctx->out, s);
	free(*field);
	*field = value;
	return 0;
}

static int cfg_store_number(cfg_ctx *ctx, const cfg_setting *s, const config_setting_t *set,
			    int line)
{
	int kind = config_setting_type(set);
	double value;
	if (kind == CONFIG_TYPE_FLOAT) {
		value = config_setting_get_float(set);
	} else {
		long long whole = config_setting_get_int64(set);
		if (!cfg_int_literal_ok(ctx, s->path, whole)) {
			cfg_fail(ctx, line, "%s: must be between %.0f and %.0f (got a number too large)",
				 s->path, s->min, s->max);
			return -1;
		}
		value = (double)whole;
	}
	if (!(value >= s->min && value <= s->max)) {
		if (kind == CONFIG_TYPE_FLOAT)
			cfg_fail(ctx, line, "%s: must be between %g and %g (got %g)", s->path, s->min,
				 s->max, value);
		else
			cfg_fail(ctx, line, "%s: must be between %.0f and %.0f (got %lld)", s->path,
				 s->min, s->max, config_setting_get_int64(set));
		return -1;
	}
	/* a rate (api.rate_limit, where 0 is no limit) so small that its wait
	 * between requests would pass what a timer can hold */
	if (s->type == CFG_FLOAT && s->min == 0 && value > 0 && value < CFG_RATE_LEAST) {
		cfg_fail(ctx, line, "%s: must be 0 (no limit) or at least %g (got %g)", s->path, CFG_RATE_LEAST, value);
		return -1;
	}
	if (s->type == CFG_INT)
		*(int *)cfg_field(ctx->out, s) = (int)value;
	else
		*(double *)cfg_field(ctx->out, s) = value;
	return 0;
}

static int cfg_store_enum(cfg_ctx *ctx, const cfg_setting *s, const config_setting_t *set,
			  int line)
{
	const char *name = config_setting_get_string(set);
	int rc;
	if (s->type == CFG_LEVEL)
		rc = log_level_parse(name, (log_level *)cfg_field(ctx->out, s));
	else
		rc = log_format_parse(name, (log_format *)cfg_field(ctx->out, s));
	if (rc != 0) {
		cfg_fail(ctx, line, "%s: must be one of %s (got \"%.80s\")", s->path, s->desc, name);
		return -1;
	}
	return 0;
}

/* sync.streams: an array or list of known stream names; users and
 * meetings are added whatever the list says (see config.h). */
static int cfg_store_streams(cfg_ctx *ctx, const cfg_setting *s, const config_setting_t *set, int line)
{
	unsigned streams = CFG_STREAMS_ALWAYS;
	int count = config_setting_length(set);
	for (int i = 0; i < count; i++) {
		const config_setting_t *elem = config_setting_get_elem(set, (unsigned)i);
		const char *name = config_setting_get_string(elem);
		unsigned bit = name ? cfg_stream_parse(name) : 0;
		if (!name) {
			cfg_fail(ctx, line, "%s: expected a list of strings, got %s in it", s->path,
				 cfg_type_name(config_setting_type(elem)));
			return -1;
		}
		if (!bit) {
			cfg_fail(ctx, line, "%s: unknown stream \"%.80s\" (known: %s)", s->path, name, s->desc);
			return -1;
		}
		streams |= bit;
	}
	*(unsigned *)cfg_field(ctx->out, s) = streams;
	return 0;
}

static bool cfg_type_fits(cfg_type want, int kind)
{
	switch (want) {
	case CFG_STREAMS:
		return kind == CONFIG_TYPE_ARRAY || kind == CONFIG_TYPE_LIST;
	case CFG_INT:
		return kind == CONFIG_TYPE_INT || kind == CONFIG_TYPE_INT64;
	case CFG_FLOAT:
		return kind == CONFIG_TYPE_INT || kind == CONFIG_TYPE_INT64 || kind == CONFIG_TYPE_FLOAT;
	default:
		return kind == CONFIG_TYPE_STRING;
	}
}

static int cfg_store(cfg_ctx *ctx, const cfg_setting *s, const config_setting_t *set)
{
	int line = (int)config_setting_source_line(set);
	int kind = config_setting_type(set);
	if (!cfg_type_fits(s->type, kind)) {
		cfg_fail(ctx, line, "%s: expected %s, got %s", s->path, cfg_expected_name(s->type),
			 cfg_type_name(kind));
		return -1;
	}
	switch (s->type) {
	case CFG_STRING:
	case CFG_PATH: return cfg_store_string(ctx, s, set, line);
	case CFG_INT:
	case CFG_FLOAT: return cfg_store_number(ctx, s, set, line);
	case CFG_STREAMS: return cfg_store_streams(ctx, s, set, line);
	default: return cfg_store_enum(ctx, s, set, line);
	}
}

/* Walks the settings in group (whose path is prefix, "" for the root) in
 * file order; stores known ones and rejects anything else. */
static int cfg_walk(cfg_ctx *ctx, const config_setting_t *group, const char *prefix)
{
	int count = config_setting_length(group);
	for (int i = 0; i < count; i++) {
		const config_setting_t *set = config_setting_get_elem(group, (unsigned)i);
		int line = (int)config_setting_source_line(set);
		int kind = config_setting_type(set);
		char path[CFG_PATH_MAX];
		snprintf(path, sizeof path, "%s%s%s", prefix, prefix[0] ? "." : "",
			 config_setting_name(set));
		const cfg_setting *s = cfg_find(path);
		if (s) {
			if (cfg_store(ctx, s, set) != 0)
				return -1;
		} else if (cfg_is_group(path)) {
			if (kind != CONFIG_TYPE_GROUP) {
				cfg_fail(ctx, line, "%s: expected a group, got %s", path,
					 cfg_type_name(kind));
				return -1;
			}
			if (cfg_walk(ctx, set, path) != 0)
				return -1;
		} else {
			cfg_fail(ctx, line, "unknown %s '%s'",
				 kind == CONFIG_TYPE_GROUP ? "group" : "setting", path);
			return -1;
		}
	}
	return 0;
}

/* ---- the API key ---- */

/* A file that holds a secret (api.key_file, api.password_file): read it
 * (its path was already taken from the config file's directory when
 * relative), trim it (a key loses surrounding white space; a password only
 * a final line break, since it may end in spaces), check it, and store it
 * in *dst. Warns when others may read the file; never prints the secret. */
typedef struct secret_file {
	const char *setting;  /* "api.key_file" */
	const char *what;     /* "key" */
	bool keep_spaces;     /* a password: trim line breaks only */
	int (*check)(char *value, char *why, size_t whylen);
} secret_file;

/* Trims a secret read from a file, in place: a key loses surrounding white
 * space, a password only its final line breaks (it may end in spaces).
 * Returns where it starts. */
static char *cfg_trim_secret(char *text, bool keep_spaces)
{
	char *start = text;
	/* a UTF-8 byte-order mark, as some Windows editors write */
	if (strncmp(start, "\xef\xbb\xbf", 3) == 0)
		start += 3;
	while (!keep_spaces && *start && isspace((unsigned char)*start))
		start++;
	size_t len = strlen(start);
	while (len > 0 && (keep_spaces ? (start[len - 1] == '\n' || start[len - 1] == '\r')
				       : isspace((unsigned char)start[len - 1]) != 0))
		start[--len] = '\0';
	return start;
}

static int cfg_read_secret_file(cfg_ctx *ctx, const char *full, int line, const secret_file *sf, char **dst)
{
	char *text = NULL;
	char why[200];
	struct stat st;
	int rc = -1;
	text = cfg_slurp(full, CFG_KEY_FILE_MAX, &st);
	if (!text) {
		cfg_fail(ctx, line, "%s: cannot read %s: %s", sf->setting, full, strerror(errno));
		goto done;
	}
	char *start = cfg_trim_secret(text, sf->keep_spaces);
	if (sf->check(start, why, sizeof why) != 0) {
		cfg_fail(ctx, line, "%s: the %s in %s %s", sf->setting, sf->what, full, why);
		goto done;
	}
	*dst = strdup(start);
	if (!*dst) {
		cfg_fail(ctx, line, "%s: out of memory", sf->setting);
		goto done;
	}
	if (st.st_mode & (S_IRGRP | S_IROTH))
		cfg_warn(ctx, "%s is readable by group or others (mode %04o) while it holds the api %s; "
			 "run chmod 600 on it", full, (unsigned)(st.st_mode & 07777), sf->what);
	rc = 0;
done:
	if (text)
		explicit_bzero(text, strlen(text));
	free(text);
	return rc;
}

/* Decides the key: BG_API_KEY (non-empty) > api.key > api.key_file. */
static int cfg_resolve_key(cfg_ctx *ctx, const config_t *conf, const struct stat *st)
{
	const config_setting_t *key = config_lookup(conf, "api.key");
	const config_setting_t *key_file = config_lookup(conf, "api.key_file");
	if (key && key_file) {
		const config_setting_t *later =
		    config_setting_source_line(key_file) > config_setting_source_line(key) ? key_file : key;
		cfg_fail(ctx, (int)config_setting_source_line(later),
			 "api.key and api.key_file are both set; keep one of them");
		return -1;
	}
	if (key && (st->st_mode & (S_IRGRP | S_IROTH)))
		cfg_warn(ctx, "%s is readable by group or others (mode %04o) while it holds api.key; "
			 "run chmod 600 on it, or use api.key_file or " CFG_KEY_ENV,
			 ctx->path, (unsigned)(st->st_mode & 07777));
	const char *env = getenv(CFG_KEY_ENV);
	if (env && env[0]) {
		char why[200];
		char *value = strdup(env);
		if (!value || cfg_check_key(value, why, sizeof why) != 0) {
			snprintf(ctx->err->msg, sizeof ctx->err->msg, "%s (environment): %s",
				 CFG_KEY_ENV, value ? why : "out of memory");
			free(value);
			return -1;
		}
		free(ctx->out->key);
		ctx->out->key = value;
		ctx->out->key_source = "environment " CFG_KEY_ENV;
		return 0;
	}
	if (key) {
		ctx->out->key_source = "api.key";
		return 0;
	}
	if (key_file) { /* read by cfg_read_secrets, when a command needs it */
		ctx->out->key_source = "api.key_file";
		ctx->out->key_file_line = (int)config_setting_source_line(key_file);
	}
	return 0;
}

/* ---- username and password ---- */

/* Replaces *field with a copy of the environment variable name when it is set
 * and not empty; returns 1 when it did, 0 when unset, -1 on a bad value. */
static int cfg_env_override(cfg_ctx *ctx, const char *name, cfg_check_fn check, char **field)
{
	const char *env = getenv(name);
	if (!env || !env[0])
		return 0;
	char why[200];
	char *value = strdup(env);
	if (!value || check(value, why, sizeof why) != 0) {
		snprintf(ctx->err->msg, sizeof ctx->err->msg, "%s (environment): %s", name,
			 value ? why : "out of memory");
		if (value)
			explicit_bzero(value, strlen(value));
		free(value);
		return -1;
	}
	if (*field)
		explicit_bzero(*field, strlen(*field));
	free(*field);
	*field = value;
	return 1;
}

static void cfg_drop_credentials(cfg *c)
{
	free(c->username);
	c->username = NULL;
	if (c->password)
		explicit_bzero(c->password, strlen(c->password));
	free(c->password);
	c->password = NULL;
	c->password_source = NULL;
}

/* A fixed key wins over credentials, complete or not: it is the more
 * explicit instruction (and what worked before credentials existed), so the
 * credentials are dropped with a warning naming them rather than failing
 * the run. user and pass say where each came from, NULL when absent. */
static void cfg_key_wins(cfg_ctx *ctx, const char *user, const char *pass)
{
	if (user && pass)
		cfg_warn(ctx, "%s: both an API key (from %s) and a username and password are set; the key is used "
			 "and the username and password are ignored", ctx->path, ctx->out->key_source);
	else
		cfg_warn(ctx, "%s: both an API key (from %s) and a %s (from %s, without a %s) are set; the key is "
			 "used and the %s is ignored", ctx->path, ctx->out->key_source, user ? "username" : "password",
			 user ? user : pass, user ? "password" : "username", user ? "username" : "password");
	cfg_drop_credentials(ctx->out);
}

/* Where the password comes from: BG_PASSWORD > api.password >
 * api.password_file; NULL when from nowhere. */
static const char *cfg_password_origin(int env_pass, const config_setting_t *pass, const config_setting_t *pass_file)
{
	if (env_pass)
		return "environment " CFG_PASSWORD_ENV;
	if (pass)
		return "api.password";
	return pass_file ? "api.password_file" : NULL;
}

/* A username without a password or the reverse (and no key): fails at the
 * line of the setting given (user, or pass_set, the password's setting), or
 * names the environment variable it came from. Returns -1. */
static int cfg_fail_half_credentials(cfg_ctx *ctx, const config_setting_t *user, const char *pass_from,
				     const config_setting_t *pass_set)
{
	if (pass_from && pass_set)
		cfg_fail(ctx, (int)config_setting_source_line(pass_set),
			 "%s: a password without a username; set api.username or " CFG_USER_ENV, pass_from);
	else if (pass_from)
		snprintf(ctx->err->msg, sizeof ctx->err->msg,
			 "%s (environment): a password without a username; set api.username or " CFG_USER_ENV,
			 CFG_PASSWORD_ENV);
	else if (user)
		cfg_fail(ctx, (int)config_setting_source_line(user),
			 "api.username: a username without a password; set api.password, api.password_file or "
			 CFG_PASSWORD_ENV);
	else
		snprintf(ctx->err->msg, sizeof ctx->err->msg,
			 "%s (environment): a username without a password; set api.password, "
			 "api.password_file or " CFG_PASSWORD_ENV, CFG_USER_ENV);
	return -1;
}

/* Decides the credentials: BG_USERNAME > api.username, and BG_PASSWORD >
 * api.password > api.password_file. A fixed key wins over them, complete or
 * not (see cfg_key_wins); without one, a username needs a password and the
 * reverse. */
static int cfg_resolve_credentials(cfg_ctx *ctx, const config_t *conf, const struct stat *st)
{
	const config_setting_t *user = config_lookup(conf, "api.username");
	const config_setting_t *pass = config_lookup(conf, "api.password");
	const config_setting_t *pass_file = config_lookup(conf, "api.password_file");
	cfg *out = ctx->out;
	if (pass && pass_file) {
		const config_setting_t *later =
		    config_setting_source_line(pass_file) > config_setting_source_line(pass) ? pass_file : pass;
		cfg_fail(ctx, (int)config_setting_source_line(later),
			 "api.password and api.password_file are both set; keep one of them");
		return -1;
	}
	if (pass && (st->st_mode & (S_IRGRP | S_IROTH)))
		cfg_warn(ctx, "%s is readable by group or others (mode %04o) while it holds api.password; "
			 "run chmod 600 on it, or use api.password_file or " CFG_PASSWORD_ENV,
			 ctx->path, (unsigned)(st->st_mode & 07777));
	int env_user = cfg_env_override(ctx, CFG_USER_ENV, cfg_check_key, &out->username);
	if (env_user < 0)
		return -1;
	int env_pass = cfg_env_override(ctx, CFG_PASSWORD_ENV, cfg_check_password, &out->password);
	if (env_pass < 0)
		return -1;
	const char *pass_from = cfg_password_origin(env_pass, pass, pass_file);
	if (out->key_source && (out->username || pass_from)) { /* a key, maybe still in its file */
		const char *user_from = env_user ? "environment " CFG_USER_ENV : "api.username";
		cfg_key_wins(ctx, out->username ? user_from : NULL, pass_from);
		return 0;
	}
	if (!out->username != !pass_from)
		return cfg_fail_half_credentials(ctx, user, pass_from, env_pass ? NULL : pass ? pass : pass_file);
	if (!out->username)
		return 0;
	if (!env_pass && !pass) /* read by cfg_read_secrets, when a command needs it */
		out->password_file_line = (int)config_setting_source_line(pass_file);
	out->password_source = pass_from;
	return 0;
}

/* ---- the secrets kept in files ---- */

int cfg_read_secrets(cfg *c, cfg_error *err)
{
	static const secret_file key_file = {"api.key_file", "key", false, cfg_check_key};
	static const secret_file password_file = {"api.password_file", "password", true, cfg_check_password};
	cfg_ctx ctx = { .path = c->path ? c->path : "(no file)", .out = c, .err = err };
	size_t logged = c->warning_count;
	int rc = 0;
	err->msg[0] = '\0';
	/* A file's line is set only when it is where the secret comes from (and
	 * its source says so already); the secret stays NULL until it is read. */
	if (c->key_file_line > 0 && !c->key) {
		rc = cfg_read_secret_file(&ctx, c->key_file, c->key_file_line, &key_file, &c->key);
		if (rc == 0)
			log_add_secret(c->key);
	}
	if (rc == 0 && c->password_file_line > 0 && !c->password) {
		rc = cfg_read_secret_file(&ctx, c->password_file, c->password_file_line, &password_file, &c->password);
		if (rc == 0)
			log_add_secret(c->password);
	}
	/* cfg_log_warnings ran long ago: log what reading the files found now */
	cfg_log_warnings_from(c, logged);
	return rc;
}

/* ---- loading ---- */

/* Parses text with libconfig and applies it; the config_t is the caller's.
 * @include is refused before libconfig can open the file it names: file
 * names and lines of messages, the 32-bit check and the check of who may
 * read a file holding a secret all concern this one file. */
static int cfg_apply(cfg_ctx *ctx, config_t *conf, const struct stat *st)
{
	int include = cfg_include_line(ctx->text);
	if (include > 0) {
		cfg_fail(ctx, include, "@include is not supported; put the settings in this file, "
				       "and a secret in api.key_file or api.password_file");
		return -1;
	}
	if (config_read_string(conf, ctx->text) != CONFIG_TRUE) {
		cfg_fail_parse(ctx, conf);
		return -1;
	}
	if (cfg_walk(ctx, config_root_setting(conf), "") != 0)
		return -1;
	if (cfg_resolve_key(ctx, conf, st) != 0)
		return -1;
	return cfg_resolve_credentials(ctx, conf, st);
}

/* Editors on Windows start UTF-8 files with a byte order mark, which
 * libconfig takes for a syntax error. It holds no line break, so skipping
 * it keeps every line number right. */
static const char *cfg_skip_bom(const char *text)
{
	return strncmp(text, "\xEF\xBB\xBF", 3) == 0 ? text + 3 : text;
}

int cfg_load(const char *path, cfg *out, cfg_error *err)
{
	cfg_ctx ctx = { .path = path, .out = out, .err = err };
	config_t conf;
	struct stat st;
	int rc = -1;
	err->msg[0] = '\0';
	cfg_defaults(out);
	config_init(&conf);
	char *text = cfg_slurp(path, CFG_FILE_MAX, &st);
	if (!text) {
		if (errno == EFBIG)
			cfg_fail(&ctx, 0, "cannot read: larger than %d bytes", CFG_FILE_MAX);
		else if (errno == EILSEQ)
			cfg_fail(&ctx, 0, "cannot read: contains a NUL byte");
		else
			cfg_fail(&ctx, 0, "cannot read: %s", strerror(errno));
		goto done;
	}
	ctx.text = cfg_skip_bom(text);
	out->path = strdup(path);
	if (!out->path || !cfg_defaults_complete(out)) {
		cfg_fail(&ctx, 0, "out of memory");
		goto done;
	}
	if (cfg_apply(&ctx, &conf, &st) != 0)
		goto done;
	log_add_secret(out->key);
	log_add_secret(out->password);
	cfg_conninfo_secrets(out->conninfo);
	rc = 0;
done:
	config_destroy(&conf);
	if (text) {
		/* The file may hold the key: do not leave it in freed memory. */
		explicit_bzero(text, strlen(text));
		free(text);
	}
	if (rc != 0)
		cfg_free(out);
	return rc;
}
