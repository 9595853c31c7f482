/* hash.c — hashing and the Bloom filter of hashes (see hash.h). */
#include "hash.h"

#include <stdlib.h>
#include <string.h>

/* The round of xxHash64 on one lane, eight bytes at a time (FNV-1a, a byte
 * at a time, was a tenth of the fetch thread's CPU on the bench's initial
 * load), then its avalanche. */
#define H_P1 0x9e3779b185ebca87ull
#define H_P2 0xc2b2ae3d27d4eb4full
#define H_P3 0x165667b19e3779f9ull
#define H_P4 0x85ebca77c2b2ae63ull

static uint64_t rotl64(uint64_t x, int r)
{
	return (x << r) | (x >> (64 - r));
}

static uint64_t hash_word(uint64_t h, uint64_t w)
{
	h ^= rotl64(w * H_P2, 31) * H_P1;
	return rotl64(h, 27) * H_P1 + H_P4;
}

uint64_t hash_bytes(uint64_t h, const void *data, size_t n)
{
	const unsigned char *p = data;
	h += n * H_P3;
	for (; n >= 8; p += 8, n -= 8) {
		uint64_t w;
		memcpy(&w, p, 8);
		h = hash_word(h, w);
	}
	uint64_t tail = 0;
	if (n)
		memcpy(&tail, p, n);
	h = hash_word(h, tail ^ ((uint64_t)n << 56));
	h ^= h >> 33;
	h *= H_P2;
	h ^= h >> 29;
	h *= H_P3;
	return h ^ (h >> 32);
}

/* size bytes of zeros, every page of them resident (calloc, or malloc and
 * memset, which compilers turn into calloc, leaves pages unmapped until
 * first written) */
static void *alloc_resident(size_t size)
{
	unsigned char *p = calloc(1, size);
	if (p) {
		volatile unsigned char *v = p;
		for (size_t i = 0; i < size; i += 4096)
			v[i] = 0;
	}
	return p;
}

/* Four probes, all in one 64-byte block (one cache line per lookup): with
 * 2^24 bits and a quarter of a million hashes, about one "maybe" in tens of
 * thousands for a hash never added; with ten times as many, one in twenty. */
#define PROBES 4
#define BLOCK_BITS 512

struct hash_filter {
	uint64_t *words;
	uint64_t nblocks; /* a power of two */
};

hash_filter *hash_filter_new(unsigned bits)
{
	if (bits < 10 || bits > 32)
		return NULL;
	hash_filter *f = calloc(1, sizeof(*f));
	if (!f)
		return NULL;
	f->nblocks = ((uint64_t)1 << bits) / BLOCK_BITS;
	f->words = alloc_resident((size_t)f->nblocks * (BLOCK_BITS / 8));
	if (!f->words) {
		free(f);
		return NULL;
	}
	return f;
}

void hash_filter_free(hash_filter *f)
{
	if (!f)
		return;
	free(f->words);
	free(f);
}

bool hash_filter_add(hash_filter *f, uint64_t h)
{
	uint64_t *block = f->words + (h & (f->nblocks - 1)) * (BLOCK_BITS / 64);
	uint64_t bitsrc = h >> 28; /* 36 bits the block's index does not use */
	bool present = true;
	for (int i = 0; i < PROBES; i++) {
		unsigned bit = (unsigned)(bitsrc >> (9 * i)) & (BLOCK_BITS - 1);
		uint64_t mask = (uint64_t)1 << (bit & 63);
		if (!(block[bit >> 6] & mask)) {
			present = false;
			block[bit >> 6] |= mask;
		}
	}
	return present;
}

#define WAYS 4

struct hash_recent {
	uint64_t *slots; /* 0: empty (a hash of 0 is stored as 1) */
	unsigned bits;
};

hash_recent *hash_recent_new(unsigned bits)
{
	if (bits < 2 || bits > 32)
		return NULL;
	hash_recent *r = calloc(1, sizeof(*r));
	if (!r)
		return NULL;
	r->bits = bits;
	r->slots = alloc_resident(sizeof(uint64_t) << bits);
	if (!r->slots) {
		free(r);
		return NULL;
	}
	return r;
}

void hash_recent_free(hash_recent *r)
{
	if (!r)
		return;
	free(r->slots);
	free(r);
}

void hash_recent_clear(hash_recent *r)
{
	if (r)
		memset(r->slots, 0, sizeof(uint64_t) << r->bits);
}

/* The set of four that h (never 0) belongs to. */
static uint64_t *recent_set(const hash_recent *r, uint64_t h)
{
	return r->slots + ((h >> (64 - r->bits)) & ~(uint64_t)(WAYS - 1));
}

bool hash_recent_has(const hash_recent *r, uint64_t h)
{
	h = h ? h : 1;
	const uint64_t *set = recent_set(r, h);
	for (int i = 0; i < WAYS; i++)
		if (set[i] == h)
			return true;
	return false;
}

bool hash_recent_add(hash_recent *r, uint64_t h)
{
	if (hash_recent_has(r, h))
		return true;
	h = h ? h : 1;
	uint64_t *set = recent_set(r, h);
	memmove(set + 1, set, (WAYS - 1) * sizeof(*set));
	set[0] = h;
	return false;
}
