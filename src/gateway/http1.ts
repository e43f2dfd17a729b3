// The public listener's HTTP/1.1 connections, on Node's own parser (llhttp: the one node:http
// uses, with its strictness about request smuggling and malformed input) reading each socket in
// C++. What node:http adds on top — a request and a response stream per request, their events,
// header objects — cost more CPU than a whole bare fastify service spends per request, so this
// layer keeps only what a gateway needs: requests of a connection answered in order
// (pipelining), the header, idle and send bounds, and one write per response. What a request
// means is up to the caller (http.ts).
import net, { type Server, type Socket } from 'node:net';
import { STATUS_CODES } from 'node:http';
import { HTTPParser, methods } from 'node:_http_common';

/** One request on a connection and its one response. */
export interface Exchange {
  readonly method: string;
  /** As sent: path and query. */
  readonly url: string;
  /** The header value (the first of its name; names are matched in lower case). */
  header(name: string): string | undefined;
  /** Body bytes as they arrive (chunked bodies decoded); `end` once it is whole, `aborted` if the
   *  connection went first. Chunks not taken are dropped. */
  body(chunk: (b: Buffer) => void, end: () => void, aborted: () => void): void;
  /** Writes the response once the earlier requests of its connection have theirs; `close`: the
   *  connection goes after it. Headers are name, value, … (values checked by the caller). */
  respond(status: number, headers: (string | number)[], body: Buffer | string, close?: boolean): void;
  /** Answers 'expect: 100-continue' (for a request that will read its body). */
  proceed(): void;
  /** `done` runs once (each one given, in order), when the response has been handed to the kernel
   *  or the connection is gone: then nothing of the request is read any more (a body view may be
   *  freed). */
  onClose(done: () => void): void;
  /** Drops the connection (a client that does not take its response in time). */
  destroy(): void;
}

export interface Http1Options {
  /** Request line and headers must arrive within this (408, then the connection closes). */
  headersTimeoutMs: number;
  /** A connection with nothing to do closes after this. */
  keepAliveTimeoutMs: number;
  onRequest(ex: Exchange): void;
  /** The bytes to answer a connection whose input is not HTTP (then it closes). */
  clientError(code: string): string;
}

const MAX_HEADER_SIZE = 16 * 1024; // node:http's default
const MAX_HEADER_PAIRS = 2000; // node:http's default
/** Requests of one connection waiting for their response before it stops reading: a client
 *  pipelining thousands does not make the gateway hold thousands. What one read already holds
 *  is parsed (as node:http does); beyond MAX_PIPELINED in it, the connection is refused. */
const MAX_QUEUED = 32;
const MAX_PIPELINED = 256;
const EMPTY = Buffer.alloc(0);
const SMALL = 16 * 1024; // a response up to this size goes out as one buffer (one copy, no writev)

const kOnMessageBegin = HTTPParser.kOnMessageBegin;
const kOnHeaders = HTTPParser.kOnHeaders;
const kOnHeadersComplete = HTTPParser.kOnHeadersComplete;
const kOnBody = HTTPParser.kOnBody;
const kOnMessageComplete = HTTPParser.kOnMessageComplete;
const kOnExecute = HTTPParser.kOnExecute;

let dateSecond = 0;
let dateText = '';
/** The Date header's text, made once a second. */
function date(): string {
  const now = Date.now();
  if (now - dateSecond >= 1000) {
    dateSecond = now - (now % 1000);
    dateText = new Date(dateSecond).toUTCString();
  }
  return dateText;
}

class Request1 implements Exchange {
  headers: string[];
  takeBody?: (b: Buffer) => void;
  bodyEnd?: () => void;
  bodyAborted?: () => void;
  ended = false;
  /** The response: status line and headers (without the connection header and the blank line). */
  out?: { head: string; body: Buffer; close: boolean };
  closed = false;
  private done?: () => void;

  constructor(
    private readonly conn: Connection,
    readonly method: string,
    readonly url: string,
    headers: string[],
    private readonly keepAlive: boolean,
    readonly http10: boolean,
  ) {
    // names in lower case once, so that each look-up is a comparison
    for (let i = 0; i < headers.length; i += 2) headers[i] = headers[i]!.toLowerCase();
    this.headers = headers;
  }

  header(name: string): string | undefined {
    const h = this.headers;
    for (let i = 0; i < h.length; i += 2) if (h[i] === name) return h[i + 1];
    return undefined;
  }

  body(chunk: (b: Buffer) => void, end: () => void, aborted: () => void): void {
    this.takeBody = chunk;
    this.bodyEnd = end;
    this.bodyAborted = aborted;
    if (this.ended) end();
  }

