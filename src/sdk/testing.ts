// Unit-testing a handler without a gateway: `invoke` runs it on a private buffer shaped like
// a pool slot (the output overwrites the input in place, as in a chain) with the same rules
// for results and misuse as a worker, and says where the request would go next.
//
//   import { invoke } from 'baton/testing';
//   import hello from './hello.ts';
//   const r = await invoke(hello, { body: 'world' });
//   assert.equal(r.text(), 'hello, world');
//   // a function that calls others: give it what its calls run
//   await invoke(compose, { body, calls: { text, media } });
import type { FunctionDefinition } from './index.ts';
import { BatonError, batonError } from '../errors.ts';
import { nowUs } from '../descriptor/clock.ts';
import { FunctionContext, materialize } from './context.ts';

export interface InvokeOptions {
  /** The request payload (default empty). */
  body?: string | Uint8Array;
  method?: string;
  /** Path and query, e.g. '/hello?name=x' (default '/'). */
  url?: string;
  contentType?: string;
  requestId?: number;
  /** Payload bytes a slot holds (default 2 MiB, the chain file's default slot less its header). */
  slotSize?: number;
  /** The function's name in error messages (default 'function'). */
  name?: string;
  /** What ctx.call(name, …) runs: the functions this one may call, by name (they may call
   *  each other through the same map). */
  calls?: Record<string, FunctionDefinition>;
  /** The request's timeout from now, ms, for ctx.remainingMs() and ctx.willTake() (default:
   *  none, Infinity left). */
  timeoutMs?: number;
  /** Whether ctx.willTake() sheds a run that cannot finish in time, as under the chain file's
   *  `gateway.admission.shed` (default true). */
  shed?: boolean;
}

export interface Invocation {
  /** The HTTP status the chain would answer with if this were its last step. */
  status: number;
  /** Content type set through ctx (undefined: the request's own passes on). */
  type?: string;
  /** The result: a copy of the slot's written bytes. */
  body: Buffer;
  /** The function named by ctx.next(), if any. */
  next?: string;
  /** Whether the handler called ctx.end(). */
  ended: boolean;
  text(): string;
  json<T = unknown>(): T;
}

const DEFAULT_SLOT = 2 * 1024 * 1024 - 1024;

export async function invoke(fn: FunctionDefinition, options: InvokeOptions = {}): Promise<Invocation> {
  const input = typeof options.body === 'string' ? Buffer.from(options.body) : Buffer.from(options.body ?? []);
  const slot = Buffer.alloc(options.slotSize ?? DEFAULT_SLOT);
  if (input.length > slot.length) throw new RangeError(`body of ${input.length} bytes does not fit a ${slot.length}-byte slot`);
  input.copy(slot);
  const meta = { method: options.method ?? 'POST', url: options.url ?? '/', contentType: options.contentType };
  const name = options.name ?? 'function';
  const deadline = options.timeoutMs === undefined ? undefined : { atUs: nowUs() + options.timeoutMs * 1000, shed: options.shed ?? true };
  const { req, ctx } = FunctionContext.forSlot(name, () => meta, slot.subarray(0, input.length), options.requestId ?? 1, slot, {
    call: async (callee, payload, type) => {
      const fn = options.calls?.[callee];
      if (!fn) throw batonError('BATON_ERR_BAD_CALL', `function '${name}' called '${callee}', which is not in invoke()'s calls`);
      let r: Invocation;
      try {
        r = await invoke(fn, {
          body: payload, contentType: type, url: `/${callee}`, name: callee, calls: options.calls, slotSize: options.slotSize,
          timeoutMs: deadline && Math.max(0, (deadline.atUs - nowUs()) / 1000), shed: options.shed, // the request's deadline
        });
      } catch (err) {
        throw batonError('BATON_ERR_CALL_FAILED', `'${name}' called '${callee}', which answered ${err instanceof BatonError && err.status ? err.status : 500}: ${(err as Error).message}`, { cause: err });
      }
      return { status: r.status, type: r.type, body: r.body, text: r.text, json: r.json };
    },
  }, deadline);
  let length: number;
  try {
    length = materialize(await fn.handler(req, ctx), ctx, input.length);
  } finally {
    ctx.close();
  }
  const body = Buffer.from(slot.subarray(0, length));
  return {
    status: ctx.statusCode ?? 200,
    type: ctx.contentType,
    body,
    next: ctx.nextName,
    ended: ctx.ended,
    text: () => body.toString('utf8'),
    json: <T>() => JSON.parse(body.toString('utf8')) as T,
  };
}
