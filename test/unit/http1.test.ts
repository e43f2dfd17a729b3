// The public listener's HTTP/1.1 layer on real TCP sockets (src/gateway/http1.ts): order of
// pipelined answers, bounds on what a connection can make it hold, and the parts of HTTP/1.1 it
// answers itself. The gateway's own behaviour on top is in test/gateway.test.ts and
// test/hardening.test.ts.
import net from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { Http1Server, type Exchange, type Http1Options } from '../../src/gateway/http1.ts';

let server: Http1Server | undefined;
afterEach(async () => {
  await server?.close(100);
  server = undefined;
});

async function serve(onRequest: (ex: Exchange) => void, options: Partial<Http1Options> = {}): Promise<number> {
  server = new Http1Server({
    headersTimeoutMs: 5000,
    keepAliveTimeoutMs: 5000,
    onRequest,
    clientError: (code) => `HTTP/1.1 400 Bad Request\r\ncontent-length: ${code.length}\r\nconnection: close\r\n\r\n${code}`,
    ...options,
  });
  return Number(new URL(await server.listen(0, '127.0.0.1')).port);
}

/** Writes `text` on a new connection; resolves with all it reads until the server closes it or
 *  `until` matches what was read. */
function exchange(port: number, text: string, until?: RegExp): Promise<string> {
  return new Promise((resolve, reject) => {
    const sock = net.connect(port, '127.0.0.1');
    let got = '';
    sock.on('data', (d) => {
      got += d.toString('latin1');
      if (until?.test(got)) {
        sock.destroy();
        resolve(got);
      }
    });
    sock.on('close', () => resolve(got));
    sock.on('error', reject);
    sock.write(text);
  });
}

const get = (path: string, extra = '') => `GET ${path} HTTP/1.1\r\nhost: t\r\n${extra}\r\n`;
const bodies = (text: string) => [...text.matchAll(/content-length: (\d+)\r\n(?:[^\r]+\r\n)*\r\n/g)].map((m) => text.slice(m.index! + m[0].length, m.index! + m[0].length + Number(m[1])));

