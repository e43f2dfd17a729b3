// The user-space broker: the data plane where the SK_MSG program cannot load (no CAP_BPF, an
// old kernel, a container without the capabilities). Each key's process gets one end of a
// Unix seqpacket pair; the broker, in the gateway process, reads the other end and applies
// bpf/baton.bpf.c's rules to every descriptor — sender from the socket, framing, custody, the
// chain file's edges, late binding's tokens and class queues — then writes it to the
// receiver's socket. The custody and idle-token memory are ordinary memory of this process,
// laid out as the kernel's maps, so the gateway and the dispatcher use them unchanged; the
// counters are the program's. Keep this file in step with the program: the test suite runs
// on both (BATON_DATAPLANE=broker). What it costs: every hop wakes the gateway and takes two
// more system calls (README: Running without eBPF).
import { EventEmitter } from 'node:events';
import { IdleTokens } from '../binding/idle.ts';
import {
  CLASS_QUEUES, CLASS_SHIFT, DESC_MAGIC, DESC_SIZE, DESC_VERSION, decode, encodeInto, F, FN_ADDR, GATEWAY_FN, GATEWAY_KEY, HOLDER_QUEUED,
  IDLE_STRIDE, Kind, MAX_FUNCTIONS, MAX_KEYS, MAX_SLOTS, MAX_TOKENS, QUEUE_FN, type Descriptor,
} from '../descriptor/index.ts';
import { CUSTODY } from '../gateway/custody.ts';
import { native, type KeyCounters } from '../native/index.ts';
import type { Dataplane } from './dataplane.ts';
import { Endpoint } from './endpoint.ts';
import { NO_FUNCTION, violation, type SockmapEvents } from './sockmap.ts';

/** enum baton_violation (bpf/baton_shared.h). */
const V = { framing: 2, magic: 3, sender: 4, kind: 5, length: 6, custody: 7, edge: 9 } as const;
/** Fields of struct baton_counters, in order. */
const C = { redirected: 0, deadLetter: 1, boundFast: 2, toDispatcher: 3, refused: 4, reason: 5, queued: 6, handed: 7 } as const;
const COUNTERS = 8;
const HIGHEST_FIRST = Array.from({ length: CLASS_QUEUES }, (_, k) => k);
const LOWEST_FIRST = [CLASS_QUEUES - 1, ...HIGHEST_FIRST.slice(0, -1)];

interface Socket {
  endpoint: Endpoint;
  /** The function its process runs (GATEWAY_FN: the gateway). */
  fn: number;
  /** The reason of its first violation (0: none); nothing it sends is delivered after. */
  refused: number;
  /** Its process closed it: descriptors for its key are dead letters (the kernel drops a
   *  closed socket from the sockmap the same way). */
  gone: boolean;
}

export class Broker extends EventEmitter<SockmapEvents> implements Dataplane {
  readonly kind = 'broker' as const;
  private readonly idleMemory = new ArrayBuffer(MAX_FUNCTIONS * IDLE_STRIDE * 8);
  private readonly custodyMemory = new ArrayBuffer(MAX_SLOTS * CUSTODY.words * 4);
  private readonly idle = new IdleTokens(this.idleMemory);
  private readonly custody = new Uint32Array(this.custodyMemory);
  private readonly genHolder = new BigUint64Array(this.custodyMemory);
  private readonly counts = new Float64Array(MAX_KEYS * COUNTERS);
  private readonly sockets = new Map<number, Socket>();
  private readonly fns: ({ baseKey: number; concurrency: number } | undefined)[] = [];
  /** Function of each instance key, plus one (0: not an instance key). */
  private readonly keyFn = new Uint32Array(MAX_KEYS);
  private readonly calls: (Set<number> | undefined)[] = [];
  private readonly returns: (Set<number> | undefined)[] = [];
  /** Late binding's queues, index fn · CLASS_QUEUES + class, each at most depth[fn] long. */
  private readonly queues: (Buffer[] | undefined)[] = [];
  private readonly depth: number[] = [];
  /** Takings from each function's queues, the broker's and the gateway's counted apart as the
   *  program's and the gateway's are (every starveEvery-th serves the lowest class first). */
  private readonly pops: number[] = [];
  private readonly gatewayPops: number[] = [];
  private slots = 0;
  private capacity = 0;
  private starveEvery = 0;
  private destroyed = false;

