// What a handler sees: `req`, a zero-copy view of the request in the pool, and `ctx`, which
// writes the result straight into the same slot and says where the request goes next.
// Once a handler writes its output, the input view is overwritten: read first, then write.
import { batonError } from '../errors.ts';
import type { Pool, RequestMeta } from '../pool/index.ts';
import { packInto, unpackFrom } from './msgpack.ts';

/** A result already written into the slot; handlers return it. */
export class Output {
  constructor(readonly length: number) {}
}

export class FunctionRequest {
  private cachedMeta?: RequestMeta;
  private cachedUrl?: URL;

  constructor(
    private readonly pool: Pool,
    private readonly slot: number,
    /** The request's payload: a view into shared memory, not a copy. */
    readonly body: Buffer,
    readonly requestId: number,
  ) {}

  private get meta(): RequestMeta {
    return (this.cachedMeta ??= this.pool.readMeta(this.slot));
  }
  get method(): string {
    return this.meta.method;
  }
  get url(): string {
    return this.meta.url;
  }
  get path(): string {
    return this.parsedUrl.pathname;
  }
  get query(): URLSearchParams {
    return this.parsedUrl.searchParams;
  }
  get contentType(): string | undefined {
    return this.meta.contentType;
  }
  private get parsedUrl(): URL {
    return (this.cachedUrl ??= new URL(this.meta.url, 'http://baton.local'));
  }

  text(): string {
    return this.body.toString('utf8');
  }
  json<T = unknown>(): T {
    return JSON.parse(this.body.toString('utf8')) as T;
  }
  msgpack<T = unknown>(): T {
    return unpackFrom(this.body) as T;
  }
}

export class FunctionContext {
  /** HTTP status for the final response (unset: 200). */
  statusCode?: number;
  contentType?: string;
  nextName?: string;
  ended = false;

  constructor(
    /** This function's name. */
    readonly name: string,
    private readonly out: Buffer,
  ) {}

  status(code: number): this {
    if (!Number.isInteger(code) || code < 200 || code > 599) {
      // 1xx are not final: a client would wait for another response that never comes
      throw new RangeError(`invalid status ${code} in ctx.status(): a chain answers with a final response, 200..599`);
    }
    this.statusCode = code;
    return this;
  }

  type(contentType: string): this {
    this.contentType = contentType;
    return this;
  }

  /** Names the function to run next; it must be one of the chain's next step. */
  next(functionName: string): this {
    this.nextName = functionName;
    return this;
  }

  /** Answers the client with this function's output, skipping the rest of the chain. */
  end(): this {
    this.ended = true;
    return this;
  }

  /** The slot's writable payload area (zero copy); return `ctx.written(n)` after filling it. */
  payload(): Buffer {
    return this.out;
  }

  written(length: number): Output {
    if (!Number.isInteger(length) || length < 0 || length > this.out.length) {
      throw batonError('BATON_ERR_RESPONSE_TOO_LARGE', `${length} bytes, a slot holds ${this.out.length}`);
    }
    return new Output(length);
  }

  text(value: string, contentType = 'text/plain; charset=utf-8'): Output {
    this.contentType ??= contentType;
    return this.writeString(value);
  }

  json(value: unknown): Output {
    this.contentType ??= 'application/json';
    const s = JSON.stringify(value);
    return this.writeString(s === undefined ? 'null' : s);
  }

  msgpack(value: unknown): Output {
    this.contentType ??= 'application/msgpack';
    const n = packInto(value, this.out);
    if (n < 0) throw batonError('BATON_ERR_RESPONSE_TOO_LARGE', `msgpack output exceeds ${this.out.length} bytes`);
    return new Output(n);
  }

  /** Copies bytes into the slot (overlapping views of the input are fine). */
  send(bytes: Uint8Array): Output {
    if (bytes.length > this.out.length) {
      throw batonError('BATON_ERR_RESPONSE_TOO_LARGE', `${bytes.length} bytes, a slot holds ${this.out.length}`);
    }
    this.out.set(bytes);
    return new Output(bytes.length);
  }

  private writeString(s: string): Output {
    // a UTF-16 unit never takes more than 3 UTF-8 bytes: measure only when it may not fit
    if (s.length * 3 > this.out.length) {
      const n = Buffer.byteLength(s, 'utf8');
      if (n > this.out.length) throw batonError('BATON_ERR_RESPONSE_TOO_LARGE', `${n} bytes, a slot holds ${this.out.length}`);
    }
    return new Output(this.out.write(s, 0, 'utf8'));
  }
}
