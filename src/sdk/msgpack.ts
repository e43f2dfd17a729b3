// msgpackr encodes into a caller-supplied buffer through a module-wide target. After
// encoding into a pool slot the target is pointed back at private scratch memory, or the
// next pack() anywhere in this process would write into a slot it does not own.
import { Packr } from 'msgpackr';

const packr = new Packr({ useRecords: false });
const scratch = Buffer.allocUnsafe(8192);

/** Encodes `value` at the start of `target`; returns the byte count, or -1 if it does not fit. */
export function packInto(value: unknown, target: Buffer): number {
  packr.useBuffer(target);
  try {
    const out = packr.pack(value);
    if (out.buffer === target.buffer && out.byteOffset === target.byteOffset) return out.length;
    // msgpackr outgrew the target and moved to its own memory
    if (out.length > target.length) return -1;
    out.copy(target);
    return out.length;
  } finally {
    packr.useBuffer(scratch);
  }
}

export function unpackFrom(bytes: Buffer): unknown {
  return packr.unpack(bytes);
}
