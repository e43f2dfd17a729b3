// SPDX-License-Identifier: GPL-2.0
/* baton's data plane in the kernel. Every descriptor sent by a socket in baton_socks is
 * redirected to the ingress queue of the socket its first u32 names: a sockmap key, or a
 * function address, which is bound here to an idle instance of that function (late
 * binding's fast path) or, with none idle, to the dispatcher (key 0). */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include "baton_shared.h"

struct {
	__uint(type, BPF_MAP_TYPE_SOCKMAP);
	__uint(max_entries, BATON_MAX_KEYS);
	__type(key, __u32);
	__type(value, __u32);
} baton_socks SEC(".maps");

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

static __always_inline void count(__u32 key, int field)
{
	__u32 k = key < BATON_MAX_KEYS ? key : BATON_MAX_KEYS - 1;
	struct baton_counters *c = bpf_map_lookup_elem(&baton_counters, &k);
	if (!c)
		return;
	if (field == 0)
		__sync_fetch_and_add(&c->redirected, 1);
	else if (field == 1)
		__sync_fetch_and_add(&c->dead_letter, 1);
	else if (field == 2)
		__sync_fetch_and_add(&c->bound_fast, 1);
	else
		__sync_fetch_and_add(&c->to_dispatcher, 1);
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

SEC("sk_msg")
int baton_route(struct sk_msg_md *msg)
{
	/* Node may write several descriptors in one sendmsg; without this the first one's
	 * verdict would carry all of them to the same socket. */
	bpf_msg_apply_bytes(msg, BATON_DESC_SIZE);

	void *data = msg->data, *end = msg->data_end;
	if (data + sizeof(__u32) > end) {
		/* The key straddles scatterlist pages: make the first bytes linear. */
		if (bpf_msg_pull_data(msg, 0, sizeof(__u32), 0))
			return SK_PASS;
		data = msg->data;
		end = msg->data_end;
		if (data + sizeof(__u32) > end)
			return SK_PASS;
	}
	__u32 key = *(__u32 *)data;

	if (key & BATON_FN_ADDR) {
		__u32 target = take_idle(key & 0xffff);
		if (target) {
			if (bpf_msg_redirect_map(msg, &baton_socks, target, BPF_F_INGRESS) == SK_PASS) {
				count(target, 2);
				count(target, 0);
				return SK_PASS;
			}
			/* the instance died with its token idle: the dispatcher sorts it out */
		}
		key = 0;
		count(0, 3);
	}

	if (bpf_msg_redirect_map(msg, &baton_socks, key, BPF_F_INGRESS) == SK_PASS) {
		count(key, 0);
		return SK_PASS;
	}
	/* No socket under that key. Dropping would fail the sender's sendmsg with EACCES and
	 * Node would destroy the sender's socket. Passing instead lets the bytes travel the
	 * real TCP connection to the peer end, which the gateway holds and reads as dead letter. */
	count(key, 1);
	return SK_PASS;
}

char LICENSE[] SEC("license") = "GPL";
