// SPDX-License-Identifier: GPL-2.0
/* baton's data plane in the kernel. Every write by a socket in baton_socks passes here,
 * one descriptor at a time. A descriptor is delivered only if it is well formed, names its
 * true sender (known from the socket, not from its bytes), concerns a slot that sender
 * holds and, for a call, goes to a function the sender's chain file lets it call; then it is redirected to the ingress queue of the socket its first u32 names — a
 * sockmap key, or a function address bound here to an idle instance of that function (late
 * binding's fast path) or, with none idle, to the dispatcher (key 0) — and the slot's holder
 * becomes the receiver. Anything else refuses the sender: its bytes go down its own TCP
 * connection to the gateway, which kills it; no other socket ever sees a partial or forged
 * descriptor. */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include "baton_shared.h"

struct {
	__uint(type, BPF_MAP_TYPE_SOCKMAP);
	__uint(max_entries, BATON_MAX_KEYS);
	__type(key, __u32);
	__type(value, __u32);
} baton_socks SEC(".maps");

/* local port of each socket in baton_socks → its key */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, BATON_MAX_KEYS);
	__type(key, __u32);
	__type(value, struct baton_sender);
} baton_senders SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, BATON_MAX_KEYS);
	__type(key, __u32);
	__type(value, struct baton_counters);
} baton_counters SEC(".maps");

/* Late binding's tokens and queue lengths, memory-mapped by the gateway (baton_shared.h). */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, BATON_MAX_FUNCTIONS);
	__uint(map_flags, BPF_F_MMAPABLE);
	__type(key, __u32);
	__type(value, struct baton_idle);
} baton_idle SEC(".maps");

/* Each late-bound function's FIFOs of descriptors waiting for an idle instance, one per request
 * class (index fn * BATON_CLASSES + class), created by the gateway with the function's queueDepth. */
struct baton_queue {
	__uint(type, BPF_MAP_TYPE_QUEUE);
	__uint(max_entries, 1);
	__uint(value_size, sizeof(struct baton_raw_desc));
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY_OF_MAPS);
	__uint(max_entries, BATON_MAX_FUNCTIONS * BATON_CLASSES);
	__type(key, __u32);
	__array(values, struct baton_queue);
} baton_queues SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, BATON_MAX_FUNCTIONS);
	__type(key, __u32);
	__type(value, struct baton_fn);
} baton_fns SEC(".maps");

/* Memory-mapped by the gateway (see baton_shared.h). */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, BATON_MAX_SLOTS);
	__uint(map_flags, BPF_F_MMAPABLE);
	__type(key, __u32);
	__type(value, struct baton_custody);
} baton_custody SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct baton_config);
} baton_config SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, BATON_MAX_FUNCTIONS);
	__type(key, __u32);
	__type(value, struct baton_edges);
} baton_edges SEC(".maps");

/* function of each instance key, plus one (0: not an instance key) */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, BATON_MAX_KEYS);
	__type(key, __u32);
	__type(value, __u32);
} baton_keyfn SEC(".maps");

enum counter { C_REDIRECTED, C_DEAD_LETTER, C_BOUND_FAST, C_TO_DISPATCHER, C_REFUSED, C_QUEUED, C_HANDED };

static __always_inline struct baton_counters *counters(__u32 key)
{
	__u32 k = key < BATON_MAX_KEYS ? key : BATON_MAX_KEYS - 1;
	return bpf_map_lookup_elem(&baton_counters, &k);
}

static __always_inline void count(__u32 key, enum counter field)
{
	struct baton_counters *c = counters(key);
	if (!c)
		return;
	if (field == C_REDIRECTED)
		__sync_fetch_and_add(&c->redirected, 1);
	else if (field == C_DEAD_LETTER)
		__sync_fetch_and_add(&c->dead_letter, 1);
	else if (field == C_BOUND_FAST)
		__sync_fetch_and_add(&c->bound_fast, 1);
	else if (field == C_TO_DISPATCHER)
		__sync_fetch_and_add(&c->to_dispatcher, 1);
	else if (field == C_QUEUED)
		__sync_fetch_and_add(&c->queued, 1);
	else if (field == C_HANDED)
		__sync_fetch_and_add(&c->handed, 1);
	else
		__sync_fetch_and_add(&c->refused, 1);
}

