// Runs one function instance: takes each descriptor redirected to this socket, runs the
// handler on the payload in place, writes the output into the same slot and sends the
// descriptor on. The kernel delivers a descriptor only from the slot's holder and makes this
// instance the holder, so the slot is this instance's until it sends the descriptor on. At
// most `concurrency` handlers run at once; more wait in arrival order (early binding queues
// here; late binding never sends more). A descriptor whose request deadline passed before it
// ran is handed back unrun. A late-bound instance sends an Idle notice with each finished
// descriptor: the kernel answers it with the next waiting descriptor, or returns its token. A throwing handler answers its request with a 500; the worker
// keeps serving.
import { Endpoint } from '../dataplane/endpoint.ts';
import {
  blankDescriptor, decode, DescriptorError, encode, F, fnAddress, GATEWAY_FN, GATEWAY_KEY, Kind, NO_SLOT, nowUs, type Descriptor,
} from '../descriptor/index.ts';
import { BatonError, batonError } from '../errors.ts';
import type { Pool } from '../pool/index.ts';
import { FunctionContext, materialize, type Handler } from '../sdk/index.ts';
import type { WorkerConfig } from './config.ts';
import { Calls, functionOfKey } from './calls.ts';
import { requestScope, running } from './output.ts';
import { Router } from './router.ts';

/** How often waiting descriptors are checked against their deadline. */
const EXPIRY_CHECK_MS = 100;

export interface RuntimeEvents {
  warn(message: string, reqId?: number): void;
  error(message: string, reqId?: number): void;
}

interface Job {
  d: Descriptor;
  recv: number;
}

export class WorkerRuntime {
  readonly router: Router;
  private readonly name: string;
  private readonly concurrency: number;
  private readonly late: boolean;
  private readonly myAddress: number;
  private readonly timeoutUs: number;
  private readonly waiting: Job[] = [];
  private readonly calls: Calls;
  private running = 0;
  private expiryTimer?: NodeJS.Timeout;
  /** This instance's Idle notice, encoded once: it goes out with every result (late binding). */
  private readonly idleBytes: Buffer;

  constructor(
    private readonly cfg: WorkerConfig,
    private readonly pool: Pool,
    private readonly endpoint: Endpoint,
    private readonly handler: Handler,
    private readonly events: RuntimeEvents,
  ) {
    const spec = cfg.deployment.functions[cfg.fnId]!;
    this.router = new Router(cfg.deployment, cfg.live);
    this.name = spec.name;
    this.concurrency = spec.concurrency;
    this.late = spec.binding === 'late';
    this.myAddress = fnAddress(cfg.fnId);
    this.timeoutUs = cfg.timeoutMs * 1000;
    this.calls = new Calls(cfg, pool, this.router, (...ds) => endpoint.send(...ds));
    this.idleBytes = encode(blankDescriptor({ key: GATEWAY_KEY, kind: Kind.Idle, fnId: cfg.fnId, sender: cfg.key }));
  }

  onFrame(frame: Buffer): void {
    if (frame[F.kind] === Kind.Ack) return; // the kernel took one of our descriptors itself
    const recv = nowUs();
    let d: Descriptor;
    try {
      d = decode(frame);
      if (d.kind === Kind.Grant || d.kind === Kind.Return) {
        this.forCalls(d);
        return;
      }
      if (d.kind !== Kind.Call) throw new DescriptorError(`kind ${d.kind} sent to a function`, d.reqId);
      if (d.aux && this.callerOf(d) === undefined) {
        throw new DescriptorError(`a call from key ${d.aux}, which may not call '${this.name}'`, d.reqId);
      }
      if ((d.key !== this.cfg.key && d.key !== this.myAddress) || d.fnId !== this.cfg.fnId) {
        throw new DescriptorError(`addressed to key ${d.key} function ${d.fnId}, this is key ${this.cfg.key}`, d.reqId);
      }
      const wrong = this.pool.check({ slot: d.slot - this.cfg.slotBase, length: d.length });
      if (wrong) throw new DescriptorError(wrong, d.reqId);
    } catch (err) {
      this.reject(err, frame);
      return;
    }
    this.waiting.push({ d, recv: recv - d.tArrive });
    this.pump();
  }

