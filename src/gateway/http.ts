// The HTTP side of the gateway (fastify): one route per chain route, the request body
// streamed straight into a pool slot (the only copy in), every failure answered from the
// error table, and the slot released when the response is written or the client leaves.
import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance, type FastifyRequest } from 'fastify';
import type { IncomingMessage } from 'node:http';
import { nowUs } from '../descriptor/index.ts';
import { batonError, BatonError } from '../errors.ts';
import type { Gateway } from './gateway.ts';
import { sendError } from './gateway.ts';

declare module 'fastify' {
  interface FastifyRequest {
    /** Pool slot holding this request (-1: none yet). */
    batonSlot: number;
    /** Arrival, µs on CLOCK_MONOTONIC. */
    batonArrive: number;
  }
}

export const STATUS_PATH = '/_baton/status';
export const SCALE_PATH = '/_baton/scale';

export function buildHttp(gw: Gateway): FastifyInstance {
  const capacity = gw.pool.capacity;
  const app = Fastify({
    loggerInstance: gw.log as FastifyBaseLogger,
    // a log line per request costs more than a hop: only at debug
    logController: new LogController({ disableRequestLogging: !gw.log.isLevelEnabled('debug') }),
    genReqId: () => String(gw.newRequestId()),
    bodyLimit: capacity,
    forceCloseConnections: true,
    return503OnClosing: true,
  });
  app.decorateRequest('batonSlot', -1);
  app.decorateRequest('batonArrive', 0);

  app.addHook('onRequest', (req, reply, done) => {
    req.batonArrive = nowUs();
    reply.raw.once('close', () => {
      if (req.batonSlot < 0) return;
      const reqId = Number(req.id);
      gw.forget(reqId); // the client may have left before the chain answered
      gw.requests.release(reqId, req.batonSlot);
    });
    done();
  });

  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', (req, payload, done) => streamIntoSlot(gw, req, payload, capacity, done));

  for (const route of gw.deployment.routes) {
    app.route({
      method: route.method as 'GET',
      url: route.path,
      handler: (req, reply) => {
        const slot = req.batonSlot >= 0 ? req.batonSlot : allocSlot(gw, req);
        const length = typeof req.body === 'number' ? req.body : 0;
        const meta = { method: req.method, url: req.url, contentType: req.headers['content-type'] };
        if (!gw.pool.writeMeta(slot, meta)) throw batonError('BATON_ERR_URL_TOO_LONG', `${req.url.length} characters`);
        return gw.dispatch(Number(req.id), slot, length, route.chainId, req.batonArrive, reply, meta.contentType);
      },
    });
  }

  // admin routes parse JSON as usual (fastify scopes content-type parsers per plugin)
  void app.register(async (admin) => {
    admin.removeAllContentTypeParsers();
    admin.addContentTypeParser('application/json', { parseAs: 'string', bodyLimit: 65536 }, admin.getDefaultJsonParser('error', 'ignore'));
    admin.get(STATUS_PATH, () => status(gw));
    // run-time scaling: {"function": "work", "instances": 4}
    admin.post(SCALE_PATH, async (req) => {
      const body = (req.body ?? {}) as { function?: unknown; instances?: unknown };
      if (typeof body.function !== 'string' || !Number.isInteger(body.instances)) {
        throw batonError('BATON_ERR_SCALE', 'expected {"function": name, "instances": count}');
      }
      await gw.scale(body.function, body.instances as number);
      return { function: body.function, instances: body.instances };
    });
  });

  app.setNotFoundHandler((req, reply) => {
    sendError(reply, batonError('BATON_ERR_ROUTE_NOT_FOUND', `${req.method} ${req.url.split('?')[0]}`), Number(req.id));
  });

  app.setErrorHandler((err: Error & { code?: string; statusCode?: number }, req, reply) => {
    let e: BatonError;
    if (err instanceof BatonError) e = err;
    else if (err.code === 'FST_ERR_CTP_BODY_TOO_LARGE') e = batonError('BATON_ERR_BODY_TOO_LARGE', `the limit is ${capacity} bytes`);
    else if (err.statusCode && err.statusCode < 500) {
      reply.code(err.statusCode).send({ error: err.code ?? 'BATON_ERR_BAD_REQUEST', message: err.message, requestId: Number(req.id) });
      return;
    } else {
      req.log.error({ err }, 'unexpected gateway error');
      reply.code(500).send({ error: 'BATON_ERR_INTERNAL', message: err.message, requestId: Number(req.id) });
      return;
    }
    if (e.code === 'BATON_ERR_BODY_TOO_LARGE') reply.header('connection', 'close'); // the rest of the body is not read
    sendError(reply, e, Number(req.id));
  });

  return app;
}

function status(gw: Gateway) {
  const binds = gw.kernelBinds();
  return {
    pool: { slots: gw.pool.slotCount, free: gw.pool.freeCount(), quarantined: gw.requests.quarantined, slotSize: gw.pool.slotSize },
    inFlight: gw.requests.size,
    stats: { ...gw.stats, binding: { ...gw.dispatcher.stats, ...binds } },
    timing: gw.timing.snapshot(),
    functions: gw.deployment.functions.map((f) => ({
      name: f.name,
      binding: f.binding,
      concurrency: f.concurrency,
      queued: gw.dispatcher.queued(f.id),
      idleTokens: gw.dispatcher.idleTokens(f.id),
      instances: gw.instances
        .of(f.id)
        .filter((i) => i.state !== 'stopped' || i.gaveUp)
        .map((i) => ({
          key: i.key, pid: i.child?.pid ?? null, state: i.state, restarts: i.restarts, gaveUp: i.gaveUp,
          coldStartMs: i.coldStartMs === undefined ? null : Math.round(i.coldStartMs),
        })),
    })),
  };
}

function allocSlot(gw: Gateway, req: FastifyRequest): number {
  const slot = gw.pool.alloc(Number(req.id));
  if (slot === undefined) throw batonError('BATON_ERR_POOL_EXHAUSTED', `${gw.pool.slotCount} slots`);
  req.batonSlot = slot;
  return slot;
}

/** Copies the body, chunk by chunk as it arrives, into a fresh slot; parses to its length. */
function streamIntoSlot(
  gw: Gateway,
  req: FastifyRequest,
  payload: IncomingMessage,
  capacity: number,
  done: (err: Error | null, body?: number) => void,
): void {
  const declared = Number(req.headers['content-length'] ?? 0);
  if (declared > capacity) {
    done(batonError('BATON_ERR_BODY_TOO_LARGE', `${declared} bytes; the limit is ${capacity}`));
    return;
  }
  let target: Buffer;
  try {
    target = gw.pool.payload(allocSlot(gw, req));
  } catch (err) {
    done(err as Error);
    return;
  }
  let length = 0;
  let finished = false;
  const finish = (err: Error | null) => {
    if (finished) return;
    finished = true;
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
  payload.on('error', (err) => finish(err));
}