/* Index of the single set bit of a power of two. */
static __always_inline __u32 bit_index(__u64 b)
{
	__u32 n = 0;
	if (b & 0xffffffff00000000ull) { n += 32; b >>= 32; }
	if (b & 0xffff0000ull) { n += 16; b >>= 16; }
	if (b & 0xff00ull) { n += 8; b >>= 8; }
	if (b & 0xf0ull) { n += 4; b >>= 4; }
	if (b & 0xcull) { n += 2; b >>= 2; }
	if (b & 0x2ull) { n += 1; }
	return n;
}

/* Claims an idle token of function fn; returns its instance's key, or 0 if none is idle. */
static __noinline __u32 take_idle(struct baton_idle *idle, struct baton_fn *f)
{
	if (f->concurrency == 0)
		return 0;
	for (int w = 0; w < BATON_IDLE_WORDS; w++) {
		/* another CPU may take the bit we saw: try again a few times, then move on */
		for (int attempt = 0; attempt < 2; attempt++) {
			__u64 bits = *(volatile __u64 *)&idle->bits[w];
			if (!bits)
				break;
			__u64 low = bits & -bits;
			__u64 old = __sync_fetch_and_and(&idle->bits[w], ~low);
			if (old & low) {
				__sync_fetch_and_add(&idle->events, 1);
				return f->base_key + (w * 64 + bit_index(low)) / f->concurrency;
			}
		}
	}
	return 0;
}

static __always_inline int member(struct baton_idle *idle, __u32 t)
{
	return (*(volatile __u64 *)&idle->members[(t >> 6) & (BATON_IDLE_WORDS - 1)] >> (t & 63)) & 1;
}

enum { TOKEN_IDLE = 1, TOKEN_TAKEN_BACK = 0, TOKEN_NONE_BUSY = -1 };

/* Marks one busy token of instance `index` idle (its tokens are index·conc … index·conc + conc − 1),
 * then looks at the queue: if a descriptor waits, or the instance stopped being a member, it
 * takes the token back (TOKEN_TAKEN_BACK: the caller settles), unless someone bound it first.
 * TOKEN_NONE_BUSY: every token of the instance was idle already (an Idle notice too many). The
 * token's number never leaves this function, so the verifier need not follow each value. */
static __noinline int give_token(struct baton_idle *idle, __u32 index, __u32 conc)
{
	__u32 first = index * conc, last = first + conc - 1;
	if (conc == 0 || last >= BATON_MAX_TOKENS)
		return TOKEN_NONE_BUSY;
	for (__u32 w = first >> 6; w <= (last >> 6) && w < BATON_IDLE_WORDS; w++) {
		__u32 lo = w == (first >> 6) ? (first & 63) : 0;
		__u32 hi = w == (last >> 6) ? (last & 63) : 63;
		__u64 mask = (hi == 63 ? ~0ull : ((1ull << (hi + 1)) - 1)) & ~((1ull << lo) - 1);
		/* another CPU may set the bit we saw: try again, then move on */
		for (int attempt = 0; attempt < 2; attempt++) {
			__u64 free = ~*(volatile __u64 *)&idle->bits[w] & mask;
			if (!free)
				break;
			__u64 bit = free & -free;
			if (__sync_fetch_and_or(&idle->bits[w], bit) & bit)
				continue;
			__sync_fetch_and_add(&idle->events, 1);
			/* a descriptor may have been queued, or a drain begun, since the caller looked */
			if (!*(volatile __u64 *)&idle->queued && member(idle, first))
				return TOKEN_IDLE;
			if (!(__sync_fetch_and_and(&idle->bits[w], ~bit) & bit))
				return TOKEN_IDLE; /* bound meanwhile: it is busy, as it should be */
			__sync_fetch_and_add(&idle->events, 1);
			return TOKEN_TAKEN_BACK;
		}
	}
	return TOKEN_NONE_BUSY;
}

/* Takes the oldest live descriptor out of one of a function's queues for `to`, claiming its
 * slot (a withdrawn one fails the claim and is passed over). Returns 1 with it in *v. */
