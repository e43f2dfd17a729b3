// The SDK for writing chained functions:
//
//   import { defineFunction } from 'baton/sdk';
//   export default defineFunction(async (req, ctx) => ctx.json({ words: req.text().split(' ') }));
//
// What a handler writes through ctx (ctx.json / ctx.msgpack / ctx.text / ctx.send /
// ctx.written) is its result, whether it returns it, returns ctx, or returns nothing; the last
// write wins. It may instead return a Buffer or Uint8Array (copied into the slot), a string
// (text/plain) or any other JSON value. Nothing written and nothing returned passes the
// (possibly modified in place) input on.
import { FunctionContext, FunctionRequest, materialize, Output, type CallPayload, type CallResult, type Caller } from './context.ts';

export { FunctionContext, FunctionRequest, materialize, Output, type CallPayload, type CallResult, type Caller };

export type HandlerResult = Output | FunctionContext | Uint8Array | string | number | boolean | object | null | undefined | void;
export type Handler = (req: FunctionRequest, ctx: FunctionContext) => HandlerResult | Promise<HandlerResult>;

export const FUNCTION_MARK = Symbol.for('baton.function');

export interface FunctionDefinition {
  readonly [FUNCTION_MARK]: true;
  readonly handler: Handler;
}

export function defineFunction(handler: Handler): FunctionDefinition {
  if (typeof handler !== 'function') throw new TypeError('defineFunction expects a handler function (req, ctx) => result');
  return { [FUNCTION_MARK]: true, handler };
}

export function isFunctionDefinition(value: unknown): value is FunctionDefinition {
  return typeof value === 'object' && value !== null && (value as FunctionDefinition)[FUNCTION_MARK] === true;
}
