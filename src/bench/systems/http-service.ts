// One function as its own HTTP service (the Knative-like baseline): fastify, and when
// NEXT is set, each request is forwarded there over undici keep-alive and its answer
// returned (a synchronous chain). Args: [next URL or '-'] [mode: echo | hello].
import Fastify from 'fastify';
import { Pool } from 'undici';

const [next, mode = 'echo'] = process.argv.slice(2);
const app = Fastify({ logger: false, bodyLimit: 64 * 1024 * 1024 });
app.removeAllContentTypeParsers();
app.addContentTypeParser('*', { parseAs: 'buffer' }, (_req, body, done) => done(null, body));
const pool = next && next !== '-' ? new Pool(next, { connections: 64, keepAliveTimeout: 60_000 }) : undefined;

app.all('/*', async (req, reply) => {
  if (mode === 'hello') return reply.type('text/plain').send('hello');
  const body = (req.body as Buffer | undefined) ?? Buffer.alloc(0);
  if (!pool) return reply.type('application/octet-stream').send(body);
  const res = await pool.request({ path: '/chain', method: 'POST', body, headers: { 'content-type': 'application/octet-stream' } });
  return reply.code(res.statusCode).type('application/octet-stream').send(Buffer.from(await res.body.arrayBuffer()));
});

app.listen({ port: 0, host: '127.0.0.1' }).then((address) => process.send!({ ready: true, url: address }));
