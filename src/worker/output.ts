// A function's console output goes to the gateway's log, labelled with the function, the
// instance and the request it was written for. An instance that runs one handler at a time
// (concurrency 1, the default) knows it from `running`, set while its handler runs; one that
// runs several at once runs each inside `requestScope`, so a write knows its request even
// across awaits (AsyncLocalStorage costs every promise of the process a hook, so only then).
// Writes outside a request (at import, from a callback after its handler returned) carry none.
// Anything written below Node's streams (native code, fs.writeSync(1)) still reaches the
// gateway through the stdout/stderr pipes, labelled with function and instance only.
import { AsyncLocalStorage } from 'node:async_hooks';
import type { WorkerMessage } from './config.ts';

export const requestScope = new AsyncLocalStorage<number>();

/** The request whose handler runs now, when only one runs at a time. */
export const running: { reqId?: number } = {};

function currentRequest(): number | undefined {
  return running.reqId ?? requestScope.getStore();
}

/** One IPC message per write, at most this many characters (the gateway truncates too). */
const MAX_CHARS = 8192;

export function captureOutput(tell: (msg: WorkerMessage) => void): void {
  for (const stream of ['stdout', 'stderr'] as const) {
    const target = process[stream];
    target.write = ((chunk: string | Uint8Array, encoding?: unknown, callback?: unknown): boolean => {
      const text = typeof chunk === 'string' ? chunk : Buffer.from(chunk).toString('utf8');
      tell({ type: 'output', stream, text: text.slice(0, MAX_CHARS), reqId: currentRequest() });
      const done = typeof encoding === 'function' ? encoding : callback;
      if (typeof done === 'function') queueMicrotask(() => done(null));
      return true;
    }) as typeof target.write;
  }
}