  private pump(): void {
    while (this.running < this.concurrency && this.waiting.length > 0) {
      const job = this.waiting.shift()!;
      if (this.expired(job.d)) {
        this.handBack(job.d, 504);
        continue;
      }
      this.running++;
      const done = (notified: boolean) => {
        this.running--;
        if (!notified) this.notifyIdle();
        this.pump();
      };
      this.run(job).then(done, (err: Error) => {
        // run() answers handler failures itself; this is a bug of ours: keep serving
        this.events.warn(`internal error running a descriptor: ${err.stack ?? err}`, job.d.reqId);
        done(false);
      });
    }
    this.watchExpiry();
  }

  /** While descriptors wait behind running handlers, hand back those whose deadline passes. */
  private watchExpiry(): void {
    if (this.waiting.length === 0 || this.expiryTimer) return;
    this.expiryTimer = setTimeout(() => {
      this.expiryTimer = undefined;
      for (let i = this.waiting.length - 1; i >= 0; i--) {
        const { d } = this.waiting[i]!;
        if (!this.expired(d)) continue;
        this.waiting.splice(i, 1);
        this.handBack(d, 504);
      }
      this.watchExpiry();
    }, EXPIRY_CHECK_MS);
  }

  private expired(d: Descriptor): boolean {
    return nowUs() > this.deadlineUs(d);
  }

  /** When the gateway answers `d`'s request 504, µs on the descriptors' clock. */
  private deadlineUs(d: Descriptor): number {
    return d.tArrive + this.timeoutUs;
  }

  /** Runs one descriptor; resolves true if its Idle notice already went out with the result. */
  private async run({ d, recv }: Job): Promise<boolean> {
    const slot = d.slot - this.cfg.slotBase; // in this domain's pool
    const start = nowUs() - d.tArrive;
    const out = this.pool.payload(slot);
    const calls = this.calls.forRun(d);
    const { req, ctx } = FunctionContext.forSlot(
      this.name, () => this.pool.readMeta(slot), this.pool.view(slot, d.length), d.reqId, out, calls.caller,
      { atUs: this.deadlineUs(d), shed: this.cfg.shed },
    );
    // a nested call (ctx.call) answers the instance that called, not the chain's next step
    const caller = d.aux ? { key: d.aux, fnId: this.callerOf(d)!, hop: d.hop } : undefined;
    let kind = Kind.Reply;
    let status = 0;
    let length: number;
    let next: { key: number; fnId: number; hop: number };
    try {
      try {
        length = materialize(await this.runHandler(d.reqId, req, ctx), ctx, d.length);
      } finally {
        running.reqId = undefined;
        ctx.close();
      }
      if (caller && ctx.nextName !== undefined) {
        throw batonError('BATON_ERR_BAD_NEXT', `'${this.name}' was called with ctx.call(): it answers its caller, so ctx.next() does not apply`);
      }
      next = caller ?? this.router.after(d.chainId, d.hop, this.name, ctx.nextName, ctx.ended);
      if (!caller && next.key !== GATEWAY_KEY) kind = Kind.Call;
      if (ctx.contentType !== undefined && !this.pool.writeType(slot, ctx.contentType)) {
        throw new RangeError(`content-type longer than 64 bytes: ${ctx.contentType.slice(0, 80)}`);
      }
    } catch (err) {
      kind = Kind.Error;
      status = err instanceof BatonError && err.status ? err.status : 500;
      length = this.writeError(out, err, d.reqId);
      next = caller ?? { key: GATEWAY_KEY, fnId: GATEWAY_FN, hop: d.hop + 1 };
      // the stack (source-mapped to the function's own file) goes to the log, not to the client;
      // a run shed by ctx.willTake() did not fail (the gateway counts it)
      if (!(err instanceof BatonError && err.code === 'BATON_ERR_SHED')) {
        this.events.error(`function '${this.name}' failed: ${(err as Error)?.stack ?? err}`, d.reqId);
      }
    }
    const end = nowUs() - d.tArrive;
    const failed = kind === Kind.Error;
    if (caller) kind = Kind.Return; // its result or its error, to the caller
    if (!failed) status = ctx.statusCode ?? (d.status || 200);
    this.pool.appendTrace(slot, {
      fnId: this.cfg.fnId, key: this.cfg.key, sent: d.tSent, bind: d.tBind || d.tSent, recv, start, end,
    });
    const forward = {
      ...d, key: next.key, kind, fnId: next.fnId, hop: next.hop, length, status, aux: caller && failed ? 1 : 0,
      sender: this.cfg.key, tSent: nowUs() - d.tArrive, tBind: 0, tStart: start, tEnd: end,
    };
    // the call slots it still holds, the result, and (late binding) this instance's Idle
    // notice leave in one write; the slots first, so the request holds none when answered
    const back = this.calls.finish(d, calls);
    back.push(forward);
    if (this.late) this.endpoint.sendWith(back, this.idleBytes);
    else this.endpoint.send(...back);
    return this.late;
  }