static __noinline int pop_one(void *q, struct baton_idle *idle, struct baton_raw_desc *v, __u32 to, struct baton_config *cfg)
{
	for (int i = 0; i < 8; i++) {
		if (bpf_map_pop_elem(q, v))
			return 0;
		__sync_fetch_and_sub(&idle->queued, 1);
		__sync_fetch_and_add(&idle->events, 1);
		struct baton_desc *d = (struct baton_desc *)v;
		__u32 slot = d->slot;
		struct baton_custody *c = cfg && slot < cfg->slots ? bpf_map_lookup_elem(&baton_custody, &slot) : 0;
		if (c) {
			__u64 want = (__u64)d->gen | ((__u64)BATON_HOLDER_QUEUED << 32);
			if (__sync_val_compare_and_swap((__u64 *)&c->gen, want, (__u64)d->gen | ((__u64)to << 32)) == want)
				return 1;
		}
		__sync_fetch_and_add(&idle->stale, 1);
	}
	return 0;
}

/* Takes the oldest live descriptor of the highest class waiting for function `fn`, for `to`;
 * every starve_every-th taking looks at the lowest class first, so it is never starved. Only
 * takings count: an Idle notice that finds nothing waiting (an instance coming up) does not
 * move the turn. */
static __noinline int pop_for(__u32 fn, struct baton_idle *idle, struct baton_raw_desc *v, __u32 to)
{
	__u32 zero = 0;
	struct baton_config *cfg = bpf_map_lookup_elem(&baton_config, &zero);
	__u64 n = *(volatile __u64 *)&idle->pops;
	__u32 every = cfg ? cfg->starve_every : 0;
	int lowest_first = every && n % every == every - 1;
	for (__u32 k = 0; k < BATON_CLASSES; k++) {
		__u32 cls = lowest_first ? (k == 0 ? BATON_CLASSES - 1 : k - 1) : k;
		__u32 qi = fn * BATON_CLASSES + cls;
		void *q = bpf_map_lookup_elem(&baton_queues, &qi);
		if (q && pop_one(q, idle, v, to, cfg)) {
			__sync_fetch_and_add(&idle->pops, 1);
			return 1;
		}
	}
	return 0;
}

/* Refuses a sender: counted, remembered, and the rest of this write passed down its own TCP
 * connection (no redirect), where the gateway reads it on the peer end and kills the sender. */
static __always_inline int refuse(struct sk_msg_md *msg, struct baton_sender *s, __u32 key, __u32 reason)
{
	struct baton_counters *c = counters(key);
	if (s)
		s->refused = reason;
	if (c) {
		/* once per socket: a refused sender's later writes do not come here */
		__sync_fetch_and_add(&c->refused, 1);
		c->reason = reason;
	}
	bpf_msg_apply_bytes(msg, msg->size);
	return SK_PASS;
}

/* Whether function `from` may call (ret: return a result to) what `key` addresses (a
 * function, or an instance of one) as function `fn` (the descriptor's own claim must agree). */
static __always_inline int may_call(__u32 from, __u32 key, __u32 fn, int ret)
{
	__u32 to;
	if (key & BATON_FN_ADDR) {
		to = key & 0xffff;
	} else {
		__u32 *f = bpf_map_lookup_elem(&baton_keyfn, &key);
		if (!f || !*f)
			return 0;
		to = *f - 1;
	}
	if (to != fn || to >= BATON_MAX_FUNCTIONS)
		return 0;
	struct baton_edges *e = bpf_map_lookup_elem(&baton_edges, &from);
	if (!e)
		return 0;
	__u32 word = to / 64;
	if (word >= BATON_MAX_FUNCTIONS / 64)
		return 0;
	return ((ret ? e->ret[word] : e->to[word]) >> (to % 64)) & 1;
}

/* The gateway; without its socket (shutting down) the bytes take the sender's TCP path. */
static __always_inline __u32 to_gateway(struct sk_msg_md *msg)
{
	if (bpf_msg_redirect_map(msg, &baton_socks, BATON_GATEWAY_KEY, BPF_F_INGRESS) == SK_PASS)
		count(BATON_GATEWAY_KEY, C_REDIRECTED);
	return BATON_GATEWAY_KEY;
}

/* Delivers the current descriptor to instance `key`; returns the key it went to. A key with no
 * socket (an instance that just died, a forged key) makes it a dead letter, delivered to the
 * gateway instead, which answers or redelivers it. */
static __always_inline __u32 to_key(struct sk_msg_md *msg, __u32 key)
{
	if (key != BATON_GATEWAY_KEY) {
		if (bpf_msg_redirect_map(msg, &baton_socks, key, BPF_F_INGRESS) == SK_PASS) {
			count(key, C_REDIRECTED);
			return key;
		}
		count(key, C_DEAD_LETTER);
	}
	return to_gateway(msg);
}