  open(key: number, fn = key === GATEWAY_KEY ? GATEWAY_FN : NO_FUNCTION): { fd: number } {
    this.checkKey(key);
    const [fd, mine] = native((a) => a.unixPair());
    this.forget(key);
    const socket: Socket = { fn, refused: 0, gone: false, endpoint: undefined as unknown as Endpoint };
    try {
      socket.endpoint = new Endpoint(mine, {
        frame: (frame) => this.route(key, socket, frame),
        garbage: () => this.refuse(key, socket, V.magic),
        malformed: () => this.refuse(key, socket, V.framing),
        end: () => this.lost(key, socket),
      });
    } catch (err) {
      native((a) => (a.closeFd(fd), a.closeFd(mine)));
      throw err;
    }
    this.sockets.set(key, socket);
    return { fd };
  }

  close(key: number): void {
    this.forget(key);
  }

  private forget(key: number): void {
    const socket = this.sockets.get(key);
    if (!socket) return;
    this.sockets.delete(key);
    socket.gone = true;
    socket.endpoint.destroy();
  }

  private lost(key: number, socket: Socket): void {
    socket.gone = true;
    if (this.sockets.get(key) === socket) this.emit('lost', key);
  }

  divert(key: number): (bytes: Buffer, length: number) => void {
    return (bytes, length) => {
      const socket = this.sockets.get(key);
      if (!socket) return;
      for (let at = 0; at + DESC_SIZE <= length; at += DESC_SIZE) this.route(key, socket, bytes.subarray(at, at + DESC_SIZE));
    };
  }

  counters(key: number): KeyCounters {
    const at = this.counterAt(key);
    const c = this.counts;
    return {
      redirected: c[at + C.redirected]!, deadLetter: c[at + C.deadLetter]!, boundFast: c[at + C.boundFast]!,
      toDispatcher: c[at + C.toDispatcher]!, refused: c[at + C.refused]!, reason: c[at + C.reason]!, queued: c[at + C.queued]!,
      handed: c[at + C.handed]!,
    };
  }

  refusal(key: number): string {
    return violation(this.counters(key).reason);
  }

  idleBuffer(): ArrayBuffer {
    return this.idleMemory;
  }

  custodyBuffer(): ArrayBuffer {
    return this.custodyMemory;
  }

  setFunction(fnId: number, baseKey: number, concurrency: number, keys: number): void {
    if (fnId >= MAX_FUNCTIONS || baseKey >= MAX_KEYS || concurrency > MAX_TOKENS || keys > MAX_KEYS - baseKey) {
      throw new RangeError('function id, base key, concurrency or key count out of range');
    }
    this.fns[fnId] = { baseKey, concurrency };
    this.keyFn.fill(fnId + 1, baseKey, baseKey + keys);
  }

  allowCalls(from: number, to: number[], returnsTo: number[] = []): void {
    if (from >= MAX_FUNCTIONS) throw new RangeError('function id out of range');
    this.calls[from] = new Set(to);
    this.returns[from] = new Set(returnsTo);
  }

  configure(slots: number, capacity: number, starveEvery = 0): void {
    this.slots = slots;
    this.capacity = capacity;
    this.starveEvery = starveEvery;
  }

  create(specs: [fnId: number, depth: number][]): void {
    for (const [fnId, depth] of specs) {
      if (fnId >= MAX_FUNCTIONS || depth === 0 || this.queues[fnId * CLASS_QUEUES]) {
        throw new RangeError('function id out of range, depth 0, or a queue already made');
      }
      for (let cls = 0; cls < CLASS_QUEUES; cls++) this.queues[fnId * CLASS_QUEUES + cls] = [];
      this.depth[fnId] = depth;
    }
  }