  /** The handler, with its request known to console output (see output.ts). */
  private runHandler(reqId: number, req: Parameters<Handler>[0], ctx: FunctionContext): ReturnType<Handler> {
    if (this.concurrency > 1) return requestScope.run(reqId, () => this.handler(req, ctx));
    running.reqId = reqId;
    return this.handler(req, ctx);
  }

  private writeError(out: Buffer, err: unknown, reqId: number): number {
    const code = err instanceof BatonError ? err.code : 'BATON_ERR_HANDLER';
    // the SDK's own errors name the function already
    const detail = String((err as Error)?.message ?? err);
    const message = (err instanceof BatonError ? detail : `function '${this.name}' failed: ${detail}`).slice(0, 2048);
    return out.write(JSON.stringify({ error: code, message, requestId: reqId }), 0, 'utf8');
  }

  /** A slot granted for a call, or a called function's result. */
  private forCalls(d: Descriptor): void {
    const local = d.slot - this.cfg.slotBase;
    const wrong = d.key !== this.cfg.key ? `addressed to key ${d.key}` : d.slot === NO_SLOT ? undefined : this.pool.check({ slot: local, length: d.length });
    if (wrong) {
      this.events.warn(`rejected ${d.kind === Kind.Grant ? 'grant' : 'return'}: ${wrong}`, d.reqId);
      return;
    }
    if (d.kind === Kind.Grant) this.calls.onGrant(d);
    else this.calls.onReturn(d);
  }

  /** The function of the instance a nested call came from, if it may call this one. */
  private callerOf(d: Descriptor): number | undefined {
    const fnId = functionOfKey(this.cfg.deployment.functions, d.aux!);
    return fnId !== undefined && this.cfg.deployment.functions[fnId]!.calls.includes(this.cfg.fnId) ? fnId : undefined;
  }

  /** This instance is ready: one Idle notice per token (late binding: the gateway enlisted it
   *  with every token busy). The kernel answers each with the oldest waiting descriptor of the
   *  highest class, into this socket at once, or makes the token idle. */
  open(): void {
    for (let t = 0; t < this.concurrency; t++) this.notifyIdle();
  }

  /** Tells the kernel this instance can take one more descriptor. */
  private notifyIdle(): void {
    if (this.late) this.endpoint.sendEncoded(this.idleBytes);
  }

  /** Gives a descriptor back to the gateway unrun (an empty Error): 504, its deadline had
   *  passed; 502, this instance cannot serve it. The slot goes back with it. */
  private handBack(d: Descriptor, status: 502 | 504): void {
    const caller = d.aux ? this.callerOf(d) : undefined;
    const back = blankDescriptor({
      key: caller !== undefined ? d.aux! : GATEWAY_KEY, kind: caller !== undefined ? Kind.Return : Kind.Error,
      reqId: d.reqId, gen: d.gen, slot: d.slot, status, sender: this.cfg.key, aux: caller !== undefined ? 1 : 0,
      fnId: caller ?? GATEWAY_FN, tArrive: d.tArrive, tSent: nowUs() - d.tArrive,
    });
    if (this.late) this.endpoint.sendWith([back], this.idleBytes);
    else this.endpoint.send(back);
  }

  /** A descriptor this worker cannot serve: handed back if it names a slot, so the request is
   *  answered at once (the kernel only lets the holder send for a slot, which this instance
   *  now is). */
  private reject(err: unknown, frame: Buffer): void {
    this.events.warn(`rejected descriptor: ${(err as Error).message}`, err instanceof DescriptorError ? err.reqId : undefined);
    let d: Descriptor | undefined;
    try {
      d = decode(frame);
    } catch {
      d = undefined;
    }
    if (d && d.kind === Kind.Call) this.handBack(d, 502);
    else this.notifyIdle(); // a late-bound frame used one of this instance's tokens
  }
}
