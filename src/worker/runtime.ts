// Runs one function instance: takes each descriptor redirected to this socket, checks it
// against the pool, runs the handler on the payload in place, writes the output into the
// same slot and sends the descriptor on. At most `concurrency` handlers run at once; more
// wait in arrival order (early binding queues here; late binding never sends more). A
// late-bound instance reports each finished descriptor to the dispatcher (Idle notice).
// A throwing handler answers its request with a 500; the worker keeps serving.
import { Endpoint } from '../dataplane/endpoint.ts';
import {
  blankDescriptor, decode, DescriptorError, fnAddress, GATEWAY_FN, GATEWAY_KEY, Kind, nowUs, type Descriptor,
} from '../descriptor/index.ts';
import { BatonError } from '../errors.ts';
import type { Pool } from '../pool/index.ts';
import { FunctionContext, FunctionRequest, Output, type Handler, type HandlerResult } from '../sdk/index.ts';
import type { WorkerConfig } from './config.ts';
import { Router } from './router.ts';

export interface RuntimeEvents {
  warn(message: string, reqId?: number): void;
}

interface Job {
  d: Descriptor;
  slot: number;
  recv: number;
}

export class WorkerRuntime {
  readonly router: Router;
  private readonly name: string;
  private readonly concurrency: number;
  private readonly late: boolean;
  private readonly myAddress: number;
  private readonly waiting: Job[] = [];
  private running = 0;
  /** Most handlers ever running at once (tests check it never exceeds the limit). */
  peakRunning = 0;
  /** Descriptors rejected as malformed or forged. */
  rejected = 0;

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
  }

  /** Whether nothing runs or waits here. */
  get idle(): boolean {
    return this.running === 0 && this.waiting.length === 0;
  }

  onFrame(frame: Buffer): void {
    const recv = nowUs();
    let d: Descriptor;
    let slot: number;
    try {
      d = decode(frame);
      if (d.kind !== Kind.Call) throw new DescriptorError(`kind ${d.kind} sent to a function`, d.reqId);
      if ((d.key !== this.cfg.key && d.key !== this.myAddress) || d.fnId !== this.cfg.fnId) {
        throw new DescriptorError(`addressed to key ${d.key} function ${d.fnId}, this is key ${this.cfg.key}`, d.reqId);
      }
      slot = this.pool.validate(d);
    } catch (err) {
      this.reject(err);
      this.notifyIdle(); // a late-bound descriptor used one of this instance's tokens
      return;
    }
    this.pool.setHolder(slot, this.cfg.key);
    this.waiting.push({ d, slot, recv: recv - d.tArrive });
    this.pump();
  }

  private pump(): void {
    while (this.running < this.concurrency && this.waiting.length > 0) {
      const job = this.waiting.shift()!;
      this.running++;
      this.peakRunning = Math.max(this.peakRunning, this.running);
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
  }

  /** Runs one descriptor; resolves true if its Idle notice already went out with the result. */
  private async run({ d, slot, recv }: Job): Promise<boolean> {
    const start = nowUs() - d.tArrive;
    const out = this.pool.payload(slot);
    const ctx = new FunctionContext(this.name, out);
    let kind = Kind.Reply;
    let status = 0;
    let length: number;
    let next: { key: number; fnId: number; hop: number };
    try {
      const req = new FunctionRequest(this.pool, slot, this.pool.view(d.offset, d.length), d.reqId);
      const result = await this.handler(req, ctx);
      // the request may have timed out and its slot moved on while the handler awaited
      if (!this.stillOwned(d, slot)) return false;
      length = this.materialize(result, ctx, d);
      next = this.router.after(d.chainId, d.hop, this.name, ctx.nextName, ctx.ended);
      if (next.key !== GATEWAY_KEY) kind = Kind.Call;
      if (ctx.contentType !== undefined && !this.pool.writeType(slot, ctx.contentType)) {
        throw new RangeError(`content-type longer than 64 bytes: ${ctx.contentType.slice(0, 80)}`);
      }
    } catch (err) {
      if (!this.stillOwned(d, slot)) return false;
      kind = Kind.Error;
      status = err instanceof BatonError && err.status ? err.status : 500;
      length = this.writeError(out, err, d.reqId);
      next = { key: GATEWAY_KEY, fnId: GATEWAY_FN, hop: d.hop + 1 };
      this.events.warn(`function '${this.name}' failed: ${(err as Error)?.message ?? err}`, d.reqId);
    }
    const end = nowUs() - d.tArrive;
    if (kind !== Kind.Error) status = ctx.statusCode ?? (d.status || 200);
    this.pool.appendTrace(slot, {
      fnId: this.cfg.fnId, key: this.cfg.key, sent: d.tSent, bind: d.tBind || d.tSent, recv, start, end,
    });
    this.pool.setHolder(slot, next.key);
    const forward = {
      ...d, key: next.key, kind, fnId: next.fnId, hop: next.hop, offset: this.pool.dataOffset(slot), length, status,
      sender: this.cfg.key, tSent: nowUs() - d.tArrive, tBind: 0, tStart: start, tEnd: end,
    };
    // late binding: the result and this instance's Idle notice leave in one write
    if (this.late) this.endpoint.send(forward, this.idleNotice());
    else this.endpoint.send(forward);
    return this.late;
  }

  private stillOwned(d: Descriptor, slot: number): boolean {
    return this.pool.owner(slot) === d.reqId && this.pool.gen(slot) === d.gen;
  }

  /** Puts a handler's return value into the slot; returns its length. */
  private materialize(result: HandlerResult, ctx: FunctionContext, d: Descriptor): number {
    if (result instanceof Output) return result.length;
    if (result === undefined) return d.length; // pass the (in-place modified) input on
    if (result instanceof Uint8Array) return ctx.send(result).length;
    if (typeof result === 'string') return ctx.text(result).length;
    return ctx.json(result).length;
  }

  private writeError(out: Buffer, err: unknown, reqId: number): number {
    const code = err instanceof BatonError ? err.code : 'BATON_ERR_HANDLER';
    const message = `function '${this.name}' failed: ${String((err as Error)?.message ?? err).slice(0, 2048)}`;
    return out.write(JSON.stringify({ error: code, message, requestId: reqId }), 0, 'utf8');
  }

  /** Tells the dispatcher this instance can take one more descriptor. */
  private notifyIdle(): void {
    if (this.late) this.endpoint.send(this.idleNotice());
  }

  private idleNotice(): Descriptor {
    return blankDescriptor({ key: GATEWAY_KEY, kind: Kind.Idle, fnId: this.cfg.fnId, sender: this.cfg.key });
  }

  /** A descriptor this worker cannot serve: tell the gateway if it names a request. */
  private reject(err: unknown): void {
    this.rejected++;
    const reqId = err instanceof DescriptorError ? err.reqId : undefined;
    this.events.warn(`rejected descriptor: ${(err as Error).message}`, reqId);
    if (reqId === undefined || reqId === 0 || reqId > 0x7fffffff) return;
    this.endpoint.send(
      blankDescriptor({ key: GATEWAY_KEY, kind: Kind.Error, reqId, fnId: GATEWAY_FN, status: 502, sender: this.cfg.key }),
    );
  }
}
