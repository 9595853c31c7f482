/* sim_auth.c — the simulated token endpoint (see sim_auth.h). */
#include "sim_auth.h"

#include <ctype.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <time.h>

#define TOKEN_HEX 40
#define FIELD_MAX 512

typedef struct issued {
	char token[TOKEN_HEX + 1];
	int64_t expires_ms; /* CLOCK_MONOTONIC */
} issued;

struct sim_auth {
	pthread_mutex_t lock;
	char *username;
	char *password;
	long ttl_s;
	issued *tokens;
	size_t n, cap;
};

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

sim_auth *sim_auth_new(const char *username, const char *password, long ttl_s)
{
	sim_auth *a = calloc(1, sizeof *a);

	if (a == NULL)
		return NULL;
	a->username = strdup(username);
	a->password = strdup(password);
	a->ttl_s = ttl_s;
	if (a->username == NULL || a->password == NULL) {
		sim_auth_free(a);
		return NULL;
	}
	pthread_mutex_init(&a->lock, NULL);
	return a;
}

void sim_auth_free(sim_auth *a)
{
	if (a == NULL)
		return;
	if (a->username != NULL && a->password != NULL)
		pthread_mutex_destroy(&a->lock);
	free(a->username);
	free(a->password);
	free(a->tokens);
	free(a);
}

static int hex_value(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	c = (char)tolower((unsigned char)c);
	return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* Decodes the form field name (matched case-insensitively) into out;
 * returns false when it is absent. */
static bool form_field(const char *body, size_t len, const char *name, char *out, size_t outlen)
{
	size_t nlen = strlen(name), i = 0;

	while (i < len) {
		size_t end = i;
		while (end < len && body[end] != '&')
			end++;
		if (end - i > nlen && body[i + nlen] == '=' && strncasecmp(body + i, name, nlen) == 0) {
			size_t o = 0;
			for (size_t k = i + nlen + 1; k < end && o + 1 < outlen; k++) {
				char c = body[k];
				if (c == '+') {
					c = ' ';
				} else if (c == '%' && k + 2 < end && hex_value(body[k + 1]) >= 0 &&
					   hex_value(body[k + 2]) >= 0) {
					c = (char)(hex_value(body[k + 1]) * 16 + hex_value(body[k + 2]));
					k += 2;
				}
				out[o++] = c;
			}
			out[o] = '\0';
			return true;
		}
		i = end + 1;
	}
	out[0] = '\0';
	return false;
}

static int new_token(char *out)
{
	unsigned char raw[TOKEN_HEX / 2];
	size_t got = 0;

	while (got < sizeof raw) {
		ssize_t n = getrandom(raw + got, sizeof raw - got, 0);
		if (n <= 0)
			return -1;
		got += (size_t)n;
	}
	for (size_t i = 0; i < sizeof raw; i++)
		snprintf(out + 2 * i, 3, "%02x", raw[i]);
	return 0;
}

/* Records a new token; returns it (a copy in out) or -1 when out of memory. */
static int issue(sim_auth *a, char *out)
{
	int rc = -1;

	if (new_token(out) != 0)
		return -1;
	pthread_mutex_lock(&a->lock);
	if (a->n == a->cap) {
		size_t cap = a->cap ? a->cap * 2 : 16;
		issued *grown = realloc(a->tokens, cap * sizeof *grown);
		if (grown == NULL)
			goto done;
		a->tokens = grown;
		a->cap = cap;
	}
	memcpy(a->tokens[a->n].token, out, TOKEN_HEX + 1);
	a->tokens[a->n].expires_ms = now_ms() + (int64_t)a->ttl_s * 1000;
	a->n++;
	rc = 0;
done:
	pthread_mutex_unlock(&a->lock);
	return rc;
}

int sim_auth_token(sim_auth *a, const char *body, size_t len, sim_buf *out)
{
	char grant[FIELD_MAX], user[FIELD_MAX], pass[FIELD_MAX];
	char token[TOKEN_HEX + 1];

	sim_buf_clear(out);
	form_field(body, len, "grant_type", grant, sizeof grant);
	if (strcmp(grant, "password") != 0) {
		sim_buf_adds(out, "{\"error\":\"unsupported_grant_type\"}");
		return 400;
	}
	if (!form_field(body, len, "userName", user, sizeof user) ||
	    !form_field(body, len, "password", pass, sizeof pass) || strcasecmp(user, a->username) != 0 ||
	    strcmp(pass, a->password) != 0) {
		sim_buf_adds(out, "{\"error\":\"invalid_grant\",\"error_description\":"
				  "\"The user name or password is incorrect.\"}");
		return 400;
	}
	if (issue(a, token) != 0) {
		sim_buf_adds(out, "{\"error\":\"server_error\"}");
		return 500;
	}
	sim_buf_addf(out, "{\"access_token\":\"%s\",\"token_type\":\"bearer\",\"expires_in\":%ld,\"userName\":",
		     token, a->ttl_s);
	sim_buf_add_jstrs(out, a->username);
	sim_buf_adds(out, "}");
	return sim_buf_ok(out) ? 200 : 500;
}

bool sim_auth_valid(sim_auth *a, const char *token)
{
	bool ok = false;
	int64_t now = now_ms();

	if (a == NULL || strlen(token) != TOKEN_HEX)
		return false;
	pthread_mutex_lock(&a->lock);
	for (size_t i = a->n; i-- > 0;)
		if (strcmp(a->tokens[i].token, token) == 0) {
			ok = now < a->tokens[i].expires_ms;
			break;
		}
	pthread_mutex_unlock(&a->lock);
	return ok;
}

long sim_auth_issued(sim_auth *a)
{
	long n;

	if (a == NULL)
		return 0;
	pthread_mutex_lock(&a->lock);
	n = (long)a->n;
	pthread_mutex_unlock(&a->lock);
	return n;
}

void sim_auth_tokens_json(sim_auth *a, sim_buf *out)
{
	sim_buf_adds(out, "{\"tokens\":[");
	if (a != NULL) {
		pthread_mutex_lock(&a->lock);
		for (size_t i = 0; i < a->n; i++)
			sim_buf_addf(out, "%s\"%s\"", i ? "," : "", a->tokens[i].token);
		pthread_mutex_unlock(&a->lock);
	}
	sim_buf_adds(out, "]}\n");
}
