// The descriptor: the only thing that moves between processes once a request is in the
// pool. 64 bytes, little-endian, offsets into the pool (never pointers: every process maps
// the pool at its own address). Mirrors bpf/baton_shared.h: the first u32 is the sockmap
// key the SK_MSG program routes on.
export const DESC_SIZE = 64;
export const DESC_MAGIC = 0xba70;
export const DESC_VERSION = 2;

/** Byte offsets of each field. */
export const F = {
  key: 0, // u32 sockmap key of the receiver, or FN_ADDR | function id (late binding)
  magic: 4, // u16
  version: 6, // u8
  kind: 7, // u8 Kind
  reqId: 8, // u32 request id
  gen: 12, // u32 slot generation at allocation (the kernel checks both against the slot's custody)
  slot: 16, // u32 pool slot holding the payload (at the start of its payload area)
  length: 20, // u32 payload length
  chainId: 24, // u16
  hop: 26, // u16 index of the chain step the receiver runs
  fnId: 28, // u16 function the receiver runs (GATEWAY_FN for replies)
  status: 30, // u16 HTTP status (replies and errors)
  sender: 32, // u32 sockmap key of the sender (the kernel checks it against the socket)
  aux: 36, // u32 CALL: the caller's key for a nested call (0: a chain's hop); RETURN: 1 if the callee failed
  tArrive: 40, // f64 µs on CLOCK_MONOTONIC when the gateway accepted the request
  tSent: 48, // u32 µs after tArrive when this descriptor was sent
  tBind: 52, // u32 µs after tArrive when the dispatcher bound it to an instance (0: bound at send)
  tStart: 56, // u32 µs after tArrive when the sender's handler started
  tEnd: 60, // u32 µs after tArrive when the sender's handler ended
} as const;

export const enum Kind {
  Call = 1, // run the function at `hop` of the chain
  Reply = 2, // the chain's result, for the gateway
  Error = 3, // a function failed; payload is a JSON error body, for the gateway. Empty (length 0):
  //            the instance hands back a descriptor it did not run (status 502: could not serve it;
  //            504: its deadline had passed)
  Idle = 4, // an instance finished one descriptor (late binding), for the dispatcher; no request
  Return = 5, // a called function's result (ctx.call), for the instance that called it
  Alloc = 6, // a function asks for `length` slots to call with; `slot` (one it holds) proves the request
  Grant = 7, // the gateway gives a slot for calls (status 503, no slot: none free)
  Ack = 8, // the kernel did what the sender's descriptor asked (queued a call, took an Idle
  //          notice) and hands the bytes back to it: ignored; nobody may send one
}

export const GATEWAY_KEY = 0;
/** The slot of a Grant that failed (no slot free): the kernel moves no custody for it. */
export const NO_SLOT = 0xffffffff;
/** A routing key with this bit set addresses a function, not an instance (bpf/baton_shared.h). */
export const FN_ADDR = 0x80000000;
export const MAX_KEYS = 4096;
export const MAX_SLOTS = 65536;
export const MAX_FUNCTIONS = 256;
export const IDLE_WORDS = 8;
/** u64 words of late binding's state per function (struct baton_idle). */
export const IDLE_STRIDE = 24;
export const MAX_TOKENS = IDLE_WORDS * 64;
/** The holder of a slot whose descriptor waits in a kernel queue (BATON_HOLDER_QUEUED). */
export const HOLDER_QUEUED = 0xfffffff0;
/** Request classes with a kernel queue each per function, and where a slot's class sits in its
 *  custody entry's `queue` word (the low half is the function whose queue it waits in, + 1). */
export const CLASS_QUEUES = 3;
export const CLASS_SHIFT = 16;
export const QUEUE_FN = 0xffff;

export function fnAddress(fnId: number): number {
  return (FN_ADDR | fnId) >>> 0;
}
export const GATEWAY_FN = 0xffff;
