// Encode and decode descriptors. Decoding validates everything a receiver can check by
// itself; ownership of the slot is checked against the pool (see pool/pool.ts).
import { DESC_MAGIC, DESC_SIZE, DESC_VERSION, F, Kind } from './layout.ts';

export interface Descriptor {
  key: number;
  kind: Kind;
  reqId: number;
  gen: number;
  slot: number;
  length: number;
  chainId: number;
  hop: number;
  fnId: number;
  status: number;
  sender: number;
  /** CALL: the calling instance's key for a nested call (ctx.call), 0 for a chain's hop;
   *  RETURN: 1 when the called function failed (the payload is its error). */
  aux?: number;
  tArrive: number;
  tSent: number;
  tBind: number;
  tStart: number;
  tEnd: number;
}

/** A descriptor with every field zero except those given (notices, rejections, tests). */
export function blankDescriptor(fields: Partial<Descriptor> & Pick<Descriptor, 'key' | 'kind'>): Descriptor {
  return {
    reqId: 0, gen: 0, slot: 0, length: 0, chainId: 0, hop: 0, fnId: 0, status: 0, sender: 0,
    tArrive: 0, tSent: 0, tBind: 0, tStart: 0, tEnd: 0, ...fields,
  };
}

/** Writes `d` into `buf` at `at` (caller-supplied memory: no allocation). */
export function encodeInto(d: Descriptor, buf: Buffer, at = 0): void {
  buf.writeUInt32LE(d.key, at + F.key);
  buf.writeUInt16LE(DESC_MAGIC, at + F.magic);
  buf.writeUInt8(DESC_VERSION, at + F.version);
  buf.writeUInt8(d.kind, at + F.kind);
  buf.writeUInt32LE(d.reqId, at + F.reqId);
  buf.writeUInt32LE(d.gen, at + F.gen);
  buf.writeUInt32LE(d.slot, at + F.slot);
  buf.writeUInt32LE(d.length, at + F.length);
  buf.writeUInt16LE(d.chainId, at + F.chainId);
  buf.writeUInt16LE(d.hop, at + F.hop);
  buf.writeUInt16LE(d.fnId, at + F.fnId);
  buf.writeUInt16LE(d.status, at + F.status);
  buf.writeUInt32LE(d.sender, at + F.sender);
  buf.writeUInt32LE(d.aux ?? 0, at + F.aux);
  buf.writeDoubleLE(d.tArrive, at + F.tArrive);
  buf.writeUInt32LE(clampU32(d.tSent), at + F.tSent);
  buf.writeUInt32LE(clampU32(d.tBind), at + F.tBind);
  buf.writeUInt32LE(clampU32(d.tStart), at + F.tStart);
  buf.writeUInt32LE(clampU32(d.tEnd), at + F.tEnd);
}

export function encode(d: Descriptor): Buffer {
  const buf = Buffer.allocUnsafe(DESC_SIZE);
  encodeInto(d, buf);
  return buf;
}

export class DescriptorError extends Error {
  constructor(
    message: string,
    /** The request id, when the bytes carried a readable one (lets the receiver answer it). */
    readonly reqId?: number,
  ) {
    super(message);
    this.name = 'DescriptorError';
  }
}

/** Decodes the descriptor at `at`; throws DescriptorError on anything malformed. */
export function decode(buf: Buffer, at = 0): Descriptor {
  if (buf.length - at < DESC_SIZE) throw new DescriptorError(`short descriptor: ${buf.length - at} of ${DESC_SIZE} bytes`);
  const magic = buf.readUInt16LE(at + F.magic);
  if (magic !== DESC_MAGIC) throw new DescriptorError(`bad magic 0x${magic.toString(16)}`);
  const reqId = buf.readUInt32LE(at + F.reqId);
  const fail = (why: string): never => {
    throw new DescriptorError(why, reqId);
  };
  const version = buf.readUInt8(at + F.version);
  if (version !== DESC_VERSION) fail(`unsupported version ${version}`);
  const kind = buf.readUInt8(at + F.kind);
  if (kind < Kind.Call || kind > Kind.Ack) fail(`unknown kind ${kind}`);
  if (kind !== Kind.Idle && (reqId === 0 || reqId > 0x7fffffff)) fail(`bad request id ${reqId}`);
  const aux = buf.readUInt32LE(at + F.aux);
  if (aux !== 0 && kind !== Kind.Call && kind !== Kind.Return) fail('aux set on a kind without one');
  const tArrive = buf.readDoubleLE(at + F.tArrive);
  if (!Number.isFinite(tArrive) || tArrive < 0) fail('bad arrival timestamp');
  const status = buf.readUInt16LE(at + F.status);
  // a chain's answer is final: no 1xx (the client would wait for another response)
  if (kind === Kind.Reply && (status < 200 || status > 599)) fail(`bad status ${status}`);
  if (kind === Kind.Error && (status < 400 || status > 599)) fail(`bad error status ${status}`);
  if (kind === Kind.Return && (status < 200 || status > 599)) fail(`bad status ${status}`);
  return {
    key: buf.readUInt32LE(at + F.key),
    kind,
    reqId,
    gen: buf.readUInt32LE(at + F.gen),
    slot: buf.readUInt32LE(at + F.slot),
    length: buf.readUInt32LE(at + F.length),
    chainId: buf.readUInt16LE(at + F.chainId),
    hop: buf.readUInt16LE(at + F.hop),
    fnId: buf.readUInt16LE(at + F.fnId),
    status,
    sender: buf.readUInt32LE(at + F.sender),
    aux,
    tArrive,
    tSent: buf.readUInt32LE(at + F.tSent),
    tBind: buf.readUInt32LE(at + F.tBind),
    tStart: buf.readUInt32LE(at + F.tStart),
    tEnd: buf.readUInt32LE(at + F.tEnd),
  };
}

/** Rounds to an integer in u32 range (timestamps saturate rather than wrap). */
export function clampU32(v: number): number {
  return v <= 0 ? 0 : v >= 0xffffffff ? 0xffffffff : Math.round(v);
}