/* Overwrites the current descriptor with `v` (a queued one). */
static __always_inline int rewrite(struct sk_msg_md *msg, struct baton_raw_desc *v)
{
	void *data = msg->data, *end = msg->data_end;
	if (data + sizeof(*v) > end)
		return 0;
	__builtin_memcpy(data, v, sizeof(*v));
	return 1;
}

/* The current descriptor goes back to its own sender marked ACK: the program did its work. */
static __noinline void ack(struct sk_msg_md *msg, __u32 me)
{
	void *data = msg->data, *end = msg->data_end;
	if (data + sizeof(struct baton_desc) <= end)
		((struct baton_desc *)data)->kind = BATON_ACK;
	if (bpf_msg_redirect_map(msg, &baton_socks, me, BPF_F_INGRESS) != SK_PASS)
		to_gateway(msg);
}

/* Hands a popped descriptor (its slot already claimed for `to`) to instance `to` in place of
 * the current one; an instance that just died makes it a dead letter, for the gateway. */
static __noinline void hand(struct sk_msg_md *msg, struct baton_raw_desc *v, __u32 to)
{
	rewrite(msg, v);
	count(to, C_HANDED);
	if (bpf_msg_redirect_map(msg, &baton_socks, to, BPF_F_INGRESS) == SK_PASS) {
		count(to, C_REDIRECTED);
		return;
	}
	count(to, C_DEAD_LETTER);
	__u32 slot = ((struct baton_desc *)v)->slot;
	struct baton_custody *c = bpf_map_lookup_elem(&baton_custody, &slot);
	if (c)
		c->holder = BATON_GATEWAY_KEY;
	to_gateway(msg);
}

/* A descriptor for function `fn` (late binding): to an idle instance of it, else into its
 * queue until one is idle (with no queue, or a full one: to the dispatcher, which answers).
 * A function with no instance serving (concurrency 0: scaled to zero, or all restarting) is
 * the dispatcher's too: it queues the descriptor and has an instance started (the activator).
 * `c` is its slot's custody, held by the sender `me` (checked). */
static __noinline void bind(struct sk_msg_md *msg, __u32 me, __u32 fn, struct baton_custody *c)
{
	struct baton_idle *idle = bpf_map_lookup_elem(&baton_idle, &fn);
	struct baton_fn *f = bpf_map_lookup_elem(&baton_fns, &fn);
	__u32 cls = c ? c->queue >> BATON_CLASS_SHIFT : 0;
	if (cls >= BATON_CLASSES)
		cls = BATON_CLASSES - 1;
	__u32 qi = fn * BATON_CLASSES + cls;
	void *q = bpf_map_lookup_elem(&baton_queues, &qi);
	if (!idle || !f || f->concurrency == 0) {
		count(BATON_GATEWAY_KEY, C_TO_DISPATCHER);
		if (c)
			c->holder = to_gateway(msg);
		return;
	}
	__u32 target = take_idle(idle, f);
	if (target) {
		if (bpf_msg_redirect_map(msg, &baton_socks, target, BPF_F_INGRESS) == SK_PASS) {
			count(target, C_BOUND_FAST);
			count(target, C_REDIRECTED);
			if (c)
				c->holder = target;
			return;
		}
		/* the instance died with its token idle: the dispatcher decides */
		q = 0;
	}
	struct baton_raw_desc v;
	void *data = msg->data, *end = msg->data_end;
	if (!q || !c || data + sizeof(v) > end) {
		count(BATON_GATEWAY_KEY, C_TO_DISPATCHER);
		if (c)
			c->holder = to_gateway(msg);
		return;
	}
	__builtin_memcpy(&v, data, sizeof(v));
	/* queued: its slot is nobody's until someone claims it (pop_for, or a withdrawal) */
	c->queue = (c->queue & ~BATON_QUEUE_FN) | (fn + 1);
	c->holder = BATON_HOLDER_QUEUED;
	if (bpf_map_push_elem(q, &v, BPF_ANY)) {
		/* full: the dispatcher answers 503 */
		c->holder = BATON_GATEWAY_KEY;
		count(BATON_GATEWAY_KEY, C_TO_DISPATCHER);
		to_gateway(msg);
		return;
	}
	__sync_fetch_and_add(&idle->queued, 1);
	__sync_fetch_and_add(&idle->events, 1);
	count(me, C_QUEUED);
	/* an instance may have gone idle since take_idle failed (it looks at the queue after
	 * returning its token; we look for tokens after queueing: one of us sees the other) */
	target = take_idle(idle, f);
	if (target) {
		if (pop_for(fn, idle, &v, target)) {
			hand(msg, &v, target);
			return;
		}
		/* someone else emptied the queue: the token goes back, unless more came meanwhile:
		 * then the dispatcher settles it, told as by the instance's own Idle notice */
		if (give_token(idle, target - f->base_key, f->concurrency) == TOKEN_TAKEN_BACK) {
			struct baton_desc *d = msg->data;
			if ((void *)(d + 1) <= msg->data_end) {
				__builtin_memset(d, 0, sizeof(*d));
				d->magic = BATON_DESC_MAGIC;
				d->version = BATON_DESC_VERSION;
				d->kind = BATON_IDLE;
				d->fn = fn;
				d->sender = target;
			}
			to_gateway(msg);
			return;
		}
	}
	ack(msg, me);
}

