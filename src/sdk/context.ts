// What a handler sees: `req`, a zero-copy view of the request in the pool, and `ctx`, which
// writes the result straight into the same slot and says where the request goes next.
//
// The rules (each misuse has its own error, naming the function and the fix):
// - what a handler writes through ctx is its result, returned or not; returning ctx is fine;
//   a later write replaces an earlier one; the result's length is the last write's length;
// - a returned Buffer, string or JSON value is written after the handler's own writes;
// - the output overwrites the input in place: req.text()/json()/msgpack() after a write throw
//   (read first, then write);
// - after the handler's promise settles, ctx is closed: a write from a callback the handler
//   did not await would land in a slot that already moved on, so it throws instead.
import { nowUs } from '../descriptor/clock.ts';
import { batonError } from '../errors.ts';
import type { RequestMeta } from '../pool/index.ts';
import { packInto, unpackFrom } from './msgpack.ts';

/** A result already written into the slot (what ctx's writers return). */
export class Output {
  constructor(readonly length: number) {}
}

/** A called function's result (ctx.call). `body` is a view of the call's slot, valid until the
 *  calling handler returns: copy what must outlive it. */
export interface CallResult {
  /** The callee's status (ctx.status(), default 200). */
  status: number;
  /** The callee's content type, if it set one. */
  type?: string;
  body: Buffer;
  text(): string;
  json<T = unknown>(): T;
}

/** What ctx.call() needs from where the handler runs (a worker, or baton/testing). */
export interface Caller {
  call(name: string, payload: Uint8Array, type: string): Promise<CallResult>;
}

/** A payload for ctx.call(): bytes as they are, a string as UTF-8 text, anything else as JSON. */
export type CallPayload = Uint8Array | string | number | boolean | object | null | undefined;

/** Encodes a call's payload and its content type. */
export function encodePayload(fn: string, payload: CallPayload): { bytes: Uint8Array; type: string } {
  if (payload instanceof Uint8Array) return { bytes: payload, type: 'application/octet-stream' };
  if (typeof payload === 'string') return { bytes: Buffer.from(payload, 'utf8'), type: 'text/plain; charset=utf-8' };
  if (payload === undefined) return { bytes: Buffer.alloc(0), type: 'application/octet-stream' };
  let s: string | undefined;
  try {
    s = JSON.stringify(payload);
  } catch (err) {
    throw batonError('BATON_ERR_BAD_CALL', `function '${fn}': ctx.call() cannot serialize its payload: ${(err as Error).message}`);
  }
  return { bytes: Buffer.from(s ?? 'null', 'utf8'), type: 'application/json' };
}

/** When a request's time runs out, for ctx.remainingMs() and ctx.willTake(). */
export interface Deadline {
  /** When the gateway answers the request 504: µs on CLOCK_MONOTONIC (the descriptors' clock). */
  atUs: number;
  /** Whether a run that cannot finish in time is shed (the chain file's admission.shed). */
  shed: boolean;
}

/** What a request and its context share: whether the output has overwritten the input yet. */
class SlotState {
  /** The writer that overwrote the input, for the error message. */
  wroteWith?: string;
  closed = false;
  constructor(readonly fn: string) {}
}

export class FunctionRequest {
  private cachedMeta?: RequestMeta;
  private cachedUrl?: URL;

  constructor(
    private readonly readMeta: () => RequestMeta,
    /** The request's payload: a view into shared memory, not a copy. Writing the output
     *  through ctx overwrites it. */
    readonly body: Buffer,
    readonly requestId: number,
    private readonly state: SlotState,
  ) {}

  private get meta(): RequestMeta {
    return (this.cachedMeta ??= this.readMeta());
  }
  get method(): string {
    return this.meta.method;
  }
  get url(): string {
    return this.meta.url;
  }
  get path(): string {
    return this.parsedUrl.pathname;
  }
  get query(): URLSearchParams {
    return this.parsedUrl.searchParams;
  }
  get contentType(): string | undefined {
    return this.meta.contentType;
  }
  private get parsedUrl(): URL {
    return (this.cachedUrl ??= new URL(this.meta.url, 'http://baton.local'));
  }