describe('http1', () => {
  it('answers pipelined requests in their order, whatever order they are answered in', async () => {
    const held: Exchange[] = [];
    const port = await serve((ex) => {
      held.push(ex);
      // answered last first, once all three are in
      if (held.length === 3) for (const h of [...held].reverse()) h.respond(200, ['content-length', h.url.length], h.url);
    });
    const text = await exchange(port, get('/one') + get('/two') + get('/three', 'connection: close\r\n'));
    expect(bodies(text)).toEqual(['/one', '/two', '/three']);
    expect(text.match(/connection: close/g)).toHaveLength(1); // only the last, which asked for it
  });

  it('holds at most 256 requests of one connection, and answers all of a long pipeline in order when they are answered later', async () => {
    let outstanding = 0;
    let most = 0;
    const port = await serve((ex) => {
      most = Math.max(most, ++outstanding);
      setTimeout(() => {
        outstanding--;
        ex.respond(200, ['content-length', ex.url.length], ex.url);
      }, 1);
    });
    const paths = [...Array(200)].map((_, i) => `/${i}`);
    const text = await exchange(port, paths.map((p, i) => get(p, i === 199 ? 'connection: close\r\n' : '')).join(''));
    expect(bodies(text)).toEqual(paths);
    expect(most).toBeLessThanOrEqual(256);
  });

  it('refuses a connection that pipelines more than 256 requests ahead of their answers', async () => {
    let seen = 0;
    const port = await serve(() => seen++); // never answered
    const text = await exchange(port, get('/x').repeat(300));
    expect(text).toMatch(/^HTTP\/1\.1 400 .*HPE_TOO_MANY_PIPELINED$/s);
    expect(seen).toBeLessThanOrEqual(256);
  });

  it('answers HEAD with the headers only', async () => {
    const port = await serve((ex) => ex.respond(200, ['content-length', 5], 'hello'));
    const text = await exchange(port, 'HEAD / HTTP/1.1\r\nhost: t\r\nconnection: close\r\n\r\n');
    expect(text).toMatch(/^HTTP\/1\.1 200 OK\r\n/);
    expect(text).toMatch(/content-length: 5\r\n/);
    expect(text.endsWith('\r\n\r\n')).toBe(true);
  });

  it('keeps an HTTP/1.0 connection that asks for it, and closes one that does not', async () => {
    const port = await serve((ex) => ex.respond(200, ['content-length', 2], 'ok'));
    const kept = await exchange(port, 'GET / HTTP/1.0\r\nconnection: keep-alive\r\n\r\n', /\r\n\r\nok/);
    expect(kept).toMatch(/connection: keep-alive\r\n/);
    const closed = await exchange(port, 'GET / HTTP/1.0\r\n\r\n' + 'GET /after HTTP/1.0\r\n\r\n');
    expect(closed.match(/HTTP\/1\.1 200/g)).toHaveLength(1); // nothing after a closing request is served
    expect(closed).toMatch(/connection: close\r\n/);
  });

  it('tells a client that expects 100-continue to send its body', async () => {
    const port = await serve((ex) => {
      let body = '';
      ex.body((b) => (body += b), () => ex.respond(200, ['content-length', body.length], body), () => {});
      ex.proceed();
    });
    const sock = net.connect(port, '127.0.0.1');
    sock.write('POST / HTTP/1.1\r\nhost: t\r\ncontent-length: 4\r\nexpect: 100-continue\r\nconnection: close\r\n\r\n');
    let got = '';
    await new Promise<void>((resolve) => {
      sock.on('data', (d) => {
        got += d.toString();
        if (got === 'HTTP/1.1 100 Continue\r\n\r\n') sock.write('body'); // only after the go-ahead
      });
      sock.on('close', () => resolve());
    });
    expect(got).toMatch(/^HTTP\/1\.1 100 Continue\r\n\r\nHTTP\/1\.1 200 OK\r\n.*\r\n\r\nbody$/s);
  });

  it('refuses an upgrade, and malformed input, with the caller\'s error and a closed connection', async () => {
    let seen = 0;
    const port = await serve(() => seen++);
    expect(await exchange(port, get('/', 'connection: upgrade\r\nupgrade: websocket\r\n'))).toMatch(/^HTTP\/1\.1 400 .*HPE_UPGRADE$/s);
    expect(await exchange(port, 'GET / HTTP/1.1\r\ncontent-length: 1\r\ntransfer-encoding: chunked\r\n\r\n')).toMatch(/^HTTP\/1\.1 400 .*HPE_/s);
    expect(await exchange(port, `GET /${'a'.repeat(20000)} HTTP/1.1\r\n\r\n`)).toMatch(/HPE_HEADER_OVERFLOW$/);
    expect(seen).toBe(0);
  });

  it('gives a connection that sends no request line in time the timeout error, and closes an idle one', async () => {
    const port = await serve((ex) => ex.respond(200, ['content-length', 2], 'ok'), { headersTimeoutMs: 200, keepAliveTimeoutMs: 200 });
    expect(await exchange(port, 'GET / HTTP/1.1\r\nhost')).toMatch(/ERR_HTTP_REQUEST_TIMEOUT$/);
    const idle = await exchange(port, get('/')); // answered, then closed for idleness (not by the client)
    expect(idle.match(/HTTP\/1\.1 200/g)).toHaveLength(1);
  });

  it('tells every request of a connection that goes that it is closed, answered or not', async () => {
    const closed: string[] = [];
    let bodyCut = false;
    const port = await serve((ex) => {
      ex.onClose(() => closed.push(ex.url));
      if (ex.url === '/answered') ex.respond(200, ['content-length', 0], '');
      if (ex.url === '/body') ex.body(() => {}, () => {}, () => (bodyCut = true));
    });
    const sock = net.connect(port, '127.0.0.1');
    sock.write(get('/answered') + get('/waiting') + 'POST /body HTTP/1.1\r\nhost: t\r\ncontent-length: 100\r\n\r\nhalf');
    await new Promise((r) => sock.once('data', r));
    sock.destroy();
    await expect.poll(() => closed.length).toBe(3);
    expect(closed.sort()).toEqual(['/answered', '/body', '/waiting']);
    expect(bodyCut).toBe(true);
  });
});
