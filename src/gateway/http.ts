// The HTTP edge. A request for a chain route is served on Node's own request and response
// objects — matched by find-my-way (fastify's router), its body streamed straight into a pool
// slot (the only copy in), its answer written by respond.ts — because fastify's hooks, reply
// and serialisation layers cost more CPU per request than everything else the gateway does.
// Everything else (unknown routes, malformed HTTP, errors) goes to fastify. The edge bounds
// what a client can hold: a slot is taken only when a body starts, a body must arrive within
// the body timeout (408), a response must be taken within the send timeout, and every request
// a connection carried — pipelined, aborted or answered — is closed when the connection goes,
// which gives its slot back.
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import FindMyWay from 'find-my-way';
import type { Logger } from 'pino';
import type { Ticket } from '../admission/admission.ts';
import { CLASS_HEADER } from '../admission/classes.ts';
import type { RouteSpec } from '../chain/index.ts';
import { nowUs } from '../descriptor/index.ts';
import { batonError, BatonError } from '../errors.ts';
import type { RequestMeta } from '../pool/index.ts';
import { Deadlines } from './deadlines.ts';
import type { Request, RequestTable } from './requests.ts';
import { asBatonError, closesConnection, rawError, sendError, writeAnswer, writeError, type Answer } from './respond.ts';

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
  /** Admission control (src/admission): the request's class and whether it may run, before
   *  its body is read; `settled` once its response is done (answeredMs < 0: never answered). */
  admit(chainId: number, classHeader: string | string[] | undefined, bytes: number): Ticket | BatonError;
  settled(ticket: Ticket, answeredMs: number): void;
  readonly retryAfterS: number;
  /** Sends the request into chain `chainId`; `done` gets its one answer. `timing`: the client
   *  asked for the hop trace on a result (TIMING_HEADER); `traceparent`: its W3C trace context,
   *  the parent of its spans when tracing is on. */
  dispatch(
    req: Request, chainId: number, length: number, arrive: number, meta: RequestMeta, timing: boolean, traceparent: string | undefined,
    done: (a: Answer) => void,
  ): void;
}

/** A request header (any value) asking for Server-Timing on a successful answer; errors always
 *  carry it. */
export const TIMING_HEADER = 'x-baton-timing';

/** The body timeout and the send timeout of the chain routes' requests: one clock each (every
 *  body gets the same time, every response too), not a timer per request. */
class Clocks {
  private started = 0;
  private readonly reading = new Map<number, { seq: number; expire(): void }>();
  private readonly sending = new Map<number, { seq: number; res: ServerResponse }>();
  private readonly bodies: Deadlines;
  private readonly sends: Deadlines;

  constructor(private readonly bodyMs: number, private readonly sendMs: number) {
    this.bodies = new Deadlines((id, seq) => {
      const b = this.reading.get(id);
      if (b?.seq === seq) b.expire();
    });
    // a client that does not take its response in time loses its connection (and with it the
    // slot the response is read from)
    this.sends = new Deadlines((id, seq) => {
      const x = this.sending.get(id);
      if (x?.seq === seq) x.res.socket?.destroy();
    });
  }

  /** Request `id`'s body must have arrived within the body timeout, or `expire` runs. */
  body(id: number, expire: () => void): void {
    const seq = (this.started = (this.started + 1) >>> 0); // as the ring keeps it: u32
    this.reading.set(id, { seq, expire });
    this.bodies.add(id, seq, performance.now() + this.bodyMs);
  }

  bodyDone(id: number): void {
    this.reading.delete(id);
  }

  /** Request `id`'s response must be taken within the send timeout. */
  send(id: number, res: ServerResponse): void {
    const seq = (this.started = (this.started + 1) >>> 0); // as the ring keeps it: u32
    this.sending.set(id, { seq, res });
    this.sends.add(id, seq, performance.now() + this.sendMs);
  }

  /** Request `id` is closed. */
  done(id: number): void {
    this.reading.delete(id);
    this.sending.delete(id);
  }
}

export function buildHttp(backend: Backend): FastifyInstance {
  const { capacity, log, requests } = backend;
  /** Requests each connection carries that are not closed yet. */
  const carried = new WeakMap<Socket, Set<number>>();
  const clocks = new Clocks(backend.bodyTimeoutMs, backend.sendTimeoutMs);
  /** A new request on `raw`'s connection… */
  const open = (raw: IncomingMessage): Request => {
    const req = requests.create();
    carried.get(raw.socket)?.add(req.id);
    return req;
  };
  /** …closed when its response is done, or its connection goes. */
  const closeWith = (raw: IncomingMessage, res: ServerResponse, id: number): void => {
    const socket = raw.socket;
    res.once('close', () => {
      carried.get(socket)?.delete(id);
      clocks.done(id);
      requests.close(id);
    });
  };
  const track = (raw: IncomingMessage, res: ServerResponse): Request => {
    const req = open(raw);
    closeWith(raw, res, req.id);
    return req;
  };
  const chains = chainRoutes(backend, track, clocks);

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
        (req, res) => {
          if (!chains(req, res)) handler(req, res);
        },
      ),
    genReqId: (raw) => String(open(raw).id),
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
  app.addHook('onRequest', (req, reply, done) => {
    closeWith(req.raw, reply.raw, Number(req.id));
    done();
  });
  // fastify sees only what is not a chain route: no body is kept anywhere
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', (_req, _payload, done) => done(null, 0));

  app.setNotFoundHandler((req, reply) => {
    sendError(reply, batonError('BATON_ERR_ROUTE_NOT_FOUND', `${req.method} ${req.url.split('?')[0]}`), Number(req.id));
  });

  app.setErrorHandler((err: Error & { code?: string; statusCode?: number }, req, reply) => {
    const e = asBatonError(err, capacity);
    if (e.code === 'BATON_ERR_INTERNAL') req.log.error({ err }, 'unexpected gateway error');
    if (closesConnection(e)) reply.raw.once('finish', () => req.raw.socket.destroy());
    sendError(reply, e, Number(req.id));
  });

  return app;
}