/* Instance `me` of function `fn` finished one descriptor: it gets the oldest waiting one, or
 * one of its tokens goes idle. A draining instance's notice goes to the dispatcher, which
 * counts what it still holds; so does one the program cannot settle in a few steps. */
static __noinline void on_idle(struct sk_msg_md *msg, __u32 me, __u32 fn)
{
	struct baton_idle *idle = bpf_map_lookup_elem(&baton_idle, &fn);
	struct baton_fn *f = bpf_map_lookup_elem(&baton_fns, &fn);
	__u32 q0 = fn * BATON_CLASSES; /* a late-bound function has its queues */
	if (!idle || !f || !bpf_map_lookup_elem(&baton_queues, &q0) || f->concurrency == 0 || me < f->base_key) {
		to_gateway(msg);
		return;
	}
	__u32 index = me - f->base_key;
	__u32 first = index * f->concurrency;
	if (first >= BATON_MAX_TOKENS || !member(idle, first)) {
		to_gateway(msg);
		return;
	}
	struct baton_raw_desc v;
	if (pop_for(fn, idle, &v, me)) {
		hand(msg, &v, me);
		return;
	}
	int r = give_token(idle, index, f->concurrency);
	if (r == TOKEN_IDLE) {
		ack(msg, me);
		return;
	}
	if (r == TOKEN_TAKEN_BACK && member(idle, first) && pop_for(fn, idle, &v, me)) {
		hand(msg, &v, me);
		return;
	}
	/* every token idle already, or a drain, or more waiting than we settle here: the
	 * dispatcher decides, token in hand */
	to_gateway(msg);
}

/* Set before load, never by the gateway: false makes a reference program that routes and
 * records custody without checking anything, so the bench can measure what the checks cost
 * (the verifier drops the checks' code). */
const volatile __u32 checks = 1;

/* The reference program: route by the key and move custody, nothing else. */
static __always_inline int route_unchecked(struct sk_msg_md *msg)
{
	bpf_msg_apply_bytes(msg, BATON_DESC_SIZE);
	void *data = msg->data, *end = msg->data_end;
	if (data + sizeof(struct baton_desc) > end) {
		if (bpf_msg_pull_data(msg, 0, BATON_DESC_SIZE, 0))
			return SK_PASS;
		data = msg->data;
		end = msg->data_end;
		if (data + sizeof(struct baton_desc) > end)
			return SK_PASS;
	}
	__u32 port = msg->local_port;
	struct baton_sender *s = bpf_map_lookup_elem(&baton_senders, &port);
	if (!s)
		return SK_PASS;
	struct baton_desc *d = data;
	__u32 slot = d->slot, key = d->key, me = s->key;
	if (d->kind == BATON_IDLE) {
		on_idle(msg, me, s->fn);
		return SK_PASS;
	}
	struct baton_custody *c = bpf_map_lookup_elem(&baton_custody, &slot);
	if (key & BATON_FN_ADDR) {
		bind(msg, me, key & 0xffff, c);
		return SK_PASS;
	}
	__u32 to = to_key(msg, key);
	if (c)
		c->holder = to;
	return SK_PASS;
}