  text(): string {
    return this.input('text').toString('utf8');
  }
  json<T = unknown>(): T {
    return JSON.parse(this.input('json').toString('utf8')) as T;
  }
  msgpack<T = unknown>(): T {
    return unpackFrom(this.input('msgpack')) as T;
  }

  private input(reader: string): Buffer {
    const { wroteWith, fn } = this.state;
    if (wroteWith) {
      throw batonError(
        'BATON_ERR_INPUT_OVERWRITTEN',
        `function '${fn}' called req.${reader}() after ${wroteWith} wrote its output over the input; read the input first, then write`,
      );
    }
    return this.body;
  }
}

export class FunctionContext {
  /** HTTP status for the final response (unset: 200). */
  statusCode?: number;
  contentType?: string;
  nextName?: string;
  ended = false;
  /** Length of the last write (undefined: nothing written, the input passes on). */
  resultLength?: number;
  constructor(
    /** This function's name. */
    readonly name: string,
    private readonly out: Buffer,
    private readonly state: SlotState,
    private readonly caller?: Caller,
    private readonly deadline?: Deadline,
  ) {}

  /** A request and context over one slot, sharing the overwrite/closed state. */
  static forSlot(name: string, meta: () => RequestMeta, body: Buffer, requestId: number, out: Buffer, caller?: Caller, deadline?: Deadline) {
    const state = new SlotState(name);
    return { req: new FunctionRequest(meta, body, requestId, state), ctx: new FunctionContext(name, out, state, caller, deadline) };
  }

  /** Milliseconds left before the gateway answers this request 504 (its timeout counts from
   *  when the gateway accepted it); Infinity where there is no deadline (baton/testing's
   *  invoke() without `timeoutMs`). */
  remainingMs(): number {
    return this.deadline ? Math.max(0, (this.deadline.atUs - nowUs()) / 1000) : Infinity;
  }

  /** Says this run needs about `ms` more milliseconds, before it spends them. Where the chain
   *  file sheds (`gateway.admission.shed`) and fewer are left, it throws BATON_ERR_SHED: the
   *  client gets 503 at once and this instance is free for work it can finish, instead of
   *  running on to a 504. Otherwise it returns what is left (ctx.remainingMs()). Only the
   *  function knows what a request will cost (its size, its parameters): the gateway's own
   *  shedding knows only median run times. */
  willTake(ms: number): number {
    if (typeof ms !== 'number' || !(ms >= 0)) {
      throw new RangeError(`function '${this.name}': ctx.willTake() takes a number of milliseconds ≥ 0, got ${String(ms)}`);
    }
    const left = this.remainingMs();
    if (ms > left && this.deadline?.shed) {
      throw batonError('BATON_ERR_SHED', `function '${this.name}' needs ~${Math.round(ms)} ms for it; ${Math.round(left)} ms were left`);
    }
    return left;
  }

  /** Calls function `name` (one of this function's `calls` in the chain file) with `payload`
   *  and resolves with its result; calls run in parallel on other instances
   *  (`Promise.all([ctx.call('a', x), ctx.call('b', y)])`). Rejects with BATON_ERR_CALL_FAILED
   *  when the callee throws or its instance dies, BATON_ERR_TIMEOUT at the request's deadline. */
  call(name: string, payload?: CallPayload): Promise<CallResult> {
    this.writable('ctx.call()');
    if (!this.caller) {
      throw batonError('BATON_ERR_BAD_CALL', `function '${this.name}' called ctx.call('${name}') where no calls can be made (in baton/testing: invoke(fn, { calls: { ${name}: … } }))`);
    }
    const { bytes, type } = encodePayload(this.name, payload);
    return this.caller.call(name, bytes, type);
  }

  status(code: number): this {
    if (!Number.isInteger(code) || code < 200 || code > 599) {
      // 1xx are not final: a client would wait for another response that never comes
      throw new RangeError(`function '${this.name}': invalid status ${code} in ctx.status(); a chain answers with a final response, 200..599`);
    }
    this.statusCode = code;
    return this;
  }

  type(contentType: string): this {
    this.contentType = contentType;
    return this;
  }

  /** Names the function to run next; it must be one of the chain's next step. */
  next(functionName: string): this {
    this.nextName = functionName;
    return this;
  }

