// The HTTP edge: the public listener. Requests are read by src/gateway/http1.ts (Node's own
// parser, without node:http's request and response objects: they cost more CPU per request than
// everything else the gateway does); a chain route is matched by find-my-way (fastify's router),
// its body streamed straight into a pool slot (the only copy in), its answer written from the
// slot (the only copy out). Fastify serves the admin listener (admin.ts). The edge bounds what a
// client can hold: a slot is taken only when a body starts, a body must arrive within the body
// timeout (408), a response must be taken within the send timeout, and every request a
// connection carried — pipelined, aborted or answered — is closed when the connection goes,
// which gives its slot back.
import FindMyWay from 'find-my-way';
import type { Logger } from 'pino';
import type { Ticket } from '../admission/admission.ts';
import { CLASS_HEADER } from '../admission/classes.ts';
import type { RouteSpec } from '../chain/index.ts';
import { nowUs } from '../descriptor/index.ts';
import { batonError, BatonError } from '../errors.ts';
import type { RequestMeta } from '../pool/index.ts';
import { Deadlines } from './deadlines.ts';
import { Http1Server, type Exchange } from './http1.ts';
import type { Request, RequestTable } from './requests.ts';
import { asBatonError, rawError, writeAnswer, writeError, type Answer } from './respond.ts';

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
  private readonly sending = new Map<number, { seq: number; ex: Exchange }>();
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
      if (x?.seq === seq) x.ex.destroy();
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
  send(id: number, ex: Exchange): void {
    const seq = (this.started = (this.started + 1) >>> 0); // as the ring keeps it: u32
    this.sending.set(id, { seq, ex });
    this.sends.add(id, seq, performance.now() + this.sendMs);
  }

  /** Request `id` is closed. */
  done(id: number): void {
    this.reading.delete(id);
    this.sending.delete(id);
  }
}

/** The public listener. */
export interface HttpEdge {
  /** Listens; resolves with its URL. */
  listen(opts: { port: number; host: string }): Promise<string>;
  /** Stops taking requests; resolves when every connection is closed, each after its answers. */
  close(): Promise<void>;
}

/** Node's own idle bound for a kept-alive connection. */
const KEEP_ALIVE_MS = 5000;

export function buildHttp(backend: Backend): HttpEdge {
  const { requests } = backend;
  const clocks = new Clocks(backend.bodyTimeoutMs, backend.sendTimeoutMs);
  /** A new request, closed when its response is done or its connection goes. */
  const track = (ex: Exchange): Request => {
    const req = requests.create();
    ex.onClose(() => {
      clocks.done(req.id);
      requests.close(req.id);
    });
    return req;
  };
  const chains = chainRoutes(backend, track, clocks);
  const server = new Http1Server({
    // slow headers hold a connection, never a slot
    headersTimeoutMs: backend.bodyTimeoutMs,
    keepAliveTimeoutMs: KEEP_ALIVE_MS,
    onRequest: (ex) => {
      if (chains(ex)) return;
      const req = track(ex);
      writeError(ex, batonError('BATON_ERR_ROUTE_NOT_FOUND', `${ex.method} ${ex.url.split('?')[0]}`), req.id);
    },
    // malformed HTTP never becomes a request: answered from the table, then the connection goes
    clientError: (code) =>
      rawError(
        code === 'HPE_HEADER_OVERFLOW'
          ? batonError('BATON_ERR_HEADERS_TOO_LARGE')
          : code === 'ERR_HTTP_REQUEST_TIMEOUT'
            ? batonError('BATON_ERR_BODY_TIMEOUT', 'headers did not arrive in time')
            : batonError('BATON_ERR_BAD_REQUEST', code),
      ),
  });
  return {
    listen: ({ port, host }) => server.listen(port, host),
    close: () => server.close(),
  };
}

/** The chain routes' request handler: true if it took the request. */
function chainRoutes(backend: Backend, track: (ex: Exchange) => Request, clocks: Clocks) {
  const router = FindMyWay();
  for (const route of backend.routes) {
    // a GET route answers HEAD too (the body is left out), as fastify's routes do
    const methods = route.method === 'GET' ? ['GET', 'HEAD'] : [route.method];
    router.on(methods as FindMyWay.HTTPMethod[], route.path, () => {}, { chainId: route.chainId });
  }
  const debug = backend.log.isLevelEnabled('debug');
  return (ex: Exchange): boolean => {
    const url = ex.url;
    const q = url.indexOf('?');
    const found = router.find(ex.method as FindMyWay.HTTPMethod, q < 0 ? url : url.slice(0, q));
    if (!found) return false;
    const chainId = (found.store as { chainId: number }).chainId;
    const arrive = nowUs();
    const req = track(ex);
    if (debug) backend.log.debug({ reqId: req.id, method: ex.method, url }, 'incoming request');
    if (!backend.serving) {
      writeError(ex, batonError('BATON_ERR_SHUTTING_DOWN'), req.id);
      return true;
    }
    const contentLength = ex.header('content-length');
    const declared = Number(contentLength ?? 0);
    const ticket = backend.admit(chainId, ex.header(CLASS_HEADER), declared);
    if (ticket instanceof BatonError) {
      // refused before its body is read: a connection that still carries one cannot go on
      const carriesBody = contentLength !== undefined || ex.header('transfer-encoding') !== undefined;
      writeError(ex, ticket, req.id, { 'retry-after': String(backend.retryAfterS) }, carriesBody);
      return true;
    }
    req.rank = ticket.rank;
    let answeredMs = -1;
    ex.onClose(() => backend.settled(ticket, answeredMs));
    readBody(backend, clocks, ex, req, chainId, declared, (err, length) => {
      if (err) return writeError(ex, err, req.id);
      const meta = { method: ex.method, url, contentType: ex.header('content-type') };
      if (!backend.writeMeta(req.slot, meta)) return writeError(ex, batonError('BATON_ERR_URL_TOO_LONG', `${url.length} characters`), req.id);
      try {
        backend.dispatch(req, chainId, length, arrive, meta, ex.header(TIMING_HEADER) !== undefined, ex.header('traceparent'), (a) => {
          answeredMs = (nowUs() - arrive) / 1000;
          if (!('error' in a)) clocks.send(req.id, ex);
          writeAnswer(ex, a, req.id);
        });
      } catch (e) {
        writeError(ex, asBatonError(e as Error, backend.capacity), req.id);
      }
    });
    return true;
  };
}

/** Copies the body, chunk by chunk as it arrives, into the request's slot; calls `done` with
 *  its length, or with the error that ends it (too large, too slow, cut short). */
function readBody(
  backend: Backend,
  clocks: Clocks,
  ex: Exchange,
  req: Request,
  chainId: number,
  /** Its content-length (0: none). */
  declared: number,
  done: (err: BatonError | null, length: number) => void,
): void {
  const { capacity } = backend;
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
  ex.body(
    (chunk) => {
      if (finished) return;
      if (length + chunk.length > capacity) {
        finish(batonError('BATON_ERR_BODY_TOO_LARGE', `more than ${capacity} bytes`));
        return;
      }
      chunk.copy(target, length);
      length += chunk.length;
    },
    () => finish(null),
    () => finish(batonError('BATON_ERR_BAD_REQUEST', 'the client closed the connection mid-body')),
  );
  if (ex.header('expect')?.toLowerCase() === '100-continue') ex.proceed();
}
