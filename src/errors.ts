// Every error baton reports, in one table with a stable code, an HTTP status for the ones a
// client can see, and a message (fastify's FST_ERR_* habit). Create them with
// `batonError(code, detail)`.

export const ERRORS = {
  BATON_ERR_BAD_REQUEST: { status: 400, message: 'malformed HTTP request' },
  BATON_ERR_FORBIDDEN: { status: 403, message: 'not allowed' },
  BATON_ERR_ROUTE_NOT_FOUND: { status: 404, message: 'no route for this method and path' },
  BATON_ERR_BODY_TIMEOUT: { status: 408, message: 'the request body did not arrive within the body timeout' },
  BATON_ERR_BODY_TOO_LARGE: { status: 413, message: 'request body is larger than a pool slot' },
  BATON_ERR_URL_TOO_LONG: { status: 414, message: 'request line does not fit in a pool slot header' },
  BATON_ERR_HEADERS_TOO_LARGE: { status: 431, message: 'request headers are too large' },
  BATON_ERR_HANDLER: { status: 500, message: 'a function threw' },
  BATON_ERR_BAD_NEXT: { status: 500, message: 'a function named a next step its chain does not have' },
  BATON_ERR_RESPONSE_TOO_LARGE: { status: 500, message: 'a function wrote more than a pool slot holds' },
  BATON_ERR_INPUT_OVERWRITTEN: { status: 500, message: 'a function read its input after writing its output over it' },
  BATON_ERR_CTX_CLOSED: { status: 500, message: 'a function wrote through ctx after its handler returned' },
  BATON_ERR_BAD_RESULT: { status: 500, message: 'a function returned something that is not a result' },
  BATON_ERR_BAD_CALL: { status: 500, message: 'a function made a call it may not make' },
  BATON_ERR_CALL_FAILED: { status: 502, message: 'a function called with ctx.call() failed' },
  BATON_ERR_INTERNAL: { status: 500, message: 'the gateway failed unexpectedly' },
  BATON_ERR_WORKER_CRASHED: { status: 502, message: 'the function instance handling this request exited' },
  BATON_ERR_MEMORY_LIMIT: { status: 502, message: 'the function instance handling this request went over its memory limit and was killed' },
  BATON_ERR_DEAD_LETTER: { status: 502, message: 'no live function instance to deliver to' },
  BATON_ERR_BAD_DESCRIPTOR: { status: 502, message: 'a function sent a malformed or forged descriptor' },
  BATON_ERR_OVERLOADED: { status: 429, message: 'the gateway is overloaded and this request\'s class has no room; retry later' },
  BATON_ERR_POOL_EXHAUSTED: { status: 503, message: 'all shared-memory pool slots are in use; retry later' },
  BATON_ERR_SHUTTING_DOWN: { status: 503, message: 'the gateway is shutting down' },
  BATON_ERR_QUEUE_FULL: { status: 503, message: 'too many requests wait for an idle instance; retry later' },
  BATON_ERR_SHED: { status: 503, message: 'the request could not meet its deadline any more: shed' },
  BATON_ERR_TIMEOUT: { status: 504, message: 'the chain did not answer within the request timeout' },
  BATON_ERR_CHAIN_FILE: { status: 0, message: 'invalid chain file' },
  BATON_ERR_PORT_IN_USE: { status: 0, message: 'the gateway cannot listen: the port is in use' },
  BATON_ERR_LISTEN: { status: 0, message: 'the gateway cannot listen' },
  BATON_ERR_START_TIMEOUT: { status: 0, message: 'a function instance did not become ready in time' },
  BATON_ERR_START_FAILED: { status: 0, message: 'a function instance failed to start' },
  BATON_ERR_NO_CAPACITY: { status: 503, message: 'the function had no instance, and the node had no room to start one in time' },
  BATON_ERR_COLD_START_FAILED: { status: 503, message: 'the function had no instance, and starting one failed' },
  BATON_ERR_BUILD: { status: 0, message: 'a function module does not build' },
  BATON_ERR_NO_SUCH_RUN: { status: 0, message: 'no such bench run' },
  BATON_ERR_TRACE: { status: 0, message: 'invalid simulation trace' },
  BATON_ERR_NOT_RUNNING: { status: 0, message: 'no gateway answers there' },
  BATON_ERR_INIT: { status: 0, message: 'cannot scaffold a function project there' },
  BATON_ERR_TESTS_FAILED: { status: 0, message: 'tests failed' },
  BATON_ERR_SCALE: { status: 400, message: 'cannot scale the function that way' },
  BATON_ERR_NOT_BUILT: {
    status: 0,
    message: 'the native addon is not built: apt-get install -y clang libbpf-dev bpftool pkg-config, then npm install',
  },
  BATON_ERR_NO_PRIVILEGE: { status: 0, message: 'eBPF needs privilege: run as root, or grant CAP_BPF, CAP_PERFMON and CAP_NET_ADMIN (deploy/baton.service lists all the gateway uses)' },
  BATON_ERR_KERNEL_FEATURE: {
    status: 0,
    // the one statement of the minimum kernel: BPF atomics (fetch-and), mmapable arrays, SK_MSG
    message: 'this kernel cannot load baton\'s SK_MSG program (needs Linux >= 5.12 with CONFIG_BPF_SYSCALL and CONFIG_NET_SOCK_MSG)',
  },
  BATON_ERR_DATAPLANE: { status: 0, message: 'no such data plane' },
  BATON_ERR_NATIVE: { status: 0, message: 'a system call failed' },
  BATON_ERR_CLOSED: { status: 0, message: 'the data plane is already closed' },
  BATON_ERR_POOL: { status: 0, message: 'invalid pool access' },
} as const;

export type BatonErrorCode = keyof typeof ERRORS;

/** Marks a BatonError whichever copy of this module made it (the `up` command runs from its
 *  own bundle, beside the CLI's modules: `instanceof` must hold across the two). */
const BRAND = Symbol.for('baton.error');

export class BatonError extends Error {
  readonly code: BatonErrorCode;
  /** HTTP status a client sees for this error (0: not a request error). */
  readonly status: number;
  readonly [BRAND] = true;

  static override [Symbol.hasInstance](value: unknown): boolean {
    return typeof value === 'object' && value !== null && (value as { [BRAND]?: boolean })[BRAND] === true;
  }

  constructor(code: BatonErrorCode, detail?: string, options?: { cause?: unknown }) {
    super(detail ? `${ERRORS[code].message}: ${detail}` : ERRORS[code].message, options);
    this.name = 'BatonError';
    this.code = code;
    this.status = ERRORS[code].status;
  }
}

export function batonError(code: BatonErrorCode, detail?: string, options?: { cause?: unknown }): BatonError {
  return new BatonError(code, detail, options);
}

/** True when the error means "this machine cannot run eBPF", so tests skip instead of fail. */
export function isEnvironmentError(err: unknown): err is BatonError {
  return (
    err instanceof BatonError &&
    (err.code === 'BATON_ERR_NO_PRIVILEGE' || err.code === 'BATON_ERR_KERNEL_FEATURE' || err.code === 'BATON_ERR_NOT_BUILT')
  );
}
