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

/* Memory-mapped by the gateway, which returns tokens with atomic OR on the same words. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, BATON_MAX_FUNCTIONS);
	__uint(map_flags, BPF_F_MMAPABLE);
	__type(key, __u32);
	__type(value, struct baton_idle);
} baton_idle SEC(".maps");

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

enum counter { C_REDIRECTED, C_DEAD_LETTER, C_BOUND_FAST, C_TO_DISPATCHER, C_REFUSED };

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
static __always_inline __u32 take_idle(__u32 fn)
{
	struct baton_idle *idle = bpf_map_lookup_elem(&baton_idle, &fn);
	struct baton_fn *f = bpf_map_lookup_elem(&baton_fns, &fn);
	if (!idle || !f || f->concurrency == 0)
		return 0;
	for (int w = 0; w < BATON_IDLE_WORDS; w++) {
		/* another CPU may take the bit we saw: try again a few times, then move on */
		for (int attempt = 0; attempt < 4; attempt++) {
			__u64 bits = *(volatile __u64 *)&idle->bits[w];
			if (!bits)
				break;
			__u64 low = bits & -bits;
			__u64 old = __sync_fetch_and_and(&idle->bits[w], ~low);
			if (old & low)
				return f->base_key + (w * 64 + bit_index(low)) / f->concurrency;
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

/* Delivers the current descriptor to `key`; returns the key it went to. A key with no socket
 * (an instance that just died, a forged key) makes it a dead letter, delivered to the gateway
 * instead, which answers or redelivers it. */
static __always_inline __u32 deliver(struct sk_msg_md *msg, __u32 key)
{
	if (key & BATON_FN_ADDR) {
		__u32 target = take_idle(key & 0xffff);
		if (target && bpf_msg_redirect_map(msg, &baton_socks, target, BPF_F_INGRESS) == SK_PASS) {
			count(target, C_BOUND_FAST);
			count(target, C_REDIRECTED);
			return target;
		}
		/* none idle (or the instance died with its token idle): the dispatcher decides */
		count(BATON_GATEWAY_KEY, C_TO_DISPATCHER);
		key = BATON_GATEWAY_KEY;
	} else if (key != BATON_GATEWAY_KEY) {
		if (bpf_msg_redirect_map(msg, &baton_socks, key, BPF_F_INGRESS) == SK_PASS) {
			count(key, C_REDIRECTED);
			return key;
		}
		count(key, C_DEAD_LETTER);
		key = BATON_GATEWAY_KEY;
	}
	/* the gateway; without its socket (shutting down) the bytes take the sender's TCP path */
	if (bpf_msg_redirect_map(msg, &baton_socks, BATON_GATEWAY_KEY, BPF_F_INGRESS) == SK_PASS)
		count(BATON_GATEWAY_KEY, C_REDIRECTED);
	return BATON_GATEWAY_KEY;
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
	struct baton_desc *d = data;
	__u32 slot = d->slot;
	struct baton_custody *c = bpf_map_lookup_elem(&baton_custody, &slot);
	__u32 to = deliver(msg, d->kind == BATON_IDLE ? BATON_GATEWAY_KEY : d->key);
	if (c && d->kind != BATON_IDLE)
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
		/* an instance tells the dispatcher it finished one descriptor: no slot involved */
		if (d->key != BATON_GATEWAY_KEY)
			return refuse(msg, s, me, BATON_V_KIND);
		deliver(msg, BATON_GATEWAY_KEY);
		return SK_PASS;
	}
	__u32 to_gateway = d->key == BATON_GATEWAY_KEY;
	__u32 zero = 0, slot = d->slot;
	struct baton_custody *c = bpf_map_lookup_elem(&baton_custody, &slot);
	if (kind == BATON_GRANT) {
		/* the gateway gives a slot it holds to an instance; a grant that failed (no slot free)
		 * names no slot and moves no custody */
		if (s->fn != BATON_GATEWAY_FN || to_gateway || (d->key & BATON_FN_ADDR))
			return refuse(msg, s, me, BATON_V_KIND);
		__u32 to = deliver(msg, d->key);
		if (c && c->req != 0 && c->req == d->req && c->gen == d->gen && c->holder == me)
			c->holder = to;
		return SK_PASS;
	}
	/* calls go to functions, returns to an instance; replies, errors and slot requests to the
	 * gateway */
	if (kind < BATON_CALL || kind > BATON_ALLOC || kind == BATON_IDLE)
		return refuse(msg, s, me, BATON_V_KIND);
	if ((kind == BATON_CALL || kind == BATON_RETURN) == to_gateway || (kind == BATON_RETURN && (d->key & BATON_FN_ADDR)))
		return refuse(msg, s, me, BATON_V_KIND);

	struct baton_config *cfg = bpf_map_lookup_elem(&baton_config, &zero);
	if (!cfg || d->length > cfg->capacity)
		return refuse(msg, s, me, BATON_V_LENGTH);
	if (!c || slot >= cfg->slots || c->req == 0 || c->req != d->req || c->gen != d->gen || c->holder != me)
		return refuse(msg, s, me, BATON_V_CUSTODY);
	if ((kind == BATON_CALL || kind == BATON_RETURN) && s->fn != BATON_GATEWAY_FN &&
	    !may_call(s->fn, d->key, d->fn, kind == BATON_RETURN))
		return refuse(msg, s, me, BATON_V_EDGE);
	if (kind == BATON_ALLOC) {
		/* the slot only proves the request: it stays with its holder */
		deliver(msg, BATON_GATEWAY_KEY);
		return SK_PASS;
	}
	c->holder = deliver(msg, d->key);
	c->moves++;
	return SK_PASS;
}

char LICENSE[] SEC("license") = "GPL";
