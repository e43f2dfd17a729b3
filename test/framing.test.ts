import { describe, expect, it } from 'vitest';
import { FrameReader } from '../src/dataplane/framing.ts';
import { DESC_SIZE } from '../src/descriptor/index.ts';

describe('FrameReader', () => {
  it('yields every descriptor once, in order, however the stream is cut', () => {
    const n = 200;
    const stream = Buffer.alloc(n * DESC_SIZE);
    for (let i = 0; i < n; i++) stream.writeUInt32LE(i, i * DESC_SIZE + 8);
    let seed = 1;
    const rand = (max: number) => ((seed = (seed * 1103515245 + 12345) & 0x7fffffff) % max) + 1;
    for (let round = 0; round < 20; round++) {
      const seen: number[] = [];
      const reader = new FrameReader((f) => {
        expect(f.length).toBe(DESC_SIZE);
        seen.push(f.readUInt32LE(8));
      });
      for (let at = 0; at < stream.length; ) {
        const len = Math.min(rand(3 * DESC_SIZE), stream.length - at);
        reader.push(stream.subarray(at, at + len));
        at += len;
      }
      expect(seen).toEqual([...Array(n).keys()]);
      expect(reader.pending).toBe(0);
    }
  });

  it('keeps a split frame intact after the callee held on to the previous one', () => {
    const frames: Buffer[] = [];
    const reader = new FrameReader((f) => frames.push(f));
    const a = Buffer.alloc(DESC_SIZE, 1);
    const b = Buffer.alloc(DESC_SIZE, 2);
    reader.push(a.subarray(0, 10));
    reader.push(Buffer.concat([a.subarray(10), b.subarray(0, 5)]));
    reader.push(b.subarray(5));
    expect(frames.map((f) => f[0])).toEqual([1, 2]);
    expect(frames[0]!.equals(a)).toBe(true);
  });
});
