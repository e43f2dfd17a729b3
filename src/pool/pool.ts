// The shared-memory pool: fixed-size slots in one memfd mapped by the gateway and every
// worker. A slot carries one request from arrival until its answer is written out: its
// payload, and a header with the request's metadata (the gateway writes it), the response
// content type and the hop trace (workers write them). Which request owns a slot and who
// holds it is not kept here (src/gateway/custody.ts).
import { batonError } from '../errors.ts';
import { clampU32 } from '../descriptor/index.ts';
import { native } from '../native/index.ts';
import {
  META_MAX, S, SLOT_HEADER, TRACE_ENTRY, TRACE_MAX, TYPE_MAX,
  geometryProblems, poolBytes, type PoolGeometry,
} from './layout.ts';

export interface RequestMeta {
  method: string;
  url: string;
  contentType?: string;
}

/** Bytes before a request's metadata strings: method length (u8), content-type length (u16). */
const META_HEAD = 3;
/** The content-type length that says the request had none (an empty one is length 0). */
const NO_TYPE = 0xffff;

/** Set in a trace entry's key: a nested call's entry (ctx.call), copied into its caller's trace. */
export const CALL_TRACE_BIT = 0x8000;

export interface HopTrace {
  fnId: number;
  key: number;
  sent: number; // µs after arrival: the sender sent the descriptor
  bind: number; // bound to this instance (= sent when bound in the kernel at send time)
  recv: number; // this instance read it
  start: number; // its handler started (after any wait in the instance's own queue)
  end: number;
}

export class Pool {
  readonly bytes: Buffer;
  readonly slotSize: number;
  readonly slotCount: number;
  /** Payload bytes a slot holds. */
  readonly capacity: number;

  private constructor(
    buffer: ArrayBuffer,
    /** The memfd; -1 once closed. Only the creator passes it on. */
    public fd: number,
    g: PoolGeometry,
  ) {
    this.bytes = Buffer.from(buffer);
    this.slotSize = g.slotSize;
    this.slotCount = g.slotCount;
    this.capacity = this.slotSize - SLOT_HEADER;
  }

  /** Creates a pool in a new memfd (the gateway does this once). */
  static create(g: PoolGeometry): Pool {
    checkGeometry(g);
    const { fd, buffer } = native((a) => a.createPool(poolBytes(g)));
    return new Pool(buffer, fd, g);
  }

  /** Maps a pool whose memfd this process inherited, of the geometry it was told (workers). */
  static attach(fd: number, g: PoolGeometry): Pool {
    checkGeometry(g);
    return new Pool(native((a) => a.mapPool(fd, poolBytes(g))), fd, g);
  }

  /** Empties a slot's header for a new request (its payload is overwritten as it arrives). */
  reset(slot: number): void {
    const h = this.header(slot);
    this.bytes.writeUInt16LE(0, h + S.metaLen);
    this.bytes.writeUInt8(0, h + S.typeLen);
    this.bytes.writeUInt8(0, h + S.traceCount);
  }

  /** A zero-copy view of the first `length` payload bytes of `slot`, bounds-checked. */
  view(slot: number, length: number): Buffer {
    if (!Number.isInteger(length) || length < 0 || length > this.capacity) {
      throw batonError('BATON_ERR_POOL', `length ${length} is outside a slot's ${this.capacity}-byte payload`);
    }
    const start = this.header(slot) + SLOT_HEADER;
    return this.bytes.subarray(start, start + length);
  }

  /** The whole payload area of a slot, for writing. */
  payload(slot: number): Buffer {
    return this.view(slot, this.capacity);
  }

  /** What is wrong with a received descriptor's slot and length, or undefined. */
  check(d: { slot: number; length: number }): string | undefined {
    if (!Number.isInteger(d.slot) || d.slot < 0 || d.slot >= this.slotCount) return `slot ${d.slot} is not in the pool`;
    if (d.length > this.capacity) return `length ${d.length} runs past the end of a slot`;
    return undefined;
  }

  /** Writes a request's metadata: [u8 method length][u16 content-type length][method][content
   *  type][url], UTF-8 (written per request on the gateway's hot path: no encoder, no copy). */
  writeMeta(slot: number, meta: RequestMeta): boolean {
    const head = this.header(slot);
    const h = head + S.meta;
    const type = meta.contentType ?? '';
    const m = Buffer.byteLength(meta.method);
    const t = Buffer.byteLength(type);
    const u = Buffer.byteLength(meta.url);
    if (m > 0xff || META_HEAD + m + t + u > META_MAX) return false;
    const b = this.bytes;
    b[h] = m;
    b.writeUInt16LE(meta.contentType === undefined ? NO_TYPE : t, h + 1);
    let at = h + META_HEAD;
    at += b.write(meta.method, at, m, 'utf8');
    if (t) at += b.write(type, at, t, 'utf8');
    b.write(meta.url, at, u, 'utf8');
    b.writeUInt16LE(META_HEAD + m + t + u, head + S.metaLen);
    return true;
  }

