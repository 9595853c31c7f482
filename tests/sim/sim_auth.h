/* sim_auth.h — bloomsim's token endpoint (POST /Token, outside /api/v1, as
 * the real API has it): form-encoded grant_type=password&userName&password
 * answered with a random bearer token that lives --token-ttl-s seconds, or
 * 400 invalid_grant for a wrong username or password. Issued tokens are
 * accepted by the API endpoints until they expire (then 401).
 *
 * Thread-safe: the HTTP thread pool calls in concurrently. */
#ifndef BLOOMSIM_SIM_AUTH_H
#define BLOOMSIM_SIM_AUTH_H

#include <stdbool.h>
#include <stddef.h>

#include "sim_buf.h"

typedef struct sim_auth sim_auth;

/* Creates the endpoint for one user; strings are copied. Returns NULL on
 * allocation failure. */
sim_auth *sim_auth_new(const char *username, const char *password, long ttl_s);

/* Frees everything; NULL is a no-op. */
void sim_auth_free(sim_auth *a);

/* Answers a token request whose form body is body (len bytes): writes the
 * JSON answer into out (cleared first) and returns the HTTP status (200,
 * 400, or 500 when out of memory). */
int sim_auth_token(sim_auth *a, const char *body, size_t len, sim_buf *out);

/* True when token was issued here and has not expired. */
bool sim_auth_valid(sim_auth *a, const char *token);

/* Tokens issued since start. */
long sim_auth_issued(sim_auth *a);

/* Writes {"tokens":[...]} (every token issued, expired ones too; for tests
 * that check nothing leaked them) into out. */
void sim_auth_tokens_json(sim_auth *a, sim_buf *out);

#endif