  respond(status: number, headers: (string | number)[], body: Buffer | string, close = false): void {
    if (this.closed || this.out) return;
    let head = `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? ''}\r\ndate: ${date()}\r\n`;
    for (let i = 0; i < headers.length; i += 2) head += `${headers[i]}: ${headers[i + 1]}\r\n`;
    const bytes = this.method === 'HEAD' ? EMPTY : typeof body === 'string' ? Buffer.from(body) : body;
    this.out = { head, body: bytes, close: close || !this.keepAlive };
    this.conn.flush();
  }

  /** Tells a client that waits before sending its body ('expect: 100-continue') to send it. */
  proceed(): void {
    if (this.conn.queue[0] === this && !this.out && !this.closed) this.conn.socket.write('HTTP/1.1 100 Continue\r\n\r\n', 'latin1');
  }

  onClose(done: () => void): void {
    if (this.closed) done();
    else if (!this.done) this.done = done;
    else {
      const first = this.done;
      this.done = () => {
        first();
        done();
      };
    }
  }

  destroy(): void {
    this.conn.socket.destroy();
  }

  /** The response is out, or will never be. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    if (!this.ended) this.bodyAborted?.();
    this.done?.();
  }
}

type Phase = 'headers' | 'body' | 'between';

class Connection {
  readonly parser = new HTTPParser();
  /** Requests read and not answered yet, oldest first (answers go out in this order). */
  readonly queue: Request1[] = [];
  private phase: Phase = 'headers';
  /** When the current phase began (performance.now()): headers and idleness are timed from it. */
  private since = performance.now();
  closing = false;
  /** Set when the connection goes after what it has written: nothing more is served. */
  private ending = false;
  /** Answers handed to the socket whose write has not completed. */
  private readonly writing = new Set<Request1>();
  private reading = true;
  private current?: Request1;
  private headers: string[] = [];
  private url = '';

  constructor(readonly socket: Socket, private readonly options: Http1Options, private readonly gone: (c: Connection) => void) {
    const p = this.parser;
    p.initialize(HTTPParser.REQUEST, {}, MAX_HEADER_SIZE, 0);
    p[kOnMessageBegin] = () => {
      this.phase = 'headers';
      this.since = performance.now();
    };
    // a header block longer than one read comes in parts, before its completion
    p[kOnHeaders] = (headers: string[], url: string) => {
      if (this.headers.length < MAX_HEADER_PAIRS * 2) this.headers.push(...headers);
      this.url += url;
    };
    p[kOnHeadersComplete] = (
      major: number, minor: number, headers: string[] | undefined, method: number, url: string | undefined,
      _status: unknown, _message: unknown, upgrade: boolean, keepAlive: boolean,
    ) => {
      if (headers === undefined) [headers, this.headers] = [this.headers, []];
      if (url === undefined) [url, this.url] = [this.url, ''];
      this.phase = 'body';
      if (this.ending) {
        // parsed from the same read as a request after which the connection goes: not served
        this.current = undefined;
        return 0;
      }
      if (this.queue.length >= MAX_PIPELINED) {
        this.current = undefined;
        this.fail('HPE_TOO_MANY_PIPELINED');
        return 0;
      }
      const req = new Request1(this, methods[method] ?? 'GET', url, headers, keepAlive && !upgrade, major === 1 && minor === 0);
      this.current = req;
      this.queue.push(req);
      if (this.queue.length >= MAX_QUEUED) this.pause();
      if (upgrade) {
        // no protocol switch here: the bytes after the headers are not HTTP any more
        this.fail('HPE_UPGRADE');
        return 0;
      }
      options.onRequest(req);
      return 0;
    };
    p[kOnBody] = (b: Buffer) => this.current?.takeBody?.(b);
    p[kOnMessageComplete] = () => {
      const req = this.current;
      this.current = undefined;
      this.phase = 'between';
      this.since = performance.now();
      if (!req || req.ended) return;
      req.ended = true;
      req.bodyEnd?.();
    };
    p[kOnExecute] = (ret: number | Error) => {
      if (ret instanceof Error) this.malformed(ret as Error & { code?: string });
    };
    // a net.Server's sockets are TCP stream handles: the parser reads them itself
    p.consume((socket as unknown as { _handle: unknown })._handle);
    socket.on('drain', () => this.resume());
    socket.on('error', () => {}); // 'close' follows
    socket.once('close', () => this.closed());
  }

