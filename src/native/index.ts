// Loads the native addon once and gives it types. A missing build or a failure of the
// kernel side becomes a BatonError that says what to do, never a bare stack trace.
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import path from 'node:path';
import { BatonError, ERRORS, type BatonErrorCode } from '../errors.ts';

export interface KeyCounters {
  redirected: number;
  deadLetter: number;
  /** Function-addressed descriptors the kernel bound to this key (late binding fast path). */
  boundFast: number;
  /** (key 0) function-addressed descriptors with no idle instance, sent to the dispatcher. */
  toDispatcher: number;
}

export interface NativeDataplane {
  insert(key: number, fd: number): void;
  remove(key: number): boolean;
  counters(key: number): KeyCounters;
  /** The memory-mapped idle-token bitmaps, BATON_IDLE_WORDS u64 per function. */
  idleBuffer(): ArrayBuffer;
  setFunction(fnId: number, baseKey: number, concurrency: number): void;
  close(): void;
}

interface Addon {
  Dataplane: new () => NativeDataplane;
  createPool(size: number): { fd: number; buffer: ArrayBuffer };
  mapPool(fd: number, size: number): ArrayBuffer;
  tcpPair(): [number, number];
  closeFd(fd: number): void;
  descriptorSize: number;
}

/** node-gyp's build, or another (the cmake-js developer build) named by BATON_ADDON. */
export const ADDON_PATH = path.resolve(
  process.env.BATON_ADDON ?? path.join(path.dirname(fileURLToPath(import.meta.url)), '../../build/Release/baton.node'),
);

let cached: Addon | undefined;

export function addon(): Addon {
  if (cached) return cached;
  try {
    cached = createRequire(import.meta.url)(ADDON_PATH) as Addon;
  } catch (err) {
    throw new BatonError('BATON_ERR_NOT_BUILT', `cannot load ${ADDON_PATH}`, { cause: err });
  }
  return cached;
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
