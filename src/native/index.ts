// Loads the native addon once and gives it types. A missing build or a failure of the
// kernel side becomes a BatonError that says what to do, never a bare stack trace.
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import path from 'node:path';
import {
  CLASS_QUEUES, CLASS_SHIFT, DESC_MAGIC, DESC_SIZE, DESC_VERSION, FN_ADDR, GATEWAY_FN, HOLDER_QUEUED, IDLE_STRIDE, IDLE_WORDS, MAX_FUNCTIONS, MAX_KEYS, MAX_SLOTS,
} from '../descriptor/layout.ts';
import { BatonError, ERRORS, type BatonErrorCode } from '../errors.ts';

export interface KeyCounters {
  redirected: number;
  deadLetter: number;
  /** Function-addressed descriptors the kernel bound to this key (late binding fast path). */
  boundFast: number;
  /** (key 0) function-addressed descriptors with no idle instance, sent to the dispatcher. */
  toDispatcher: number;
  /** Sockets under this key the program refused (a refused socket stays refused). */
  refused: number;
  /** Why the latest one was refused (VIOLATIONS in src/dataplane/sockmap.ts). */
  reason: number;
  /** Function-addressed descriptors this key sent that waited in a kernel queue. */
  queued: number;
  /** Queued descriptors the kernel handed to this key when it reported idle. */
  handed: number;
}

export interface NativeDataplane {
  /** (deferred only) Loads and attaches the program off the main thread; resolves with itself. */
  load(): Promise<NativeDataplane>;
  /** Puts the socket `fd`, bound to local `port`, under `key`; the program knows its sender (key
   *  and the function `fn` it runs) by the port. */
  insert(key: number, fd: number, port: number, fn: number): void;
  remove(key: number, port: number): boolean;
  counters(key: number): KeyCounters;
  /** The memory-mapped idle-token bitmaps, BATON_IDLE_WORDS u64 per function. */
  idleBuffer(): ArrayBuffer;
  /** The memory-mapped slot custody entries (src/gateway/custody.ts). */
  custodyBuffer(): ArrayBuffer;
  setFunction(fnId: number, baseKey: number, concurrency: number, keys: number): void;
  /** Function `from` may call the functions `to` (and no other). */
  allowCalls(from: number, to: number[], returnsTo: number[]): void;
  /** Pool geometry the program checks descriptors against, and how often a taking from a
   *  function's queues serves the lowest class first (0: never). */
  configure(slots: number, capacity: number, starveEvery: number): void;
  /** The kernel queues of late-bound functions, one per class, `depth` descriptors deep each,
   *  installed in one batch. */
  createQueues(specs: [fnId: number, depth: number][]): void;
  /** Appends a 64-byte descriptor to `fnId`'s queue of class `cls`; false when it is full. */
  queuePush(fnId: number, cls: number, desc: Buffer): boolean;
  /** Takes the oldest descriptor of `fnId`'s queue of class `cls` into `into`; false when it is empty. */
  queuePop(fnId: number, cls: number, into: Buffer): boolean;
  close(): void;
}

/** A data-plane socket read and written by the addon (native/endpoint.h). */
export interface NativeRawSocket {
  /** Bytes written now (fewer: the socket is full, call wantWritable), or -errno. */
  write(buffer: Buffer, offset: number, length: number): number;
  /** Calls onWritable once the socket takes bytes again. */
  wantWritable(): void;
  close(): void;
}

interface Addon {
  /** Reads `fd` into `buffer` as data arrives: onRead(bytes of whole descriptors from its start).
   *  On a seqpacket socket: onRead(−length) for a message that is not whole descriptors. */
  RawSocket: new (fd: number, buffer: Buffer, onRead: (bytes: number) => void, onWritable: () => void, onEnd: (errno: number) => void) => NativeRawSocket;
  /** checks: false loads the bench's reference program (bpf/baton.bpf.c), which checks nothing. */
  /** Loads and attaches the program now; `deferred`: an empty one whose load() does it on a
   *  thread of libuv's pool. */
  Dataplane: new (options?: { checks?: boolean; deferred?: boolean }) => NativeDataplane;
  createPool(size: number): { fd: number; buffer: ArrayBuffer };
  mapPool(fd: number, size: number): ArrayBuffer;
  /** [fd in the sockmap, the gateway's peer end, the first one's local port] */
  tcpPair(): [number, number, number];
  /** [the instance's end, the broker's end] of a Unix seqpacket pair (the broker data plane). */
  unixPair(): [number, number];
  closeFd(fd: number): void;
  /** SIGKILL this process when its parent exits (workers: die with the gateway). */
  dieWithParent(parentPid: number): void;
  /** PR_SET_NO_NEW_PRIVS: nothing this process runs gains privileges. */
  noNewPrivileges(): void;
  /** sched_yield(2): another runnable process may have this CPU. */
  schedYield(): void;
  /** Stops the event loop measuring its idle time (a poll that does not wait before each one
   *  that does); true if it measured and no longer does. */
  stopLoopIdleTime(): boolean;
  layout: Record<keyof typeof LAYOUT, number>;
}

/** The C side's constants (bpf/baton_shared.h) as the TypeScript side knows them. */
const LAYOUT = {
  descSize: DESC_SIZE, descMagic: DESC_MAGIC, descVersion: DESC_VERSION, maxKeys: MAX_KEYS, fnAddr: FN_ADDR,
  maxFunctions: MAX_FUNCTIONS, idleWords: IDLE_WORDS, maxSlots: MAX_SLOTS, custodyEntry: 16, gatewayFn: GATEWAY_FN,
  idleStride: IDLE_STRIDE, idleEntry: IDLE_STRIDE * 8, holderQueued: HOLDER_QUEUED, custodyGen: 8, classes: CLASS_QUEUES, classShift: CLASS_SHIFT,
};

/** node-gyp's build, or another (the cmake-js developer build) named by BATON_ADDON. */
export const ADDON_PATH = path.resolve(
  process.env.BATON_ADDON ?? path.join(path.dirname(fileURLToPath(import.meta.url)), '../../build/Release/baton.node'),
);

let cached: Addon | undefined;

export function addon(): Addon {
  if (cached) return cached;
  let loaded: Addon;
  try {
    loaded = createRequire(import.meta.url)(ADDON_PATH) as Addon;
  } catch (err) {
    throw new BatonError('BATON_ERR_NOT_BUILT', `cannot load ${ADDON_PATH}`, { cause: err });
  }
  // an addon built from other sources would read descriptors differently: refuse it
  const stale = Object.entries(LAYOUT).filter(([k, v]) => loaded.layout?.[k as keyof typeof LAYOUT] !== v);
  if (stale.length) {
    throw new BatonError('BATON_ERR_NOT_BUILT', `${ADDON_PATH} was built from other sources (${stale.map(([k]) => k).join(', ')} differ)`);
  }
  return (cached = loaded);
}

/** Runs a native call, turning its coded errors into BatonErrors. */
export function native<T>(call: (a: Addon) => T): T {
  const a = addon();
  try {
    return call(a);
  } catch (err) {
    const code = (err as { code?: string }).code;
    if (code && code.startsWith('BATON_ERR_')) {
      const known = code in ERRORS ? (code as BatonErrorCode) : 'BATON_ERR_NATIVE';
      throw new BatonError(known, (err as Error).message, { cause: err });
    }
    throw err;
  }
}
