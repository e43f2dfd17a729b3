// Where things sit in the pool memfd. Every process of a chain maps the same bytes, so this
// layout is the contract between the gateway and the workers. It holds slots and nothing
// else: the geometry comes from the deployment, and which slot belongs to which request is
// the gateway's own state (src/gateway/custody.ts) — nothing a worker could overwrite.
//
//  [slot 0][slot 1]...   slot: [slot header SLOT_HEADER B][payload: slotSize - SLOT_HEADER B]
import { MAX_SLOTS } from '../descriptor/layout.ts';

export { MAX_SLOTS };
export const PAGE = 4096;

export const SLOT_HEADER = 1024;
/** Byte offsets inside a slot header. */
export const S = {
  metaLen: 12, // u16 request metadata length (the gateway writes it)
  typeLen: 14, // u8 response content-type length
  traceCount: 15, // u8 hops recorded (saturates at TRACE_MAX)
  trace: 32, // TRACE_MAX entries of TRACE_ENTRY bytes
  type: 224, // response content-type (ASCII, TYPE_MAX bytes)
  meta: 288, // request metadata (method, content type, url: Pool.writeMeta), META_MAX bytes
} as const;
export const TRACE_MAX = 8;
export const TRACE_ENTRY = 24; // u16 fnId, u16 key, u32 sent, u32 bind, u32 recv, u32 start, u32 end
export const TYPE_MAX = 64;
export const META_MAX = SLOT_HEADER - S.meta;

export const MIN_SLOT_SIZE = SLOT_HEADER + PAGE;
/** The largest slot: lengths and sizes are u32 in descriptors and the kernel's checks. */
export const MAX_SLOT_SIZE = 1024 ** 3;
/** A pool stays below 4 GiB: a Node Buffer over it, and offsets in it, are 32-bit. */
export const MAX_POOL_BYTES = 2 ** 32 - 1;

export interface PoolGeometry {
  slotSize: number;
  slotCount: number;
}

export function poolBytes(g: PoolGeometry): number {
  return g.slotSize * g.slotCount;
}

/** What is wrong with a geometry, in words a chain file's author can act on; [] if nothing. */
export function geometryProblems(g: PoolGeometry): string[] {
  const problems: string[] = [];
  const { slotSize, slotCount } = g;
  if (!Number.isInteger(slotSize) || slotSize < MIN_SLOT_SIZE) {
    problems.push(`pool.slotSize: at least ${MIN_SLOT_SIZE} bytes (a ${SLOT_HEADER}-byte header and a 4 KiB payload)`);
  } else if (slotSize > MAX_SLOT_SIZE) {
    problems.push(`pool.slotSize: ${bytes(slotSize)} is more than the largest slot, ${bytes(MAX_SLOT_SIZE)}`);
  } else if (slotSize % 8 !== 0) {
    problems.push('pool.slotSize: must be a multiple of 8');
  }
  if (!Number.isInteger(slotCount) || slotCount < 1 || slotCount > MAX_SLOTS) problems.push(`pool.slots: 1..${MAX_SLOTS}`);
  if (problems.length === 0 && poolBytes(g) > MAX_POOL_BYTES) {
    problems.push(
      `pool: ${slotCount} slots × ${bytes(slotSize)} is ${bytes(poolBytes(g))}; a pool must stay below 4 GiB: lower pool.slots or pool.slotSize`,
    );
  }
  return problems;
}

function bytes(n: number): string {
  for (const [unit, size] of [['GiB', 1024 ** 3], ['MiB', 1024 ** 2], ['KiB', 1024]] as const) {
    if (n >= size) return `${+(n / size).toFixed(2)} ${unit}`;
  }
  return `${n} bytes`;
}
