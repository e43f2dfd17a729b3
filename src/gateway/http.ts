// The HTTP edge (fastify): one route per chain route, each body streamed straight into a pool
// slot (the only copy in), every answer and error written by respond.ts. The edge bounds what
// a client can hold: a slot is taken only when a body starts, a body must arrive within the
// body timeout (408), a response must be taken within the send timeout, and every request a
// connection carried — pipelined, aborted or answered — is closed when the connection goes,
// which gives its slot back.
import http, { type IncomingMessage } from 'node:http';
import type { Socket } from 'node:net';
import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance, type FastifyRequest } from 'fastify';
import type { Logger } from 'pino';
import type { RouteSpec } from '../chain/index.ts';
import { nowUs } from '../descriptor/index.ts';
import { batonError, BatonError } from '../errors.ts';
import type { RequestMeta } from '../pool/index.ts';
import type { Request, RequestTable } from './requests.ts';
import { asBatonError, rawError, sendAnswer, sendError, type Answer } from './respond.ts';

declare module 'fastify' {
  interface FastifyRequest {
    /** The gateway's record of this request. */
    baton: Request;
    /** Arrival, µs on CLOCK_MONOTONIC. */
    batonArrive: number;
  }
}

/** What the edge needs from the gateway. */
export interface Backend {
  readonly log: Logger;
  readonly routes: RouteSpec[];
  /** Payload bytes a slot holds: the largest body. */
  readonly capacity: number;
  readonly bodyTimeoutMs: number;
  readonly sendTimeoutMs: number;
  /** False once the gateway is stopping. */
  readonly serving: boolean;
  readonly requests: RequestTable;
  payload(slot: number): Buffer;
  /** The security domain whose pool chain `chainId`'s requests use. */
  domainOf(chainId: number): number;
  writeMeta(slot: number, meta: RequestMeta): boolean;
  /** Sends the request into chain `chainId`; resolves with its one answer. */
  dispatch(req: Request, chainId: number, length: number, arrive: number, meta: RequestMeta): Promise<Answer>;
}

export function buildHttp(backend: Backend): FastifyInstance {
  const { capacity, log, requests } = backend;
  /** Requests each connection carries that are not closed yet. */
  const carried = new WeakMap<Socket, Set<number>>();
  const app = Fastify({
    loggerInstance: log as FastifyBaseLogger,
    // a log line per request costs more than a hop: only at debug
    logController: new LogController({ disableRequestLogging: !log.isLevelEnabled('debug') }),
    serverFactory: (handler) =>
      http.createServer(
        {
          // slow headers hold a connection, never a slot; check often so the limit holds
          headersTimeout: backend.bodyTimeoutMs,
          requestTimeout: 0, // bodies are timed where they are read, with our own error
          connectionsCheckingInterval: Math.min(1000, backend.bodyTimeoutMs),
        },
        handler,
      ),
    genReqId: (raw) => {
      const req = requests.create();
      carried.get(raw.socket)?.add(req.id);
      return String(req.id);
    },
    bodyLimit: capacity,
    forceCloseConnections: true,
    return503OnClosing: true,
    clientErrorHandler: (err: Error & { code?: string }, socket) => {
      // malformed HTTP never becomes a request: answer from the table, then drop the connection
      const e =
        err.code === 'HPE_HEADER_OVERFLOW'
          ? batonError('BATON_ERR_HEADERS_TOO_LARGE')
          : err.code === 'ERR_HTTP_REQUEST_TIMEOUT'
            ? batonError('BATON_ERR_BODY_TIMEOUT', 'headers did not arrive in time')
            : batonError('BATON_ERR_BAD_REQUEST', err.code ?? err.message);
      if (socket.writable) socket.end(rawError(e));
      socket.destroySoon();
    },
  });
  app.server.on('connection', (socket: Socket) => {
    const ids = new Set<number>();
    carried.set(socket, ids);
    socket.once('close', () => {
      for (const id of ids) requests.close(id);
      ids.clear();
    });
  });
  app.decorateRequest('baton', null as unknown as Request);
  app.decorateRequest('batonArrive', 0);

  app.addHook('onRequest', (req, reply, done) => {
    req.batonArrive = nowUs();
    req.baton = requests.get(Number(req.id))!;
    const id = req.baton.id;
    const socket = req.raw.socket;
    reply.raw.once('close', () => {
      carried.get(socket)?.delete(id);
      requests.close(id);
    });
    done();
  });

  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', (req, payload, done) => streamIntoSlot(backend, req, payload, done));

  for (const route of backend.routes) {
    app.route({
      method: route.method as 'GET',
      url: route.path,
      config: { chainId: route.chainId },
      handler: async (req, reply) => {
        if (!backend.serving) throw batonError('BATON_ERR_SHUTTING_DOWN');
        const slot = requests.takeSlot(req.baton, backend.domainOf(route.chainId));
        const length = typeof req.body === 'number' ? req.body : 0;
        const meta = { method: req.method, url: req.url, contentType: req.headers['content-type'] };
        if (!backend.writeMeta(slot, meta)) throw batonError('BATON_ERR_URL_TOO_LONG', `${req.url.length} characters`);
        const answer = await backend.dispatch(req.baton, route.chainId, length, req.batonArrive, meta);
        if (!('error' in answer)) limitSend(reply.raw, backend.sendTimeoutMs);
        sendAnswer(reply, answer, req.baton.id);
        return reply;
      },
    });
  }

  app.setNotFoundHandler((req, reply) => {
    sendError(reply, batonError('BATON_ERR_ROUTE_NOT_FOUND', `${req.method} ${req.url.split('?')[0]}`), req.baton?.id);
  });

  app.setErrorHandler((err: Error & { code?: string; statusCode?: number }, req, reply) => {
    const e = asBatonError(err, capacity);
    if (e.code === 'BATON_ERR_INTERNAL') req.log.error({ err }, 'unexpected gateway error');
    // an unread body stays unread: drop the connection once the error is out
    if (e.code === 'BATON_ERR_BODY_TOO_LARGE' || e.code === 'BATON_ERR_BODY_TIMEOUT') {
      reply.raw.once('finish', () => req.raw.socket.destroy());
    }
    sendError(reply, e, req.baton?.id);
  });

  return app;
}