  /** Writes what is answered, in request order. */
  flush(): void {
    const q = this.queue;
    while (q.length > 0 && q[0]!.out && !this.socket.destroyed) {
      const req = q.shift()!;
      const out = req.out!;
      // the last answer of a connection that is closing says so
      const close = out.close || (this.closing && q.length === 0);
      const head = out.head + (close ? 'connection: close\r\n\r\n' : req.http10 ? 'connection: keep-alive\r\n\r\n' : '\r\n');
      const body = out.body;
      this.writing.add(req);
      const after = () => {
        this.writing.delete(req);
        req.close();
        if (this.closing && this.queue.length === 0 && this.writing.size === 0) this.socket.end();
      };
      if (body.length === 0) this.socket.write(head, 'latin1', after);
      else if (body.length <= SMALL) {
        const buf = Buffer.allocUnsafe(head.length + body.length);
        buf.write(head, 0, 'latin1');
        body.copy(buf, head.length);
        this.socket.write(buf, after);
      } else {
        this.socket.cork();
        this.socket.write(head, 'latin1');
        this.socket.write(body, after);
        this.socket.uncork();
      }
      if (close) {
        // what else was queued behind it is never answered: closed with the connection
        this.closing = true;
        this.ending = true;
        this.pause();
        this.socket.end();
        return;
      }
    }
    if (q.length === 0) this.since = performance.now();
    if (this.socket.writableNeedDrain) this.pause();
    else if (q.length < MAX_QUEUED / 2) this.resume();
  }

  /** Times out what has waited too long (called now and then by the server). */
  check(now: number, headersMs: number, idleMs: number): void {
    if (this.queue.length > 0 || this.writing.size > 0) return; // a request in hand is timed by the caller
    if (this.phase === 'headers' && now - this.since > headersMs) this.fail('ERR_HTTP_REQUEST_TIMEOUT');
    else if (this.phase === 'between' && now - this.since > idleMs) this.socket.destroy();
  }

  /** Stops taking requests: the connection closes once what it has is answered. */
  shutdown(): void {
    this.closing = true;
    this.pause();
    if (this.queue.length === 0 && this.writing.size === 0) this.socket.destroy();
  }

  private malformed(err: Error & { code?: string }): void {
    // bytes after a request that closes the connection: not read, as node:http does
    if (err.code === 'HPE_CLOSED_CONNECTION') return this.pause();
    this.fail(err.code ?? 'HPE_INVALID');
  }

  /** Answers input that cannot be served (malformed, too slow), then closes. */
  private fail(code: string): void {
    if (this.ending) return;
    this.pause();
    this.closing = true;
    this.ending = true;
    if (this.socket.writable) this.socket.end(this.options.clientError(code), 'latin1');
    this.socket.destroySoon();
  }

  private pause(): void {
    if (!this.reading) return;
    this.reading = false;
    (this.socket as unknown as { _handle?: { readStop?(): void } })._handle?.readStop?.();
  }

  private resume(): void {
    if (this.reading || this.closing || this.socket.destroyed) return;
    this.reading = true;
    (this.socket as unknown as { _handle?: { readStart?(): void } })._handle?.readStart?.();
  }

  private closed(): void {
    for (const req of this.queue.splice(0)) req.close();
    for (const req of this.writing) req.close();
    this.writing.clear();
    this.current?.close();
    this.current = undefined;
    this.parser.unconsume();
    this.parser.free();
    this.gone(this);
  }
}

/** An HTTP/1.1 server: `listen`, then `close` (stops taking connections; each closes once its
 *  requests are answered). */
export class Http1Server {
  private readonly server: Server;
  private readonly connections = new Set<Connection>();
  private checker?: NodeJS.Timeout;

  constructor(options: Http1Options) {
    this.server = net.createServer({ noDelay: true }, (socket) => {
      const conn = new Connection(socket, options, (c) => this.connections.delete(c));
      this.connections.add(conn);
    });
    // bounds are checked often enough that they hold to within a fraction of themselves
    const every = Math.max(50, Math.min(1000, options.headersTimeoutMs / 4));
    this.checker = setInterval(() => {
      const now = performance.now();
      for (const c of this.connections) c.check(now, options.headersTimeoutMs, options.keepAliveTimeoutMs);
    }, every);
    this.checker.unref();
  }

  /** Listens; resolves with the URL. */
  listen(port: number, host: string): Promise<string> {
    return new Promise((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(port, host, () => {
        this.server.off('error', reject);
        const a = this.server.address() as net.AddressInfo;
        resolve(`http://${a.family === 'IPv6' ? `[${a.address}]` : a.address}:${a.port}`);
      });
    });
  }

  /** Stops listening; resolves once every connection has closed (each after its answers; all
   *  of them after `graceMs` at the latest). */
  close(graceMs = 3000): Promise<void> {
    clearInterval(this.checker);
    for (const c of this.connections) c.shutdown();
    if (!this.server.listening) return Promise.resolve();
    return new Promise((resolve) => {
      const force = setTimeout(() => {
        for (const c of this.connections) c.socket.destroy();
      }, graceMs);
      this.server.close(() => {
        clearTimeout(force);
        resolve();
      });
    });
  }
}
