import { describe, expect, it } from 'vitest';
import { decode, DESC_SIZE, DescriptorError, encode, F, Kind, type Descriptor } from '../../src/descriptor/index.ts';

const base: Descriptor = {
  key: 7, kind: Kind.Call, reqId: 12345, gen: 9, slot: 31, length: 1000, chainId: 2, hop: 1, fnId: 3, status: 0,
  sender: 4, aux: 5, tArrive: 123456789.25, tSent: 10, tBind: 11, tStart: 12, tEnd: 13,
};

describe('descriptor codec', () => {
  it('round-trips every field in 64 little-endian bytes', () => {
    const buf = encode(base);
    expect(buf.length).toBe(DESC_SIZE);
    expect(buf.readUInt32LE(0)).toBe(7); // the routing key the BPF program reads
    expect(decode(buf)).toEqual(base);
  });

  it('saturates timestamps instead of wrapping', () => {
    const d = decode(encode({ ...base, tSent: -5, tEnd: 2 ** 40 }));
    expect(d.tSent).toBe(0);
    expect(d.tEnd).toBe(0xffffffff);
  });

  const corrupt: [string, (b: Buffer) => void, RegExp][] = [
    ['bad magic', (b) => b.writeUInt16LE(0x1234, F.magic), /bad magic/],
    ['unknown version', (b) => b.writeUInt8(9, F.version), /version/],
    ['unknown kind', (b) => b.writeUInt8(42, F.kind), /kind/],
    ['request id 0', (b) => b.writeUInt32LE(0, F.reqId), /request id/],
    ['request id above 2^31', (b) => b.writeUInt32LE(0x80000000, F.reqId), /request id/],
    ['aux on a reply', (b) => (b.writeUInt8(Kind.Reply, F.kind), b.writeUInt16LE(200, F.status), b.writeUInt32LE(1, F.aux)), /aux/],
    ['return with status 0', (b) => (b.writeUInt8(Kind.Return, F.kind), b.writeUInt16LE(0, F.status)), /status 0/],
    ['NaN arrival', (b) => b.writeDoubleLE(NaN, F.tArrive), /timestamp/],
    ['reply with status 0', (b) => (b.writeUInt8(Kind.Reply, F.kind), b.writeUInt16LE(0, F.status)), /status/],
    ['reply with an informational status', (b) => (b.writeUInt8(Kind.Reply, F.kind), b.writeUInt16LE(101, F.status)), /status 101/],
    ['error with a success status', (b) => (b.writeUInt8(Kind.Error, F.kind), b.writeUInt16LE(200, F.status)), /status 200/],
  ];
  it.each(corrupt)('rejects %s', (_name, mutate, message) => {
    const buf = encode({ ...base, aux: 0 });
    mutate(buf);
    expect(() => decode(buf)).toThrow(DescriptorError);
    expect(() => decode(buf)).toThrow(message);
  });

  it('rejects a short buffer and reports the request id when it is readable', () => {
    expect(() => decode(Buffer.alloc(10))).toThrow(/short/);
    const buf = encode(base);
    buf.writeUInt8(42, F.kind);
    expect(() => decode(buf)).toThrow(expect.objectContaining({ name: 'DescriptorError', reqId: 12345 }));
  });
});