/** The chain routes' own request handler: true if it took the request. */
function chainRoutes(backend: Backend, track: (raw: IncomingMessage, res: ServerResponse) => Request, clocks: Clocks) {
  const router = FindMyWay();
  for (const route of backend.routes) {
    // a GET route answers HEAD too (the body is left out), as fastify's routes do
    const methods = route.method === 'GET' ? ['GET', 'HEAD'] : [route.method];
    router.on(methods as FindMyWay.HTTPMethod[], route.path, () => {}, { chainId: route.chainId });
  }
  const debug = backend.log.isLevelEnabled('debug');
  return (raw: IncomingMessage, res: ServerResponse): boolean => {
    const url = raw.url ?? '/';
    const q = url.indexOf('?');
    const found = router.find(raw.method as FindMyWay.HTTPMethod, q < 0 ? url : url.slice(0, q));
    if (!found) return false;
    const chainId = (found.store as { chainId: number }).chainId;
    const arrive = nowUs();
    const req = track(raw, res);
    if (debug) backend.log.debug({ reqId: req.id, method: raw.method, url }, 'incoming request');
    if (!backend.serving) {
      fail(raw, res, batonError('BATON_ERR_SHUTTING_DOWN'), req.id);
      return true;
    }
    const ticket = backend.admit(chainId, raw.headers[CLASS_HEADER], Number(raw.headers['content-length'] ?? 0));
    if (ticket instanceof BatonError) {
      // refused before its body is read: a connection that still carries one cannot go on
      const headers: Record<string, string> = { 'retry-after': String(backend.retryAfterS) };
      if (raw.headers['content-length'] !== undefined || raw.headers['transfer-encoding'] !== undefined) {
        headers.connection = 'close';
        res.once('finish', () => raw.socket.destroy());
      }
      writeError(res, ticket, req.id, headers);
      return true;
    }
    req.rank = ticket.rank;
    let answeredMs = -1;
    res.once('close', () => backend.settled(ticket, answeredMs));
    readBody(backend, clocks, raw, req, chainId, (err, length) => {
      if (err) return fail(raw, res, err, req.id);
      const meta = { method: raw.method!, url, contentType: raw.headers['content-type'] };
      if (!backend.writeMeta(req.slot, meta)) return fail(raw, res, batonError('BATON_ERR_URL_TOO_LONG', `${url.length} characters`), req.id);
      try {
        const traceparent = raw.headers.traceparent;
        backend.dispatch(req, chainId, length, arrive, meta, raw.headers[TIMING_HEADER] !== undefined, typeof traceparent === 'string' ? traceparent : undefined, (a) => {
          answeredMs = (nowUs() - arrive) / 1000;
          if (!('error' in a)) clocks.send(req.id, res);
          writeAnswer(res, a, req.id);
        });
      } catch (e) {
        fail(raw, res, asBatonError(e as Error, backend.capacity), req.id);
      }
    });
    return true;
  };
}

/** Answers with an error; one after which the connection cannot go on drops it once written. */
function fail(raw: IncomingMessage, res: ServerResponse, err: BatonError, reqId: number): void {
  if (closesConnection(err)) res.once('finish', () => raw.socket.destroy());
  writeError(res, err, reqId);
}

/** Copies the body, chunk by chunk as it arrives, into the request's slot; calls `done` with
 *  its length, or with the error that ends it (too large, too slow, cut short). */
function readBody(
  backend: Backend,
  clocks: Clocks,
  raw: IncomingMessage,
  req: Request,
  chainId: number,
  done: (err: BatonError | null, length: number) => void,
): void {
  const { capacity } = backend;
  const declared = Number(raw.headers['content-length'] ?? 0);
  if (declared > capacity) {
    done(batonError('BATON_ERR_BODY_TOO_LARGE', `${declared} bytes; the limit is ${capacity}`), 0);
    return;
  }
  let target: Buffer;
  try {
    target = backend.payload(backend.requests.takeSlot(req, backend.domainOf(chainId)));
  } catch (err) {
    done(err as BatonError, 0);
    return;
  }
  let length = 0;
  let finished = false;
  clocks.body(req.id, () => finish(batonError('BATON_ERR_BODY_TIMEOUT', `${length} of ${declared || 'unknown'} bytes in ${backend.bodyTimeoutMs} ms`)));
  const finish = (err: BatonError | null) => {
    if (finished) return;
    finished = true;
    clocks.bodyDone(req.id);
    done(err, length);
  };
  raw.on('data', (chunk: Buffer) => {
    if (finished) return;
    if (length + chunk.length > capacity) {
      finish(batonError('BATON_ERR_BODY_TOO_LARGE', `more than ${capacity} bytes`));
      return;
    }
    chunk.copy(target, length);
    length += chunk.length;
  });
  raw.on('end', () => finish(null));
  raw.on('error', (err) => finish(err instanceof BatonError ? err : batonError('BATON_ERR_BAD_REQUEST', err.message)));
  raw.on('close', () => {
    // 'close' follows 'end' on every request: an error only for a body cut short
    if (!finished) finish(batonError('BATON_ERR_BAD_REQUEST', 'the client closed the connection mid-body'));
  });
}
