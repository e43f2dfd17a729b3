/* Layouts shared by the SK_MSG program (bpf/) and the addon (native/).
 * The TypeScript side mirrors them in src/descriptor/layout.ts, src/binding/idle.ts and
 * src/gateway/custody.ts; keep them in step (the addon exports them and the loader checks). */
#ifndef BATON_SHARED_H
#define BATON_SHARED_H

/* Every descriptor is exactly this many bytes; its first little-endian u32 is where it
 * goes: a sockmap key, or (high bit set) a function address. */
#define BATON_DESC_SIZE 64
#define BATON_DESC_MAGIC 0xba70
#define BATON_DESC_VERSION 2

/* The part of a descriptor the program reads (little-endian, as every baton process writes). */
struct baton_desc {
	unsigned int key;
	unsigned short magic;
	unsigned char version;
	unsigned char kind;
	unsigned int req; /* request id */
	unsigned int gen; /* slot generation at allocation */
	unsigned int slot; /* pool slot holding the payload */
	unsigned int length; /* payload bytes */
	unsigned short chain, hop, fn, status;
	unsigned int sender; /* sockmap key of the sender: checked against the socket */
};

/* CALL: to a function (a chain's next step, or a nested call from ctx.call()); REPLY, ERROR:
 * a chain's end, to the gateway; IDLE: an instance of a late-bound function finished one
 * descriptor (the program hands it the oldest waiting one, or returns its token); RETURN: a
 * called function's result, to the instance that called it; ALLOC: a function asks the gateway
 * for slots to call with (proving the request by a slot it holds, which stays its own); GRANT:
 * the gateway gives such a slot (only the gateway's socket may send it); ACK: the program did
 * what a sender's descriptor asked without delivering it anywhere (it queued a call, or took an
 * Idle notice): the bytes come back to the sender marked so, to be ignored. Nobody sends ACK. */
enum baton_kind {
	BATON_CALL = 1, BATON_REPLY = 2, BATON_ERROR = 3, BATON_IDLE = 4,
	BATON_RETURN = 5, BATON_ALLOC = 6, BATON_GRANT = 7, BATON_ACK = 8,
};

/* Sockmap keys 0..BATON_MAX_KEYS-1. Key 0 is the gateway, which is also the dispatcher. */
#define BATON_MAX_KEYS 4096
#define BATON_GATEWAY_KEY 0

/* A routing key with this bit set addresses a function (late binding): the program binds
 * it to an idle instance of function (key & 0xffff), or hands it to the dispatcher. */
#define BATON_FN_ADDR 0x80000000u
#define BATON_MAX_FUNCTIONS 256

/* Late binding's state per function, memory-mapped by the gateway. Tokens: an instance with
 * concurrency c owns c consecutive tokens; a set bit in `bits` is an idle token, a set bit in
 * `members` a token of an instance that takes new work (not starting, draining or gone). The
 * program claims idle bits with atomic fetch-and when it binds a descriptor, and sets its
 * sender's bit with atomic OR when an Idle notice finds nothing waiting; the gateway does the
 * same on the same words. `queued` counts the descriptors in the function's kernel queue
 * (baton_queues); every change to bits or the queue bumps `events`, so a reader can tell a
 * consistent snapshot (events unchanged across it). Both sides keep one rule: make a token
 * idle, then look at the queue; queue a descriptor, then look for an idle token (with
 * sequentially consistent atomics one of the two always sees the other), so no descriptor
 * waits while a token of its function is idle. */
#define BATON_IDLE_WORDS 8
#define BATON_MAX_TOKENS (BATON_IDLE_WORDS * 64)

struct baton_idle {
	unsigned long long bits[BATON_IDLE_WORDS];
	unsigned long long members[BATON_IDLE_WORDS];
	unsigned long long queued;
	unsigned long long events;
	unsigned long long stale; /* withdrawn descriptors a pop passed over */
	unsigned long long withdrawn; /* (the gateway's) queued descriptors withdrawn, their request over */
	unsigned long long pops; /* takings from the function's queues (every starve_every-th serves the lowest class first) */
	unsigned long long pad[3];
};
#define BATON_IDLE_STRIDE 24 /* u64 words per function */

/* Request classes (src/admission/classes.ts), 0 the highest: each late-bound function has a
 * kernel queue per class, baton_queues[fn * BATON_CLASSES + class], taken from highest class
 * first. A slot's class is in the high half of its custody entry's `queue` word. */