  push(fnId: number, d: Descriptor, cls: number): boolean {
    const bytes = Buffer.allocUnsafe(DESC_SIZE);
    encodeInto(d, bytes);
    return this.enqueue(fnId, Math.min(cls, CLASS_QUEUES - 1), bytes);
  }

  pop(fnId: number): Descriptor | undefined {
    for (const cls of this.order(fnId, this.gatewayPops)) {
      const v = this.queues[fnId * CLASS_QUEUES + cls]?.shift();
      if (!v) continue;
      this.took(fnId, this.gatewayPops);
      return decode(v);
    }
    return undefined;
  }

  destroy(): void {
    if (this.destroyed) return;
    this.destroyed = true;
    for (const key of [...this.sockets.keys()]) this.forget(key);
  }

  // --- the program's rules (bpf/baton.bpf.c, baton_route and what it calls) ---

  /** One descriptor `d` written by `me` (whose socket is `s`). */
  private route(me: number, s: Socket, d: Buffer): void {
    if (s.refused) return; // the rest of a refused sender's writes go nowhere
    if (d.readUInt16LE(F.magic) !== DESC_MAGIC || d[F.version] !== DESC_VERSION) return this.refuse(me, s, V.magic);
    if (d.readUInt32LE(F.sender) !== me) return this.refuse(me, s, V.sender);
    const kind = d[F.kind]!;
    const key = d.readUInt32LE(F.key);
    const toGateway = key === GATEWAY_KEY;
    if (kind === Kind.Idle) {
      if (!toGateway) return this.refuse(me, s, V.kind);
      return this.onIdle(d, me, s.fn);
    }
    const slot = d.readUInt32LE(F.slot);
    const c = slot < MAX_SLOTS ? slot * CUSTODY.words : -1;
    const req = d.readUInt32LE(F.reqId);
    const gen = d.readUInt32LE(F.gen);
    if (kind === Kind.Grant) {
      // the gateway gives a slot it holds; a failed grant names no slot and moves nothing
      if (s.fn !== GATEWAY_FN || toGateway || key & FN_ADDR) return this.refuse(me, s, V.kind);
      const to = this.toKey(d, key);
      if (c >= 0 && this.custody[c + CUSTODY.req] !== 0 && this.custody[c + CUSTODY.req] === req && this.custody[c + CUSTODY.gen] === gen
        && this.custody[c + CUSTODY.holder] === me) this.custody[c + CUSTODY.holder] = to;
      return;
    }
    if (kind < Kind.Call || kind > Kind.Alloc) return this.refuse(me, s, V.kind);
    const callOrReturn = kind === Kind.Call || kind === Kind.Return;
    if (callOrReturn === toGateway || (kind === Kind.Return && key & FN_ADDR)) return this.refuse(me, s, V.kind);
    if (d.readUInt32LE(F.length) > this.capacity) return this.refuse(me, s, V.length);
    if (c < 0 || slot >= this.slots || this.custody[c + CUSTODY.req] === 0 || this.custody[c + CUSTODY.req] !== req
      || this.custody[c + CUSTODY.gen] !== gen || this.custody[c + CUSTODY.holder] !== me) return this.refuse(me, s, V.custody);
    if (callOrReturn && s.fn !== GATEWAY_FN && !this.mayCall(s.fn, key, d.readUInt16LE(F.fnId), kind === Kind.Return)) {
      return this.refuse(me, s, V.edge);
    }
    if (kind === Kind.Alloc) return void this.toGateway(d); // the slot only proves the request
    if (key & FN_ADDR) return this.bind(d, me, (key & 0xffff) >>> 0, c);
    this.custody[c + CUSTODY.holder] = this.toKey(d, key);
  }

