import { describe, expect, it } from 'vitest';
import { FrameReader } from '../../src/dataplane/framing.ts';
import { blankDescriptor, DESC_SIZE, encode, F, Kind } from '../../src/descriptor/index.ts';

/** A stream of `n` descriptors whose request ids are 1..n. */
function stream(n: number): Buffer {
  return Buffer.concat([...Array(n)].map((_, i) => encode(blankDescriptor({ key: 0, kind: Kind.Idle, reqId: i + 1 }))));
}

function collect(): { reader: FrameReader; ids: number[]; skipped: number[] } {
  const ids: number[] = [];
  const skipped: number[] = [];
  const reader = new FrameReader(
    (f) => {
      expect(f.length).toBe(DESC_SIZE);
      ids.push(f.readUInt32LE(F.reqId));
    },
    (n) => skipped.push(n),
  );
  return { reader, ids, skipped };
}

let seed = 1;
const rand = (max: number) => ((seed = (seed * 1103515245 + 12345) & 0x7fffffff) % max) + 1;

/** Pushes `all` into `reader` in pieces of 1..`max` bytes. */
function feed(reader: FrameReader, all: Buffer, max: number): void {
  for (let at = 0; at < all.length; ) {
    const len = Math.min(rand(max), all.length - at);
    reader.push(all.subarray(at, at + len));
    at += len;
  }
}

describe('FrameReader', () => {
  it('yields every descriptor once, in order, however the stream is cut', () => {
    const all = stream(200);
    for (let round = 0; round < 20; round++) {
      const { reader, ids, skipped } = collect();
      feed(reader, all, 3 * DESC_SIZE);
      expect(ids).toEqual([...Array(200)].map((_, i) => i + 1));
      expect(skipped).toEqual([]);
      expect(reader.pending).toBe(0);
    }
  });

  it('keeps a split frame intact after the callee held on to the previous one', () => {
    const frames: Buffer[] = [];
    const reader = new FrameReader((f) => frames.push(f));
    const [a, b] = [stream(1), encode(blankDescriptor({ key: 0, kind: Kind.Idle, reqId: 2 }))];
    reader.push(a.subarray(0, 10));
    reader.push(Buffer.concat([a.subarray(10), b.subarray(0, 5)]));
    reader.push(b.subarray(5));
    expect(frames.map((f) => f.readUInt32LE(F.reqId))).toEqual([1, 2]);
    expect(frames[0]!.equals(a)).toBe(true);
  });

  it('skips bytes that break alignment and finds the next descriptor, however the stream is cut', () => {
    const good = stream(6);
    // 10 stray bytes after the 2nd descriptor, 3 after the 4th, a whole garbage frame at the end
    const all = Buffer.concat([good.subarray(0, 128), Buffer.alloc(10, 0xab), good.subarray(128, 256), Buffer.alloc(3, 1), good.subarray(256), Buffer.alloc(64, 0xcd)]);
    for (let round = 0; round < 20; round++) {
      const { reader, ids, skipped } = collect();
      feed(reader, all, 2 * DESC_SIZE);
      expect(ids).toEqual([1, 2, 3, 4, 5, 6]);
      expect(skipped.reduce((s, n) => s + n, 0) + reader.pending).toBe(10 + 3 + 64);
    }
  });
});
