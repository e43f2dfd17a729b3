// The admin listener: status and run-time scaling, on their own address (127.0.0.1 by default),
// never on the public one — a client of the chain's routes cannot read the gateway's state or
// change its instances. Functions run on this host and could connect to 127.0.0.1 too: a
// request on a connection from one of their uids is answered 403.
import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import type { Socket } from 'node:net';
import type { Logger } from 'pino';
import { batonError } from '../errors.ts';
import { peerUid } from './port.ts';
import { asBatonError, sendError } from './respond.ts';

export const STATUS_PATH = '/status';
export const SCALE_PATH = '/scale';
export const HEALTH_PATH = '/healthz';
export const READY_PATH = '/readyz';
export const METRICS_PATH = '/metrics';

export interface AdminBackend {
  readonly log: Logger;
  /** Whether `uid` is one a function runs as. */
  isFunctionUid(uid: number): boolean;
  status(): unknown;
  /** The Prometheus text exposition, and its content type. */
  readonly metrics: { text(): Promise<string>; registry: { contentType: string } };
  /** Functions with no ready instance (none: every function can serve). */
  notReady(): string[];
  /** Whether the gateway is serving (not stopping). */
  readonly serving: boolean;
  scale(name: string, count: number): Promise<void>;
}

export function buildAdmin(backend: AdminBackend): FastifyInstance {
  const app = Fastify({
    loggerInstance: backend.log as FastifyBaseLogger,
    logController: new LogController({ disableRequestLogging: true }),
    bodyLimit: 65536,
  });
  // who is at the other end is known from the connection, before any request is read
  const fromFunction = new WeakSet<Socket>();
  app.server.on('connection', (socket: Socket) => {
    const uid = socket.localPort && socket.remotePort ? peerUid(socket.localPort, socket.remotePort) : undefined;
    if (uid !== undefined && backend.isFunctionUid(uid)) fromFunction.add(socket);
  });
  app.addHook('onRequest', async (req, reply) => {
    if (!fromFunction.has(req.raw.socket)) return;
    backend.log.warn({ url: req.url }, 'refused an admin request from a function');
    reply.header('connection', 'close');
    throw batonError('BATON_ERR_FORBIDDEN', 'functions may not use the admin listener');
  });
  app.get(STATUS_PATH, () => backend.status());
  app.get(METRICS_PATH, async (_req, reply) => reply.type(backend.metrics.registry.contentType).send(await backend.metrics.text()));
  // liveness: the gateway process answers; readiness: it serves and every function has a ready
  // instance (a probe takes it out of rotation while a function has none)
  app.get(HEALTH_PATH, (_req, reply) => (backend.serving ? { status: 'ok' } : reply.code(503).send({ status: 'stopping' })));
  app.get(READY_PATH, (_req, reply) => {
    const waiting = backend.serving ? backend.notReady() : ['(the gateway is stopping)'];
    return waiting.length ? reply.code(503).send({ status: 'not ready', waiting }) : { status: 'ready' };
  });
  // run-time scaling: {"function": "work", "instances": 4}
  app.post(SCALE_PATH, async (req) => {
    const body = (req.body ?? {}) as { function?: unknown; instances?: unknown };
    if (typeof body.function !== 'string' || !Number.isInteger(body.instances)) {
      throw batonError('BATON_ERR_SCALE', 'expected {"function": name, "instances": count}');
    }
    await backend.scale(body.function, body.instances as number);
    return { function: body.function, instances: body.instances };
  });
  app.setNotFoundHandler((req, reply) => {
    sendError(reply, batonError('BATON_ERR_ROUTE_NOT_FOUND', `${req.method} ${req.url.split('?')[0]} (admin: ${STATUS_PATH}, ${METRICS_PATH}, ${SCALE_PATH}, ${HEALTH_PATH}, ${READY_PATH})`));
  });
  app.setErrorHandler((err: Error & { code?: string; statusCode?: number }, _req, reply) => sendError(reply, asBatonError(err, 65536)));
  return app;
}