  private refuse(me: number, s: Socket, reason: number): void {
    if (s.refused) return;
    s.refused = reason;
    const at = this.counterAt(me);
    this.counts[at + C.refused]!++;
    this.counts[at + C.reason] = reason;
    // told after the write that broke the rule, as the gateway hears of the kernel's refusals
    setImmediate(() => {
      if (this.sockets.get(me) === s) this.emit('refused', me);
    });
  }

  /** Whether function `from` may call (ret: return a result to) what `key` addresses as `fn`. */
  private mayCall(from: number, key: number, fn: number, ret: boolean): boolean {
    let to: number;
    if (key & FN_ADDR) to = key & 0xffff;
    else {
      const owner = key < MAX_KEYS ? this.keyFn[key]! : 0;
      if (!owner) return false;
      to = owner - 1;
    }
    if (to !== fn) return false;
    return (ret ? this.returns[from] : this.calls[from])?.has(to) ?? false;
  }

  private counterAt(key: number): number {
    return (key < MAX_KEYS ? key : MAX_KEYS - 1) * COUNTERS;
  }

  private count(key: number, field: number): void {
    this.counts[this.counterAt(key) + field]!++;
  }

  /** Writes `d` to `key`'s socket; false when no live socket is there. */
  private deliver(key: number, d: Buffer): boolean {
    const s = this.sockets.get(key);
    if (!s || s.gone) return false;
    s.endpoint.sendEncoded(d, DESC_SIZE);
    return true;
  }

  private toGateway(d: Buffer): number {
    if (this.deliver(GATEWAY_KEY, d)) this.count(GATEWAY_KEY, C.redirected);
    return GATEWAY_KEY;
  }

  /** To instance `key`, or (no socket there) a dead letter for the gateway. */
  private toKey(d: Buffer, key: number): number {
    if (key !== GATEWAY_KEY) {
      if (this.deliver(key, d)) {
        this.count(key, C.redirected);
        return key;
      }
      this.count(key, C.deadLetter);
    }
    return this.toGateway(d);
  }

  private enqueue(fnId: number, cls: number, bytes: Buffer): boolean {
    const q = this.queues[fnId * CLASS_QUEUES + cls];
    if (!q || q.length >= this.depth[fnId]!) return false;
    q.push(bytes);
    return true;
  }

  /** The order of classes the next taking from `fnId`'s queues looks in: highest first, but
   *  every starveEvery-th taking looks at the lowest class first, so it is never starved. */
  private order(fnId: number, pops = this.pops): readonly number[] {
    const n = (pops[fnId] ?? 0) + 1;
    return this.starveEvery > 0 && n % this.starveEvery === 0 ? LOWEST_FIRST : HIGHEST_FIRST;
  }

  /** Only takings count (as in the program): a look that found nothing does not move the turn. */
  private took(fnId: number, pops = this.pops): void {
    pops[fnId] = (pops[fnId] ?? 0) + 1;
  }

  /** The oldest live descriptor waiting for `fn` in class order, its slot claimed for `to`
   *  (withdrawn ones, whose claim fails, are passed over). */
  private popFor(fn: number, to: number): Buffer | undefined {
    for (const cls of this.order(fn)) {
      const q = this.queues[fn * CLASS_QUEUES + cls];
      while (q?.length) {
        const v = q.shift()!;
        this.idle.addQueued(fn, -1);
        const slot = v.readUInt32LE(F.slot);
        const gen = BigInt(v.readUInt32LE(F.gen));
        if (slot < this.slots && this.genHolder[slot * 2 + 1] === (gen | (BigInt(HOLDER_QUEUED) << 32n))) {
          this.genHolder[slot * 2 + 1] = gen | (BigInt(to) << 32n);
          this.took(fn);
          return v;
        }
        this.idle.addStale(fn);
      }
    }
    return undefined;
  }

