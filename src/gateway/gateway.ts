// The gateway: the one privileged process. It loads the SK_MSG program, creates the pool,
// spawns the function instances, terminates HTTP, and sends each request into its chain
// as a descriptor on its own sockmap socket (key 0), where the chain's reply comes back.
// Key 0 is also the late-binding dispatcher: descriptors the kernel could not bind to an
// idle instance, and instances' Idle notices, arrive there too.
import pino, { type Logger } from 'pino';
import type { FastifyInstance, FastifyReply } from 'fastify';
import { Dispatcher } from '../binding/dispatcher.ts';
import { IdleTokens } from '../binding/idle.ts';
import type { Deployment } from '../chain/index.ts';
import { Endpoint } from '../dataplane/endpoint.ts';
import { Sockmap } from '../dataplane/sockmap.ts';
import {
  decode, DESC_MAGIC, DescriptorError, F, FN_ADDR, GATEWAY_FN, GATEWAY_KEY, Kind, nowUs, type Descriptor,
} from '../descriptor/index.ts';
import { batonError, BatonError } from '../errors.ts';
import { Pool } from '../pool/index.ts';
import { Router } from '../worker/router.ts';
import { buildHttp } from './http.ts';
import { Instances, type Instance } from './instances.ts';
import { RequestTable } from './requests.ts';
import { TimingStats } from './stats.ts';
import { serverTiming } from './timing.ts';

const MAX_REDELIVERIES = 3;

export interface GatewayOptions {
  /** Overrides the chain file's gateway.port (0: any free port). */
  port?: number;
  host?: string;
  timeoutMs?: number;
  logger?: Logger;
  /** How long a slot held by an unresponsive worker waits before it is freed anyway. */
  quarantineMs?: number;
}

export interface GatewayStats {
  badDescriptors: number;
  deadLetters: number;
  strayDescriptors: number;
}

export class Gateway {
  readonly log: Logger;
  readonly pool: Pool;
  readonly sockmap: Sockmap;
  readonly instances: Instances;
  readonly requests: RequestTable;
  readonly dispatcher: Dispatcher;
  readonly timing: TimingStats;
  readonly stats: GatewayStats = { badDescriptors: 0, deadLetters: 0, strayDescriptors: 0 };
  readonly timeoutMs: number;
  private readonly router: Router;
  private endpoint?: Endpoint;
  private http?: FastifyInstance;
  private nextId = 0;
  /** Dead letters sent again, per request (dropped with the request's answer). */
  private readonly redelivered = new Map<number, number>();
  private stopped = false;
  url = '';

  private constructor(
    readonly deployment: Deployment,
    private readonly options: GatewayOptions,
  ) {
    this.log = options.logger ?? pino({ level: deployment.gateway.logLevel, name: 'baton' });
    this.timeoutMs = options.timeoutMs ?? deployment.gateway.timeoutMs;
    this.router = new Router(deployment);
    this.sockmap = new Sockmap(); // needs eBPF privilege: fail before anything else starts
    try {
      this.pool = Pool.create(deployment.pool);
    } catch (err) {
      this.sockmap.destroy();
      throw err;
    }
    this.requests = new RequestTable(this.pool, this.log, options.quarantineMs ?? Math.max(60_000, 2 * this.timeoutMs));
    this.instances = new Instances(deployment, this.sockmap, this.pool, this.log);
    this.timing = new TimingStats(deployment.functions.map((f) => f.name));
    for (const f of deployment.functions) this.sockmap.setFunction(f.id, f.keys[0]!, f.concurrency);
    this.dispatcher = new Dispatcher(
      deployment.functions,
      new IdleTokens(this.sockmap.idleBuffer()),
      this.pool,
      {
        send: (d) => this.endpoint!.send(d),
        fail: (reqId, error) => this.requests.fail(reqId, error),
        pending: (reqId) => this.requests.get(reqId) !== undefined,
      },
      this.log,
    );
  }

  /** Loads the data plane, starts every instance, then listens. */
  static async start(deployment: Deployment, options: GatewayOptions = {}): Promise<Gateway> {
    const gw = new Gateway(deployment, options);
    try {
      await gw.boot();
    } catch (err) {
      await gw.stop();
      throw err;
    }
    return gw;
  }

