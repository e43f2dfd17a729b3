// The SDK for writing chained functions:
//
//   import { defineFunction } from 'baton/sdk';
//   export default defineFunction(async (req, ctx) => ctx.json({ words: req.text().split(' ') }));
//
// A handler may return: an Output from ctx.json / ctx.msgpack / ctx.text / ctx.send /
// ctx.written; a Buffer or Uint8Array (copied into the slot); a string (text/plain); any
// other value (JSON); or nothing, which passes the (possibly modified in place) input on.
import { FunctionContext, FunctionRequest, Output } from './context.ts';

export { FunctionContext, FunctionRequest, Output };

export type HandlerResult = Output | Uint8Array | string | number | boolean | object | null | undefined | void;
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
