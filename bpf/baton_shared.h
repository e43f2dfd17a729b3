/* Layouts shared by the SK_MSG program (bpf/) and the addon (native/).
 * The TypeScript side mirrors them in src/descriptor/layout.ts; keep the three in step. */
#ifndef BATON_SHARED_H
#define BATON_SHARED_H

/* Every descriptor is exactly this many bytes; its first little-endian u32 is the
 * sockmap key of the socket it must be delivered to. */
#define BATON_DESC_SIZE 64

/* Sockmap keys 0..BATON_MAX_KEYS-1. Key 0 is the gateway. */
#define BATON_MAX_KEYS 4096

/* Per-key counters, indexed by the *target* key (or by the sender's fallback slot for
 * dead letters, see baton.bpf.c). */
struct baton_counters {
	unsigned long long redirected; /* descriptors delivered to this key */
	unsigned long long dead_letter; /* descriptors for this key that found no socket */
};

#endif
