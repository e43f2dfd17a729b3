// The shared-memory pool: fixed-size slots in one memfd mapped by the gateway and every
// worker. A slot belongs to one request from arrival until its answer is written out.
// Allocation and free are compare-and-swap on a per-slot i32 state word holding the owner
// request id (0 = free), so any process may allocate or free without a lock.
import { pack, unpack } from 'msgpackr';
import { batonError } from '../errors.ts';
import { DescriptorError, clampU32, type Descriptor } from '../descriptor/index.ts';
import { native } from '../native/index.ts';
import {
  MAX_SLOTS, META_MAX, MIN_SLOT_SIZE, P, POOL_MAGIC, POOL_VERSION, S, SLOT_HEADER, TRACE_ENTRY, TRACE_MAX, TYPE_MAX,
  poolBytes, slotsBase, type PoolGeometry,
} from './layout.ts';

export interface RequestMeta {
  method: string;
  url: string;
  contentType?: string;
}

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
  private readonly state: Int32Array;
  private readonly base: number;
  private hint = 0;

  private constructor(
    buffer: ArrayBuffer,
    /** The memfd; -1 once closed. Only the creator passes it on. */
    public fd: number,
  ) {
    this.bytes = Buffer.from(buffer);
    this.slotSize = this.bytes.readUInt32LE(P.slotSize);
    this.slotCount = this.bytes.readUInt32LE(P.slotCount);
    this.base = this.bytes.readUInt32LE(P.slotsBase);
    this.capacity = this.slotSize - SLOT_HEADER;
    this.state = new Int32Array(buffer, P.stateBase, this.slotCount);
  }

  /** Creates a pool in a new memfd (the gateway does this once). */
  static create(g: PoolGeometry): Pool {
    checkGeometry(g);
    const { fd, buffer } = native((a) => a.createPool(poolBytes(g)));
    const head = Buffer.from(buffer, 0, 64);
    head.writeUInt32LE(POOL_MAGIC, P.magic);
    head.writeUInt32LE(POOL_VERSION, P.version);
    head.writeUInt32LE(g.slotSize, P.slotSize);
    head.writeUInt32LE(g.slotCount, P.slotCount);
    head.writeUInt32LE(slotsBase(g.slotCount), P.slotsBase);
    return new Pool(buffer, fd);
  }

  /** Maps a pool whose memfd this process inherited (workers do this). */
  static attach(fd: number, g: PoolGeometry): Pool {
    checkGeometry(g);
    const buffer = native((a) => a.mapPool(fd, poolBytes(g)));
    const head = Buffer.from(buffer, 0, 64);
    if (head.readUInt32LE(P.magic) !== POOL_MAGIC || head.readUInt32LE(P.version) !== POOL_VERSION) {
      throw batonError('BATON_ERR_POOL', `fd ${fd} is not a baton pool of this version`);
    }
    if (head.readUInt32LE(P.slotSize) !== g.slotSize || head.readUInt32LE(P.slotCount) !== g.slotCount) {
      throw batonError('BATON_ERR_POOL', 'pool geometry does not match the one announced');
    }
    return new Pool(buffer, fd);
  }

  get geometry(): PoolGeometry {
    return { slotSize: this.slotSize, slotCount: this.slotCount };
  }

  /** Claims a free slot for `reqId` (1..2^31-1); undefined when every slot is taken. */
  alloc(reqId: number): number | undefined {
    if (!(reqId > 0 && reqId <= 0x7fffffff)) throw batonError('BATON_ERR_POOL', `bad owner id ${reqId}`);
    const n = this.slotCount;
    for (let i = 0; i < n; i++) {
      const slot = (this.hint + i) % n;
      if (this.state[slot] === 0 && Atomics.compareExchange(this.state, slot, 0, reqId) === 0) {
        this.hint = (slot + 1) % n;
        const h = this.header(slot);
        this.bytes.writeUInt32LE(reqId, h + S.reqId);
        this.bytes.writeUInt32LE((this.bytes.readUInt32LE(h + S.gen) + 1) >>> 0, h + S.gen);
        this.bytes.writeUInt32LE(0, h + S.holder);
        this.bytes.writeUInt16LE(0, h + S.metaLen);
        this.bytes.writeUInt8(0, h + S.typeLen);
        this.bytes.writeUInt8(0, h + S.traceCount);
        return slot;
      }
    }
    return undefined;
  }

  /** Frees `slot` if `reqId` owns it; false (and nothing changed) otherwise. */
  free(slot: number, reqId: number): boolean {
    this.checkSlot(slot);
    return Atomics.compareExchange(this.state, slot, reqId, 0) === reqId;
  }

  owner(slot: number): number {
    this.checkSlot(slot);
    return Atomics.load(this.state, slot);
  }

  freeCount(): number {
    let free = 0;
    for (let i = 0; i < this.slotCount; i++) if (Atomics.load(this.state, i) === 0) free++;
    return free;
  }

  gen(slot: number): number {
    return this.bytes.readUInt32LE(this.header(slot) + S.gen);
  }

  /** Offset in the pool where `slot`'s payload starts. */
  dataOffset(slot: number): number {
    return this.header(slot) + SLOT_HEADER;
  }

  /** A zero-copy view of `length` payload bytes at pool offset `offset`, bounds-checked. */
  view(offset: number, length: number): Buffer {
    const slot = this.slotOfOffset(offset);
    if (slot === undefined || length < 0 || offset + length > this.header(slot) + this.slotSize) {
      throw batonError('BATON_ERR_POOL', `range ${offset}+${length} is outside any slot's payload`);
    }
    return this.bytes.subarray(offset, offset + length);
  }

  /** The whole payload area of a slot, for writing. */
  payload(slot: number): Buffer {
    const start = this.dataOffset(slot);
    return this.bytes.subarray(start, start + this.capacity);
  }

  /** Checks a received descriptor against the pool; returns its slot or throws DescriptorError. */
  validate(d: Descriptor): number {
    const slot = this.slotOfOffset(d.offset);
    if (slot === undefined) throw new DescriptorError(`offset ${d.offset} is not inside a slot payload`, d.reqId);
    if (d.offset + d.length > this.header(slot) + this.slotSize) {
      throw new DescriptorError(`length ${d.length} runs past the end of slot ${slot}`, d.reqId);
    }
    if (this.owner(slot) !== d.reqId) throw new DescriptorError(`slot ${slot} is not owned by request ${d.reqId}`, d.reqId);
    if (this.gen(slot) !== d.gen) throw new DescriptorError(`stale descriptor for slot ${slot} (generation ${d.gen})`, d.reqId);
    return slot;
  }

  holder(slot: number): number {
    return this.bytes.readUInt32LE(this.header(slot) + S.holder);
  }

  setHolder(slot: number, key: number): void {
    this.bytes.writeUInt32LE(key, this.header(slot) + S.holder);
  }

  writeMeta(slot: number, meta: RequestMeta): boolean {
    const packed = pack(meta);
    if (packed.length > META_MAX) return false;
    const h = this.header(slot);
    packed.copy(this.bytes, h + S.meta);
    this.bytes.writeUInt16LE(packed.length, h + S.metaLen);
    return true;
  }

  readMeta(slot: number): RequestMeta {
    const h = this.header(slot);
    const len = this.bytes.readUInt16LE(h + S.metaLen);
    if (len === 0 || len > META_MAX) return { method: 'GET', url: '/' };
    return unpack(this.bytes.subarray(h + S.meta, h + S.meta + len)) as RequestMeta;
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
    const n = this.bytes.readUInt8(h + S.typeLen);
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
    this.checkSlot(slot);
    return this.base + slot * this.slotSize;
  }

  private slotOfOffset(offset: number): number | undefined {
    if (!Number.isInteger(offset) || offset < this.base) return undefined;
    const slot = Math.floor((offset - this.base) / this.slotSize);
    if (slot >= this.slotCount || offset - (this.base + slot * this.slotSize) < SLOT_HEADER) return undefined;
    return slot;
  }

  private checkSlot(slot: number): void {
    if (!Number.isInteger(slot) || slot < 0 || slot >= this.slotCount) {
      throw batonError('BATON_ERR_POOL', `slot ${slot} out of range 0..${this.slotCount - 1}`);
    }
  }
}

function checkGeometry(g: PoolGeometry): void {
  if (!Number.isInteger(g.slotSize) || g.slotSize < MIN_SLOT_SIZE || g.slotSize % 8 !== 0 || g.slotSize > 0xffffffff) {
    throw batonError('BATON_ERR_POOL', `slot size must be a multiple of 8 of at least ${MIN_SLOT_SIZE} bytes`);
  }
  if (!Number.isInteger(g.slotCount) || g.slotCount < 1 || g.slotCount > MAX_SLOTS) {
    throw batonError('BATON_ERR_POOL', `slot count must be 1..${MAX_SLOTS}`);
  }
  if (poolBytes(g) > 0xffffffff) throw batonError('BATON_ERR_POOL', 'a pool must stay below 4 GiB (32-bit offsets)');
}
