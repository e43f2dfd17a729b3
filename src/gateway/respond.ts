// Every HTTP response the gateway writes, in one place: a chain's result (straight from its
// pool slot: the only copy out) or an error from the table in src/errors.ts, as
// {"error": CODE, "message": …, "requestId": N}. Written on Node's ServerResponse directly:
// the chain routes' hot path goes around fastify's reply machinery (see http.ts).
import type { ServerResponse } from 'node:http';
import type { FastifyReply } from 'fastify';
import { BatonError, batonError } from '../errors.ts';

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

/** Writes an answer; the caller frees the slot once the response is done ('close'). */
export function writeAnswer(res: ServerResponse, answer: Answer, requestId: number): void {
  if (res.headersSent || res.destroyed) return;
  if ('error' in answer) {
    writeError(res, answer.error, requestId, answer.headers);
    return;
  }
  // a flat [name, value, …] list: Node takes it as it is, without walking an object
  const headers: (string | number)[] = ['content-type', answer.type, 'content-length', answer.body.length];
  for (const name in answer.headers) headers.push(name, answer.headers[name]!);
  res.writeHead(answer.status, headers as unknown as string[]);
  res.end(answer.body);
}

export function writeError(res: ServerResponse, err: BatonError, requestId?: number, headers: Record<string, string> = {}): void {
  if (res.headersSent || res.destroyed) return;
  const body = errorBody(err, requestId);
  const out: Record<string, string | number> = { ...headers, 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) };
  if (requestId) out['x-request-id'] = String(requestId);
  // the rest of an unread body would be taken for the next request: close the connection
  if (closesConnection(err)) out.connection = 'close';
  res.writeHead(err.status || 500, out);
  res.end(body);
}

/** The same error through fastify's reply (the admin listener, and what is not a chain route). */
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