  /** A popped descriptor `v` (claimed for `to`) to instance `to`; a dead one makes it a dead
   *  letter, the gateway's. */
  private hand(v: Buffer, to: number): void {
    this.count(to, C.handed);
    if (this.deliver(to, v)) {
      this.count(to, C.redirected);
      return;
    }
    this.count(to, C.deadLetter);
    this.custody[v.readUInt32LE(F.slot) * CUSTODY.words + CUSTODY.holder] = GATEWAY_KEY;
    this.toGateway(v);
  }

  /** Late binding: `d` for function `fn` to an idle instance of it, else into its queue until
   *  one is idle; with no instance serving, no queue or a full one, to the dispatcher. `c`:
   *  its slot's custody entry (held by `me`, checked). */
  private bind(d: Buffer, me: number, fn: number, c: number): void {
    const f = this.fns[fn];
    if (!f || f.concurrency === 0) {
      this.count(GATEWAY_KEY, C.toDispatcher);
      this.custody[c + CUSTODY.holder] = this.toGateway(d);
      return;
    }
    const cls = Math.min(this.custody[c + CUSTODY.queue]! >>> CLASS_SHIFT, CLASS_QUEUES - 1);
    let queueable = this.queues[fn * CLASS_QUEUES + cls] !== undefined;
    const index = this.idle.take(fn, f.concurrency);
    if (index >= 0) {
      const target = f.baseKey + index;
      if (this.deliver(target, d)) {
        this.count(target, C.boundFast);
        this.count(target, C.redirected);
        this.custody[c + CUSTODY.holder] = target;
        return;
      }
      queueable = false; // the instance died with its token idle: the dispatcher decides
    }
    if (!queueable) {
      this.count(GATEWAY_KEY, C.toDispatcher);
      this.custody[c + CUSTODY.holder] = this.toGateway(d);
      return;
    }
    // queued: its slot is nobody's until someone claims it (popFor, or a withdrawal)
    this.custody[c + CUSTODY.queue] = ((this.custody[c + CUSTODY.queue]! & ~QUEUE_FN) | (fn + 1)) >>> 0;
    this.custody[c + CUSTODY.holder] = HOLDER_QUEUED;
    if (!this.enqueue(fn, cls, Buffer.from(d))) {
      this.custody[c + CUSTODY.holder] = GATEWAY_KEY; // full: the dispatcher answers 503
      this.count(GATEWAY_KEY, C.toDispatcher);
      this.toGateway(d);
      return;
    }
    this.idle.addQueued(fn, 1);
    this.count(me, C.queued);
    // (the program looks for an idle token again here, for one returned on another CPU
    // meanwhile; nothing runs between the two looks in this process)
  }

  /** Instance `me` of `fn` finished one descriptor: it gets the oldest waiting one, or one of
   *  its tokens goes idle; a notice the broker cannot settle (a draining instance, a token too
   *  many) goes to the dispatcher. */
  private onIdle(d: Buffer, me: number, fn: number): void {
    const f = this.fns[fn];
    if (!f || !this.queues[fn * CLASS_QUEUES] || f.concurrency === 0 || me < f.baseKey) return void this.toGateway(d);
    const index = me - f.baseKey;
    if (index * f.concurrency >= MAX_TOKENS || !this.idle.member(fn, index, f.concurrency)) return void this.toGateway(d);
    const v = this.popFor(fn, me);
    if (v) return this.hand(v, me);
    const t = this.idle.give(fn, index, f.concurrency);
    if (t < 0) return void this.toGateway(d); // every token idle already: an Idle notice too many
    if (this.idle.queued(fn) === 0) return; // idle now (the program acknowledges; nobody reads it)
    // withdrawn descriptors still counted as queued: the program would take the token back
    // and settle with the dispatcher; so does the broker
    this.idle.takeBack(fn, t);
    this.toGateway(d);
  }

  private checkKey(key: number): void {
    if (this.destroyed) throw new RangeError('the data plane is closed');
    if (!Number.isInteger(key) || key < 0 || key >= MAX_KEYS) throw new RangeError(`key out of range 0..${MAX_KEYS - 1}`);
  }
}