  private async boot(): Promise<void> {
    this.sockmap.on('deadLetter', (frame, sender) => this.onDeadLetter(frame, sender));
    const { fd } = this.sockmap.open(GATEWAY_KEY);
    this.endpoint = new Endpoint(fd, (frame) => this.onReply(frame));
    this.instances.on('ready', (inst) => {
      if (this.isLate(inst)) this.dispatcher.activate(inst.fnId, inst.index);
    });
    this.instances.on('exit', (inst, reason) => {
      if (this.isLate(inst)) this.dispatcher.deactivate(inst.fnId, inst.index);
      this.requests.instanceGone(inst.key, () => batonError('BATON_ERR_WORKER_CRASHED', `${this.describeKey(inst.key)} ${reason}`));
    });
    this.instances.on('live', (live) => {
      this.router.setLive(live);
      this.instances.broadcast({ type: 'live', live });
    });
    await this.instances.startAll();
    this.http = buildHttp(this);
    const address = await this.http.listen({
      port: this.options.port ?? this.deployment.gateway.port,
      host: this.options.host ?? this.deployment.gateway.host,
    });
    this.url = address;
    this.log.info({ url: address, functions: this.deployment.functions.length, instances: this.instances.all.length }, 'gateway listening');
  }

  /** Request ids double as pool owner words: 1..2^31-1. */
  newRequestId(): number {
    this.nextId = this.nextId >= 0x7fffffff ? 1 : this.nextId + 1;
    return this.nextId;
  }

