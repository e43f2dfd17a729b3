// Node's own HTTP/1.1 parser (llhttp), as node:http uses it: an internal module without types.
// Only what src/gateway/http1.ts uses; its behaviour is pinned by test/unit/http1.test.ts.
declare module 'node:_http_common' {
  export class HTTPParser {
    static readonly REQUEST: number;
    static readonly kOnMessageBegin: number;
    static readonly kOnHeaders: number;
    static readonly kOnHeadersComplete: number;
    static readonly kOnBody: number;
    static readonly kOnMessageComplete: number;
    static readonly kOnExecute: number;
    [callback: number]: unknown;
    /** `resource`: the async-hooks resource; `maxHeaderSize`: bytes of request line and headers. */
    initialize(type: number, resource: object, maxHeaderSize: number, lenient: number): void;
    /** Parses what `handle` (a stream handle) reads, in C++, without JS 'data' events. */
    consume(handle: unknown): void;
    unconsume(): void;
    free(): void;
  }
  /** Method names by the parser's method numbers. */
  export const methods: string[];
}
