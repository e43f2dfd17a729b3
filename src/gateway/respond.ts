// Every HTTP response the gateway writes, in one place: a chain's result (straight from its
// pool slot: the only copy out) or an error from the table in src/errors.ts, as
// {"error": CODE, "message": …, "requestId": N}.
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
export function sendAnswer(reply: FastifyReply, answer: Answer, requestId: number): void {
  if (reply.sent) return;
  if ('error' in answer) {
    sendError(reply, answer.error, requestId, answer.headers);
    return;
  }
  reply.code(answer.status).headers(answer.headers).header('content-type', answer.type).send(answer.body);
}

export function sendError(reply: FastifyReply, err: BatonError, requestId?: number, headers: Record<string, string> = {}): void {
  if (reply.sent) return;
  reply.code(err.status || 500).headers(headers).header('content-type', 'application/json');
  if (requestId) reply.header('x-request-id', String(requestId));
  // the rest of an unread body would be taken for the next request: close the connection
  if (err.code === 'BATON_ERR_BODY_TOO_LARGE' || err.code === 'BATON_ERR_BODY_TIMEOUT') reply.header('connection', 'close');
  reply.send(errorBody(err, requestId));
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