  /** A request's metadata. A slot whose header does not hold whole metadata (a worker may
   *  write any byte of its slot) reads as GET / rather than failing. */
  readMeta(slot: number): RequestMeta {
    const h = this.header(slot);
    const len = this.bytes.readUInt16LE(h + S.metaLen);
    const at = h + S.meta;
    if (len < META_HEAD || len > META_MAX) return { method: 'GET', url: '/' };
    const m = this.bytes[at]!;
    const rawType = this.bytes.readUInt16LE(at + 1);
    const t = rawType === NO_TYPE ? 0 : rawType;
    if (META_HEAD + m + t > len) return { method: 'GET', url: '/' };
    const text = (from: number, n: number) => this.bytes.toString('utf8', at + from, at + from + n);
    const meta: RequestMeta = { method: text(META_HEAD, m), url: text(META_HEAD + m + t, len - META_HEAD - m - t) };
    if (rawType !== NO_TYPE) meta.contentType = text(META_HEAD + m, t);
    return meta;
  }

  /** Sets the response content-type; false if it is longer than the header field. */
  writeType(slot: number, type: string): boolean {
    const h = this.header(slot);
    const n = Buffer.byteLength(type, 'latin1');
    if (n > TYPE_MAX) return false;
    this.bytes.write(type, h + S.type, 'latin1');
    this.bytes.writeUInt8(n, h + S.typeLen);
    return true;
  }

  readType(slot: number): string | undefined {
    const h = this.header(slot);
    const n = Math.min(this.bytes.readUInt8(h + S.typeLen), TYPE_MAX);
    return n === 0 ? undefined : this.bytes.toString('latin1', h + S.type, h + S.type + n);
  }

  appendTrace(slot: number, t: HopTrace): void {
    const h = this.header(slot);
    const n = this.bytes.readUInt8(h + S.traceCount);
    if (n >= TRACE_MAX) return;
    const at = h + S.trace + n * TRACE_ENTRY;
    this.bytes.writeUInt16LE(t.fnId, at);
    this.bytes.writeUInt16LE(t.key & 0xffff, at + 2);
    this.bytes.writeUInt32LE(clampU32(t.sent), at + 4);
    this.bytes.writeUInt32LE(clampU32(t.bind), at + 8);
    this.bytes.writeUInt32LE(clampU32(t.recv), at + 12);
    this.bytes.writeUInt32LE(clampU32(t.start), at + 16);
    this.bytes.writeUInt32LE(clampU32(t.end), at + 20);
    this.bytes.writeUInt8(n + 1, h + S.traceCount);
  }

  readTrace(slot: number): HopTrace[] {
    const h = this.header(slot);
    const n = Math.min(this.bytes.readUInt8(h + S.traceCount), TRACE_MAX);
    const out: HopTrace[] = [];
    for (let i = 0; i < n; i++) {
      const at = h + S.trace + i * TRACE_ENTRY;
      out.push({
        fnId: this.bytes.readUInt16LE(at),
        key: this.bytes.readUInt16LE(at + 2),
        sent: this.bytes.readUInt32LE(at + 4),
        bind: this.bytes.readUInt32LE(at + 8),
        recv: this.bytes.readUInt32LE(at + 12),
        start: this.bytes.readUInt32LE(at + 16),
        end: this.bytes.readUInt32LE(at + 20),
      });
    }
    return out;
  }

  /** Closes this process's fd (the mapping goes when the last view is collected). */
  close(): void {
    if (this.fd >= 0) native((a) => a.closeFd(this.fd));
    this.fd = -1;
  }

  private header(slot: number): number {
    if (!Number.isInteger(slot) || slot < 0 || slot >= this.slotCount) {
      throw batonError('BATON_ERR_POOL', `slot ${slot} out of range 0..${this.slotCount - 1}`);
    }
    return slot * this.slotSize;
  }
}

function checkGeometry(g: PoolGeometry): void {
  const problems = geometryProblems(g);
  if (problems.length) throw batonError('BATON_ERR_POOL', problems.join('; '));
}