SEC("sk_msg")
int baton_route(struct sk_msg_md *msg)
{
	if (!checks)
		return route_unchecked(msg);
	__u32 port = msg->local_port;
	struct baton_sender *s = bpf_map_lookup_elem(&baton_senders, &port);
	if (!s)
		return refuse(msg, 0, BATON_MAX_KEYS - 1, BATON_V_UNKNOWN_SOCKET);
	__u32 me = s->key;
	if (s->refused) {
		bpf_msg_apply_bytes(msg, msg->size);
		return SK_PASS;
	}
	/* Writers send whole descriptors, never more than fits one message without splitting
	 * (src/dataplane/endpoint.ts), so every run starts at a descriptor boundary. */
	if (msg->size < BATON_DESC_SIZE || (msg->size & (BATON_DESC_SIZE - 1)))
		return refuse(msg, s, me, BATON_V_FRAMING);
	/* Node may write several descriptors in one sendmsg; each gets its own verdict. */
	bpf_msg_apply_bytes(msg, BATON_DESC_SIZE);

	void *data = msg->data, *end = msg->data_end;
	if (data + sizeof(struct baton_desc) > end) {
		/* the descriptor straddles scatterlist pages: make it linear */
		if (bpf_msg_pull_data(msg, 0, BATON_DESC_SIZE, 0))
			return refuse(msg, s, me, BATON_V_PULL);
		data = msg->data;
		end = msg->data_end;
		if (data + sizeof(struct baton_desc) > end)
			return refuse(msg, s, me, BATON_V_PULL);
	}
	struct baton_desc *d = data;
	if (d->magic != BATON_DESC_MAGIC || d->version != BATON_DESC_VERSION)
		return refuse(msg, s, me, BATON_V_MAGIC);
	if (d->sender != me)
		return refuse(msg, s, me, BATON_V_SENDER);

	__u32 kind = d->kind;
	if (kind == BATON_IDLE) {
		/* an instance finished one descriptor: no slot involved */
		if (d->key != BATON_GATEWAY_KEY)
			return refuse(msg, s, me, BATON_V_KIND);
		on_idle(msg, me, s->fn);
		return SK_PASS;
	}
	__u32 to_gw = d->key == BATON_GATEWAY_KEY;
	__u32 zero = 0, slot = d->slot, key = d->key;
	struct baton_custody *c = bpf_map_lookup_elem(&baton_custody, &slot);
	if (kind == BATON_GRANT) {
		/* the gateway gives a slot it holds to an instance; a grant that failed (no slot free)
		 * names no slot and moves no custody */
		if (s->fn != BATON_GATEWAY_FN || to_gw || (key & BATON_FN_ADDR))
			return refuse(msg, s, me, BATON_V_KIND);
		__u32 to = to_key(msg, key);
		if (c && c->req != 0 && c->req == d->req && c->gen == d->gen && c->holder == me)
			c->holder = to;
		return SK_PASS;
	}
	/* calls go to functions, returns to an instance; replies, errors and slot requests to the
	 * gateway */
	if (kind < BATON_CALL || kind > BATON_ALLOC || kind == BATON_IDLE)
		return refuse(msg, s, me, BATON_V_KIND);
	if ((kind == BATON_CALL || kind == BATON_RETURN) == to_gw || (kind == BATON_RETURN && (key & BATON_FN_ADDR)))
		return refuse(msg, s, me, BATON_V_KIND);

	struct baton_config *cfg = bpf_map_lookup_elem(&baton_config, &zero);
	if (!cfg || d->length > cfg->capacity)
		return refuse(msg, s, me, BATON_V_LENGTH);
	if (!c || slot >= cfg->slots || c->req == 0 || c->req != d->req || c->gen != d->gen || c->holder != me)
		return refuse(msg, s, me, BATON_V_CUSTODY);
	if ((kind == BATON_CALL || kind == BATON_RETURN) && s->fn != BATON_GATEWAY_FN &&
	    !may_call(s->fn, key, d->fn, kind == BATON_RETURN))
		return refuse(msg, s, me, BATON_V_EDGE);
	if (kind == BATON_ALLOC) {
		/* the slot only proves the request: it stays with its holder */
		to_gateway(msg);
		return SK_PASS;
	}
	if (key & BATON_FN_ADDR) {
		bind(msg, me, key & 0xffff, c);
		return SK_PASS;
	}
	c->holder = to_key(msg, key);
	return SK_PASS;
}

char LICENSE[] SEC("license") = "GPL";
