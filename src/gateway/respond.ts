// Every HTTP response the gateway writes, in one place: a chain's result (straight from its
// pool slot: the only copy out) or an error from the table in src/errors.ts, as
// {"error": CODE, "message": …, "requestId": N}. The public listener's go out through
// http1.ts; the admin listener's through fastify's reply.
import type { FastifyReply } from 'fastify';
import { BatonError, batonError } from '../errors.ts';
import type { Exchange } from './http1.ts';

export interface Result {
  status: number;
  type: string;
  /** A view of the request's pool slot: not a copy. */
  body: Buffer;
  headers: Record<string, string>;
}

export type Answer = Result | { error: BatonError; headers?: Record<string, string> };

export function errorBody(err: BatonError, requestId?: number): string {
  return JSON.stringify({ error: err.code, message: err.message, ...(requestId ? { requestId } : {}) });
}

/** What a header value may hold (RFC 9110's field-vchar, space and tab). */
const HEADER_VALUE = /^[\t\x20-\x7e\x80-\xff]*$/;

/** Writes an answer; the caller frees the slot once the response is done (onClose). */
export function writeAnswer(ex: Exchange, answer: Answer, requestId: number): void {
  if ('error' in answer) {
    writeError(ex, answer.error, requestId, answer.headers);
    return;
  }
  // the type is a function's word (written in its slot): one that could end the header line is
  // not taken
  const type = HEADER_VALUE.test(answer.type) ? answer.type : 'application/octet-stream';
  ex.respond(answer.status, headerList(type, answer.body.length, answer.headers), answer.body);
}

/** Writes an error; `close`: the connection cannot carry another request after it (a body
 *  left unread), so it goes. */
export function writeError(ex: Exchange, err: BatonError, requestId?: number, headers: Record<string, string> = {}, close = closesConnection(err)): void {
  const body = errorBody(err, requestId);
  const out = headerList('application/json', Buffer.byteLength(body), headers);
  if (requestId) out.push('x-request-id', String(requestId));
  ex.respond(err.status || 500, out, body, close);
}

/** Content type, length and `extra`, as the name, value, … list Exchange.respond takes. */
function headerList(type: string, length: number, extra: Record<string, string> | undefined): (string | number)[] {
  const list: (string | number)[] = ['content-type', type, 'content-length', length];
  for (const name in extra) list.push(name, extra[name]!);
  return list;
}

/** The same error through fastify's reply (the admin listener). */
export function sendError(reply: FastifyReply, err: BatonError, requestId?: number): void {
  if (reply.sent) return;
  reply.code(err.status || 500).header('content-type', 'application/json');
  if (requestId) reply.header('x-request-id', String(requestId));
  if (closesConnection(err)) reply.header('connection', 'close');
  reply.send(errorBody(err, requestId));
}

/** Errors after which the connection cannot carry another request (its body was not read). */
export function closesConnection(err: BatonError): boolean {
  return err.code === 'BATON_ERR_BODY_TOO_LARGE' || err.code === 'BATON_ERR_BODY_TIMEOUT';
}

/** The error table's version of whatever fastify or Node threw. */
export function asBatonError(err: Error & { code?: string; statusCode?: number }, capacity: number): BatonError {
  if (err instanceof BatonError) return err;
  if (err.code === 'FST_ERR_CTP_BODY_TOO_LARGE') return batonError('BATON_ERR_BODY_TOO_LARGE', `the limit is ${capacity} bytes`);
  if (err.statusCode && err.statusCode < 500) return batonError('BATON_ERR_BAD_REQUEST', err.message);
  return batonError('BATON_ERR_INTERNAL', err.message);
}

/** A raw response for a connection fastify never turned into a request (malformed HTTP). */
export function rawError(err: BatonError): string {
  const body = errorBody(err);
  const reason = { 400: 'Bad Request', 408: 'Request Timeout', 431: 'Request Header Fields Too Large' }[err.status] ?? 'Error';
  return (
    `HTTP/1.1 ${err.status} ${reason}\r\ncontent-type: application/json\r\nconnection: close\r\n` +
    `content-length: ${Buffer.byteLength(body)}\r\n\r\n${body}`
  );
}
