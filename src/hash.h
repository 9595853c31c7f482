/* hash.h — 64-bit hashing of bytes, and two sets of hashes of fixed size:
 * one that can tell "surely not added" (a Bloom filter), one that can tell
 * "added lately" (a cache).
 *
 * Both take all their memory when made, page by page written through, so
 * the memory of a run does not depend on how many hashes it adds. */
#ifndef BLOOMSYNC_HASH_H
#define BLOOMSYNC_HASH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* A 64-bit hash of n bytes, seeded (or continuing) from h. Not for
 * adversaries: for telling apart rows, bodies and keys. */
uint64_t hash_bytes(uint64_t h, const void *data, size_t n);

/* A set of hashes in a fixed 2^bits bits of memory. Asking never misses an
 * added hash; it may say "maybe" for one never added, more often as it
 * fills. */
typedef struct hash_filter hash_filter;

/* NULL when out of memory. bits: 10..32. */
hash_filter *hash_filter_new(unsigned bits);
void hash_filter_free(hash_filter *f);

/* Adds h; returns false when h was surely not in the set before. */
bool hash_filter_add(hash_filter *f, uint64_t h);

/* The hashes most recently added, in a fixed 8 * 2^bits bytes: sets of
 * four, the oldest of a set replaced by a new one. Asking never says yes
 * for a hash not added; it forgets the old ones as new ones come. */
typedef struct hash_recent hash_recent;

/* NULL when out of memory. bits: 2..32. */
hash_recent *hash_recent_new(unsigned bits);
void hash_recent_free(hash_recent *r);

/* Forgets every hash added; hash_recent_clear(NULL) is a no-op. */
void hash_recent_clear(hash_recent *r);

/* Whether h is among the recent hashes; if not, it becomes one. */
bool hash_recent_add(hash_recent *r, uint64_t h);

/* Whether h is among the recent hashes (it does not become one). */
bool hash_recent_has(const hash_recent *r, uint64_t h);

#endif