  /** Sends a request whose body is in `slot` into chain `chainId`; `reply` gets the answer. */
  dispatch(
    reqId: number, slot: number, length: number, chainId: number, tArrive: number, reply: FastifyReply, contentType?: string,
  ): Promise<FastifyReply> {
    if (this.stopped) throw batonError('BATON_ERR_SHUTTING_DOWN');
    const first = this.router.first(chainId);
    const gen = this.pool.gen(slot);
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.dispatcher.withdraw(reqId); // queueing counts toward the timeout
        this.requests.fail(reqId, batonError('BATON_ERR_TIMEOUT', `no answer within ${this.timeoutMs} ms`));
      }, this.timeoutMs);
      this.requests.add({
        reqId, slot, gen, timer, contentType,
        answer: (outcome) => {
          this.redelivered.delete(reqId);
          if ('error' in outcome) sendError(reply, outcome.error, reqId);
          else this.sendResult(reply, slot, outcome.reply, contentType);
          resolve(reply);
        },
      });
      this.pool.setHolder(slot, first.key);
      this.endpoint!.send({
        key: first.key, kind: Kind.Call, reqId, gen, offset: this.pool.dataOffset(slot), length, chainId,
        hop: first.hop, fnId: first.fnId, status: 0, sender: GATEWAY_KEY, tArrive,
        tSent: nowUs() - tArrive, tBind: 0, tStart: 0, tEnd: 0,
      });
    });
  }

  private sendResult(reply: FastifyReply, slot: number, d: Descriptor, requestType?: string): void {
    const received = nowUs() - d.tArrive;
    const trace = this.pool.readTrace(slot);
    this.timing.record(trace, received);
    const type =
      d.kind === Kind.Error
        ? 'application/json'
        : (this.pool.readType(slot) ?? requestType ?? 'application/octet-stream');
    reply
      .code(d.status)
      .header('content-type', type)
      .header('x-request-id', String(d.reqId))
      .header('server-timing', serverTiming(trace, (id) => this.fnName(id), d.tSent, received))
      // a view of the slot, not a copy: the slot is freed only once the response is written
      .send(this.pool.view(d.offset, d.length));
  }

  /** A descriptor arrived on key 0: a chain's reply or error, work for the dispatcher, or
   *  something to reject. */
  private onReply(frame: Buffer): void {
    // Idle notices are most of the traffic here under late binding: read just what they say
    if (frame.readUInt8(F.kind) === Kind.Idle && frame.readUInt16LE(F.magic) === DESC_MAGIC) {
      this.dispatcher.onIdle(frame.readUInt16LE(F.fnId), frame.readUInt32LE(F.sender));
      return;
    }
    let d: Descriptor;
    try {
      d = decode(frame);
    } catch (err) {
      this.badDescriptor(err as DescriptorError);
      return;
    }
    const p = this.requests.get(d.reqId);
    if (!p) {
      // a late answer to a request already answered (timeout): its slot can be freed now
      if (!this.requests.settleLate(d.reqId, d.gen)) this.stats.strayDescriptors++;
      return;
    }
    if (d.kind === Kind.Error && d.length === 0) {
      // a worker rejected the descriptor it was given and gave it up
      this.requests.reclaimFrom(p.slot, d.sender);
      this.requests.fail(d.reqId, batonError('BATON_ERR_BAD_DESCRIPTOR', `${this.describeKey(d.sender)} rejected it`));
      return;
    }
    try {
      if (d.kind === Kind.Call && !(d.key & FN_ADDR)) throw new DescriptorError('a call addressed to the gateway', d.reqId);
      if (d.gen !== p.gen) throw new DescriptorError(`generation ${d.gen}, the request's slot is at ${p.gen}`, d.reqId);
      if (this.pool.validate(d) !== p.slot) throw new DescriptorError('points outside the request slot', d.reqId);
    } catch (err) {
      this.badDescriptor(err as DescriptorError);
      return;
    }
    if (d.kind === Kind.Call) {
      this.dispatcher.onCall(d, p.slot); // no idle instance when it was sent
      return;
    }
    this.requests.take(d.reqId)!.answer({ reply: d });
  }

  private badDescriptor(err: DescriptorError): void {
    this.stats.badDescriptors++;
    this.log.warn({ reqId: err.reqId }, `rejected descriptor: ${err.message}`);
    if (err.reqId !== undefined && this.requests.get(err.reqId)) {
      this.requests.fail(err.reqId, batonError('BATON_ERR_BAD_DESCRIPTOR', err.message));
    }
  }

  /** A descriptor that found no socket under its key came back over TCP to `sender`'s peer.
   *  It never reached an instance, so it is safe to send again to a live one (an instance
   *  that died a moment ago may still be in an early-binding sender's list). */
  private onDeadLetter(frame: Buffer, sender: number): void {
    this.stats.deadLetters++;
    const key = frame.readUInt32LE(0);
    const reqId = frame.readUInt32LE(8);
    const p = this.requests.get(reqId);
    this.log.warn({ reqId, key, sender }, 'dead letter: no socket under key');
    if (!p) return;
    this.requests.reclaimFrom(p.slot, key);
    let d: Descriptor | undefined;
    try {
      d = decode(frame);
    } catch {
      d = undefined;
    }
    const inst = this.instances.byKey(key);
    if (d && d.kind === Kind.Call && inst && inst.fnId === d.fnId && (this.redelivered.get(reqId) ?? 0) < MAX_REDELIVERIES) {
      try {
        const to = this.router.address(d.fnId, key);
        this.redelivered.set(reqId, (this.redelivered.get(reqId) ?? 0) + 1);
        this.pool.setHolder(p.slot, to);
        this.endpoint!.send({ ...d, key: to });
        return;
      } catch {
        // no other live instance: answer below
      }
    }
    this.requests.fail(reqId, batonError('BATON_ERR_DEAD_LETTER', `${this.describeKey(key)} is not running`));
  }

  private fnName(fnId: number): string {
    return fnId === GATEWAY_FN ? 'gateway' : (this.deployment.functions[fnId]?.name ?? `fn${fnId}`);
  }

  /** The response is done or the client left: if the request was still waiting for the chain,
   *  forget it everywhere it may wait (its slot is released by the caller). */
  forget(reqId: number): void {
    if (!this.requests.take(reqId)) return; // answered normally: nothing else holds it
    this.dispatcher.withdraw(reqId);
    this.redelivered.delete(reqId);
  }

  /** Late binding in the kernel: descriptors bound at send time, and those sent to the dispatcher. */
  kernelBinds(): { boundFast: number; toDispatcher: number } {
    let boundFast = 0;
    for (const inst of this.instances.all) boundFast += this.sockmap.counters(inst.key).boundFast;
    return { boundFast, toDispatcher: this.sockmap.counters(GATEWAY_KEY).toDispatcher };
  }

  private isLate(inst: Instance): boolean {
    return this.deployment.functions[inst.fnId]!.binding === 'late';
  }

  /** Runs `count` instances of function `name` (within its min/max), draining any removed. */
  async scale(name: string, count: number): Promise<void> {
    const f = this.deployment.functions.find((fn) => fn.name === name);
    if (!f) throw batonError('BATON_ERR_SCALE', `no function named '${name}'`);
    await this.instances.scale(f.id, count, (inst) => this.drain(inst));
  }

  /** Resolves once nothing is bound to `inst` any more. */
  private async drain(inst: Instance): Promise<void> {
    if (this.isLate(inst)) return this.dispatcher.drain(inst.fnId, inst.index);
    // early binding: senders stopped picking it (live set); wait for what they already sent
    while (this.requests.heldBy(inst.key) > 0) await new Promise((r) => setTimeout(r, 10));
  }

  describeKey(key: number): string {
    const inst = this.instances.byKey(key);
    return inst ? `function '${this.fnName(inst.fnId)}' instance ${key}` : `key ${key}`;
  }

  /** Stops listening, answers what is in flight, stops workers, unloads the program. */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    const closing = this.http?.close();
    const deadline = Date.now() + 2000;
    while (this.requests.size > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    this.requests.failAll(() => batonError('BATON_ERR_SHUTTING_DOWN'));
    await closing;
    await this.instances.stopAll();
    this.endpoint?.destroy();
    this.sockmap.destroy();
    this.requests.close();
    this.pool.close();
  }
}

export function sendError(reply: FastifyReply, err: BatonError, reqId?: number): void {
  if (reply.sent) return;
  reply
    .code(err.status || 500)
    .header('content-type', 'application/json')
    .send(JSON.stringify({ error: err.code, message: err.message, ...(reqId ? { requestId: reqId } : {}) }));
}

export { BatonError };
