/* sim_rng.h — stateless deterministic hashing for bloomsim (header only).
 *
 * Everything random in the simulator is a function of (seed, some ids), so the
 * same seed always gives the same organisation and the same fault sequence. */
#ifndef BLOOMSIM_SIM_RNG_H
#define BLOOMSIM_SIM_RNG_H

#include <stdint.h>

/* splitmix64 finaliser: a well-mixed 64-bit value for x. */
static inline uint64_t sim_rng_mix(uint64_t x)
{
	x += 0x9e3779b97f4a7c15ULL;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
	return x ^ (x >> 31);
}

/* Hash of a seed and two values. */
static inline uint64_t sim_rng_hash(uint64_t seed, uint64_t a, uint64_t b)
{
	return sim_rng_mix(sim_rng_mix(seed ^ sim_rng_mix(a)) ^ b);
}

/* Uniform double in [0, 1) from a hash. */
static inline double sim_rng_unit(uint64_t h)
{
	return (double)(h >> 11) * (1.0 / 9007199254740992.0);
}

/* A sequential generator for one-off loops (generation, mutation rounds). */
typedef struct sim_rng {
	uint64_t state;
} sim_rng;

static inline uint64_t sim_rng_next(sim_rng *r)
{
	r->state += 0x9e3779b97f4a7c15ULL;
	return sim_rng_mix(r->state);
}

/* Uniform integer in [0, n); n must be > 0. */
static inline uint64_t sim_rng_below(sim_rng *r, uint64_t n)
{
	return sim_rng_next(r) % n;
}

#endif