/** A client that does not take its response within `ms` loses its connection (and with it
 *  the slot the response is read from). */
function limitSend(res: http.ServerResponse, ms: number): void {
  const timer = setTimeout(() => res.socket?.destroy(), ms);
  res.once('close', () => clearTimeout(timer));
}

/** Copies the body, chunk by chunk as it arrives, into the request's slot; parses to its length. */
function streamIntoSlot(
  backend: Backend,
  req: FastifyRequest,
  payload: IncomingMessage,
  done: (err: Error | null, body?: number) => void,
): void {
  const { capacity } = backend;
  const declared = Number(req.headers['content-length'] ?? 0);
  if (declared > capacity) {
    done(batonError('BATON_ERR_BODY_TOO_LARGE', `${declared} bytes; the limit is ${capacity}`));
    return;
  }
  const chainId = (req.routeOptions.config as { chainId?: number }).chainId;
  if (chainId === undefined) {
    done(null, 0); // no chain route (404): the body is not kept anywhere
    return;
  }
  let target: Buffer;
  try {
    if (!backend.serving) throw batonError('BATON_ERR_SHUTTING_DOWN');
    target = backend.payload(backend.requests.takeSlot(req.baton, backend.domainOf(chainId)));
  } catch (err) {
    done(err as Error);
    return;
  }
  let length = 0;
  let finished = false;
  const timer = setTimeout(
    () => finish(batonError('BATON_ERR_BODY_TIMEOUT', `${length} of ${declared || 'unknown'} bytes in ${backend.bodyTimeoutMs} ms`)),
    backend.bodyTimeoutMs,
  );
  const finish = (err: Error | null) => {
    if (finished) return;
    finished = true;
    clearTimeout(timer);
    done(err, length);
  };
  payload.on('data', (chunk: Buffer) => {
    if (finished) return;
    if (length + chunk.length > capacity) {
      finish(batonError('BATON_ERR_BODY_TOO_LARGE', `more than ${capacity} bytes`));
      return;
    }
    chunk.copy(target, length);
    length += chunk.length;
  });
  payload.on('end', () => finish(null));
  payload.on('error', (err) => finish(err instanceof BatonError ? err : batonError('BATON_ERR_BAD_REQUEST', err.message)));
  payload.on('close', () => {
    // 'close' follows 'end' on every request: build an error only for a body cut short
    if (!finished) finish(batonError('BATON_ERR_BAD_REQUEST', 'the client closed the connection mid-body'));
  });
}
