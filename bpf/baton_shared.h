/* Layouts shared by the SK_MSG program (bpf/) and the addon (native/).
 * The TypeScript side mirrors them in src/descriptor/layout.ts and src/binding/; keep
 * them in step. */
#ifndef BATON_SHARED_H
#define BATON_SHARED_H

/* Every descriptor is exactly this many bytes; its first little-endian u32 is where it
 * goes: a sockmap key, or (high bit set) a function address. */
#define BATON_DESC_SIZE 64

/* Sockmap keys 0..BATON_MAX_KEYS-1. Key 0 is the gateway, which is also the dispatcher. */
#define BATON_MAX_KEYS 4096

/* A routing key with this bit set addresses a function (late binding): the program binds
 * it to an idle instance of function (key & 0xffff), or hands it to the dispatcher. */
#define BATON_FN_ADDR 0x80000000u
#define BATON_MAX_FUNCTIONS 256

/* Idle tokens per function: an instance with concurrency c owns c consecutive tokens.
 * A set bit is an idle token. Only the dispatcher sets bits; the program clears them. */
#define BATON_IDLE_WORDS 8
#define BATON_MAX_TOKENS (BATON_IDLE_WORDS * 64)

struct baton_idle {
	unsigned long long bits[BATON_IDLE_WORDS];
};

/* Token t of a function belongs to the instance with key base_key + t / concurrency. */
struct baton_fn {
	unsigned int base_key;
	unsigned int concurrency;
};

/* Per-key counters, indexed by the key a descriptor was delivered to (dead letters: by the
 * key it was addressed to, or BATON_MAX_KEYS-1 for keys out of range). */
struct baton_counters {
	unsigned long long redirected; /* descriptors delivered to this key */
	unsigned long long dead_letter; /* descriptors for this key that found no socket */
	unsigned long long bound_fast; /* function-addressed descriptors bound here in the kernel */
	unsigned long long to_dispatcher; /* (key 0 only) function-addressed, no idle instance */
};

#endif