  /** Answers the client with this function's output, skipping the rest of the chain. */
  end(): this {
    this.ended = true;
    return this;
  }

  /** The slot's writable payload area (zero copy); call `ctx.written(n)` after filling it.
   *  It is the input's memory too: read the input before filling it. */
  payload(): Buffer {
    this.writable('ctx.payload()');
    return this.out;
  }

  written(length: number): Output {
    this.writable('ctx.written()');
    if (!Number.isInteger(length) || length < 0 || length > this.out.length) {
      throw this.tooLarge('ctx.written()', length);
    }
    return this.result('ctx.written()', length);
  }

  text(value: string, contentType = 'text/plain; charset=utf-8'): Output {
    this.writable('ctx.text()');
    this.contentType ??= contentType;
    return this.writeString('ctx.text()', String(value));
  }

  json(value: unknown): Output {
    this.writable('ctx.json()');
    this.contentType ??= 'application/json';
    let s: string | undefined;
    try {
      s = JSON.stringify(value);
    } catch (err) {
      throw batonError('BATON_ERR_BAD_RESULT', `function '${this.name}': ctx.json() cannot serialize its value: ${(err as Error).message}`);
    }
    return this.writeString('ctx.json()', s === undefined ? 'null' : s);
  }

  msgpack(value: unknown): Output {
    this.writable('ctx.msgpack()');
    this.contentType ??= 'application/msgpack';
    const n = packInto(value, this.out);
    if (n < 0) throw this.tooLarge('ctx.msgpack()', undefined);
    return this.result('ctx.msgpack()', n);
  }

  /** Copies bytes into the slot (overlapping views of the input are fine). */
  send(bytes: Uint8Array): Output {
    this.writable('ctx.send()');
    if (bytes.length > this.out.length) throw this.tooLarge('ctx.send()', bytes.length);
    this.out.set(bytes);
    return this.result('ctx.send()', bytes.length);
  }

  /** No write is accepted any more (the descriptor has moved on). */
  close(): void {
    this.state.closed = true;
  }

  private writeString(writer: string, s: string): Output {
    // a UTF-16 unit never takes more than 3 UTF-8 bytes: measure only when it may not fit
    if (s.length * 3 > this.out.length) {
      const n = Buffer.byteLength(s, 'utf8');
      if (n > this.out.length) throw this.tooLarge(writer, n);
    }
    return this.result(writer, this.out.write(s, 0, 'utf8'));
  }

  private result(writer: string, length: number): Output {
    this.state.wroteWith = writer;
    this.resultLength = length;
    return new Output(length);
  }

  private writable(writer: string): void {
    if (this.state.closed) {
      throw batonError(
        'BATON_ERR_CTX_CLOSED',
        `function '${this.name}' called ${writer} after its handler returned; await everything the handler starts before returning`,
      );
    }
  }

  private tooLarge(writer: string, bytes: number | undefined): Error {
    const size = bytes === undefined ? 'more bytes' : `${bytes} bytes`;
    return batonError(
      'BATON_ERR_RESPONSE_TOO_LARGE',
      `function '${this.name}': ${writer} wrote ${size} but a slot's payload holds ${this.out.length}; write less, or raise pool.slotSize in the chain file`,
    );
  }
}

/** Makes a handler's return value the slot's result; returns the result's length. */
export function materialize(result: unknown, ctx: FunctionContext, inputLength: number): number {
  // ctx itself, a writer's Output or nothing: the last write, or the (in-place modified) input
  if (result === undefined || result === ctx || result instanceof Output) return ctx.resultLength ?? inputLength;
  if (result instanceof Uint8Array) return ctx.send(result).length;
  if (typeof result === 'string') return ctx.text(result).length;
  if (typeof result === 'function' || typeof result === 'symbol' || typeof result === 'bigint' || result instanceof FunctionContext) {
    throw batonError(
      'BATON_ERR_BAD_RESULT',
      `function '${ctx.name}' returned a ${result instanceof FunctionContext ? 'context of another request' : typeof result}; return ctx (after writing through it), a Buffer, a string or a JSON value`,
    );
  }
  return ctx.json(result).length;
}
