// Where things sit in the pool memfd. Every process maps the same bytes, so this layout is
// the contract between the gateway and the workers.
//
//  [pool header 64 B][slot state: i32 per slot][pad to 4 KiB] [slot 0][slot 1]...
//  slot: [slot header SLOT_HEADER B][payload: slotSize - SLOT_HEADER B]
export const POOL_MAGIC = 0x4e544142; // "BATN"
export const POOL_VERSION = 1;
export const PAGE = 4096;

export const P = { magic: 0, version: 4, slotSize: 8, slotCount: 12, slotsBase: 16, stateBase: 64 } as const;

export const SLOT_HEADER = 1024;
/** Byte offsets inside a slot header. */
export const S = {
  reqId: 0, // u32 owner request (copy of the state word, for readers)
  gen: 4, // u32 bumped on every allocation
  holder: 8, // u32 sockmap key of the instance that holds the request now
  metaLen: 12, // u16
  typeLen: 14, // u8 response content-type length
  traceCount: 15, // u8 hops recorded (saturates at TRACE_MAX)
  trace: 32, // TRACE_MAX entries of TRACE_ENTRY bytes
  type: 224, // response content-type (ASCII, TYPE_MAX bytes)
  meta: 288, // request metadata (msgpack), META_MAX bytes
} as const;
export const TRACE_MAX = 8;
export const TRACE_ENTRY = 24; // u16 fnId, u16 key, u32 sent, u32 bind, u32 recv, u32 start, u32 end
export const TYPE_MAX = 64;
export const META_MAX = SLOT_HEADER - S.meta;

export const MIN_SLOT_SIZE = SLOT_HEADER + PAGE;
export const MAX_SLOTS = 65536;

export interface PoolGeometry {
  slotSize: number;
  slotCount: number;
}

export function slotsBase(slotCount: number): number {
  return Math.ceil((P.stateBase + 4 * slotCount) / PAGE) * PAGE;
}

export function poolBytes(g: PoolGeometry): number {
  return slotsBase(g.slotCount) + g.slotSize * g.slotCount;
}