#define BATON_CLASSES 3
#define BATON_QUEUE_FN 0xffffu
#define BATON_CLASS_SHIFT 16

/* A raw descriptor, as a kernel queue holds it. */
struct baton_raw_desc {
	unsigned long long w[BATON_DESC_SIZE / 8];
};

/* Token t of a function belongs to the instance with key base_key + t / concurrency. */
struct baton_fn {
	unsigned int base_key;
	unsigned int concurrency;
};

/* Who sent a descriptor, from the sending socket (its local port), never from its bytes.
 * `refused` is set by the program on the sender's first violation (a reason below): from
 * then on everything it sends goes down its own TCP connection to the gateway-held peer end,
 * where the gateway sees it and kills the instance. */
struct baton_sender {
	unsigned int key;
	unsigned int refused;
	unsigned int fn; /* the function its instance runs; BATON_GATEWAY_FN: the gateway */
};

/* The function of the gateway's own socket (it may address every function). */
#define BATON_GATEWAY_FN 0xffff

/* Which functions a function may call (chain file: a step to any function of the next step,
 * and its `calls`): bit `to` of edges[from].to; and which functions it may return a result to
 * (those that may call it): bit of edges[from].ret. Replies, errors and Idle notices to the
 * gateway are always allowed. */
struct baton_edges {
	unsigned long long to[BATON_MAX_FUNCTIONS / 64];
	unsigned long long ret[BATON_MAX_FUNCTIONS / 64];
};

/* Custody of pool slots, one entry per slot, memory-mapped by the gateway: it writes
 * req/gen (holder 0) when a request takes the slot and req 0 when it frees it; the program
 * moves `holder` to the key a descriptor is delivered to, and only the holder may send a
 * descriptor for the slot. So the gateway always knows which instance holds a request,
 * including one sitting unread in a socket. A descriptor waiting in a kernel queue leaves
 * its slot held by BATON_HOLDER_QUEUED: whoever takes it out (the program for an instance, or
 * the gateway withdrawing a request) claims it with a compare-and-swap of the 64-bit word
 * gen | holder << 32, so exactly one of them gets it; a stale one (withdrawn, its slot reused)
 * fails the swap and is passed over. */
#define BATON_MAX_SLOTS 65536
#define BATON_HOLDER_QUEUED 0xfffffff0u
struct baton_custody {
	unsigned int req;
	unsigned int queue; /* low half: function + 1 whose kernel queue its descriptor last waited in; high half: the request's class (the gateway's) */
	unsigned int gen;
	unsigned int holder;
};

/* Pool geometry the program checks descriptors against (one entry). */
struct baton_config {
	unsigned int slots;
	unsigned int capacity; /* payload bytes per slot */
	unsigned int starve_every; /* every this many takings from a function's queues serve the lowest class first (0: never) */
};

/* Why a sender was refused (baton_sender.refused, baton_counters.reason). */
enum baton_violation {
	BATON_V_NONE = 0,
	BATON_V_UNKNOWN_SOCKET = 1, /* a socket the gateway never registered */
	BATON_V_FRAMING = 2, /* a write that is not a whole number of descriptors */
	BATON_V_MAGIC = 3, /* not a descriptor of this version */
	BATON_V_SENDER = 4, /* the sender field names another key */
	BATON_V_KIND = 5, /* unknown kind, or a kind sent where it cannot go */
	BATON_V_LENGTH = 6, /* payload length beyond a slot */
	BATON_V_CUSTODY = 7, /* a slot the sender does not hold, or a stale request */
	BATON_V_PULL = 8, /* the kernel could not read the descriptor */
	BATON_V_EDGE = 9, /* a call to a function its chain file does not let it call */
};

/* Per-key counters, indexed by the key a descriptor was delivered to (dead letters: by the
 * key it was addressed to; refusals: by the sender; BATON_MAX_KEYS-1 for keys out of range). */
struct baton_counters {
	unsigned long long redirected; /* descriptors delivered to this key */
	unsigned long long dead_letter; /* descriptors for this key that found no socket */
	unsigned long long bound_fast; /* function-addressed descriptors bound here in the kernel */
	unsigned long long to_dispatcher; /* (key 0 only) function-addressed, no idle instance */
	unsigned long long refused; /* senders under this key refused (one per socket) */
	unsigned long long reason; /* enum baton_violation of the latest refusal */
	unsigned long long queued; /* function-addressed descriptors from this key queued in the kernel */
	unsigned long long handed; /* queued descriptors handed to this key on its Idle notice */
};

#endif
