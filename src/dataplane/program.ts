// The SK_MSG program, loaded ahead: the kernel's verifier takes ~50 ms of a gateway's start,
// which it can spend on a thread of libuv's pool while the gateway loads its own code and
// builds its functions. A load that fails here is simply not used: the data plane then loads
// the program the usual way, where its typed error (or the fallback to the broker) comes from.
import { native, type NativeDataplane } from '../native/index.ts';

export interface ProgramAhead {
  /** With the kernel's checks (false: the bench's reference program). */
  readonly checks: boolean;
  /** The loaded program; undefined if it did not load. */
  readonly loaded: Promise<NativeDataplane | undefined>;
}

/** Starts loading the program; never throws. */
export function loadProgramAhead(checks = true): ProgramAhead {
  let loaded: Promise<NativeDataplane | undefined>;
  try {
    loaded = native((a) => new a.Dataplane({ checks, deferred: true })).load().catch(() => undefined);
  } catch {
    loaded = Promise.resolve(undefined);
  }
  return { checks, loaded };
}

/** A program loaded ahead that will not be used: closed once it has loaded. */
export function discardProgram(ahead: ProgramAhead | undefined): void {
  void ahead?.loaded.then((dp) => dp?.close());
}
