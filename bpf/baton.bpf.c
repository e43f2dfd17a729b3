// SPDX-License-Identifier: GPL-2.0
/* baton's data plane in the kernel: every descriptor sent by a socket in sock_map is
 * redirected to the ingress queue of the socket whose key is the descriptor's first u32. */
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

	long verdict = bpf_msg_redirect_map(msg, &baton_socks, key, BPF_F_INGRESS);
	struct baton_counters *c = bpf_map_lookup_elem(&baton_counters, &key);
	if (verdict == SK_PASS) {
		if (c)
			__sync_fetch_and_add(&c->redirected, 1);
		return SK_PASS;
	}
	/* No socket under that key. Dropping would fail the sender's sendmsg with EACCES and
	 * Node would destroy the sender's socket. Passing instead lets the bytes travel the
	 * real TCP connection to the peer end, which the gateway holds and reads as dead letter. */
	__u32 slot = key < BATON_MAX_KEYS ? key : BATON_MAX_KEYS - 1;
	c = bpf_map_lookup_elem(&baton_counters, &slot);
	if (c)
		__sync_fetch_and_add(&c->dead_letter, 1);
	return SK_PASS;
}

char LICENSE[] SEC("license") = "GPL";
