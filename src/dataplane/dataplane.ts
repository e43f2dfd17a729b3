// The data plane the gateway runs on: the kernel's (sockmap.ts: the SK_MSG program routes
// every descriptor inside the sender's send()) or, where eBPF cannot load, the user-space
// broker (broker.ts: the same rules, run in the gateway process, over Unix sockets). Both
// give each key one socket for its process, keep the same custody and idle-token memory and
// the same counters, so the gateway, the dispatcher and the workers cannot tell them apart.
import type { EventEmitter } from 'node:events';
import type { KernelQueues } from '../binding/dispatcher.ts';
import { BatonError, isEnvironmentError } from '../errors.ts';
import type { KeyCounters, NativeDataplane } from '../native/index.ts';
import { Broker } from './broker.ts';
import { Sockmap, type SockmapEvents } from './sockmap.ts';

export type DataplaneKind = 'sockmap' | 'broker';
/** What to run on: `auto` tries the kernel and falls back to the broker. */
export type DataplaneChoice = DataplaneKind | 'auto';
export const DATAPLANE_CHOICES: readonly DataplaneChoice[] = ['auto', 'sockmap', 'broker'];

export interface Dataplane extends EventEmitter<SockmapEvents>, KernelQueues {
  readonly kind: DataplaneKind;
  /** Creates the socket of `key` for a process running function `fn`; `fd` is its end (hand
   *  it to the process, then close it here). */
  open(key: number, fn?: number): { fd: number };
  close(key: number): void;
  counters(key: number): KeyCounters;
  /** Why `key`'s sender was refused, in words. */
  refusal(key: number): string;
  idleBuffer(): ArrayBuffer;
  custodyBuffer(): ArrayBuffer;
  setFunction(fnId: number, baseKey: number, concurrency: number, keys: number): void;
  allowCalls(from: number, to: number[], returnsTo: number[]): void;
  configure(slots: number, capacity: number, starveEvery?: number): void;
  /** Where the gateway's own sends on `key` go instead of its socket (the broker routes them
   *  at once, as the kernel does inside send()); undefined: the socket. */
  divert(key: number): ((bytes: Buffer, length: number) => void) | undefined;
  destroy(): void;
}

/** What the broker costs, said when it is chosen for want of the kernel's. */
export const BROKER_COST =
  'every descriptor now crosses the gateway process (two more system calls and a wake-up of the gateway per hop): ' +
  'expect a hop to take up to twice as long, about 40% less throughput and twice the gateway\'s CPU per request';

/** Opens the data plane `choice` asks for. `auto` falls back to the broker when the kernel's
 *  cannot load here (no privilege, an old kernel), calling `fallback` with why. `program`: the
 *  SK_MSG program loaded ahead with these checks (program.ts), used instead of loading it. */
export function openDataplane(
  choice: DataplaneChoice,
  options: { checks?: boolean; fallback?: (why: BatonError) => void; program?: NativeDataplane } = {},
): Dataplane {
  if (choice === 'broker') {
    options.program?.close();
    return new Broker();
  }
  try {
    return new Sockmap({ checks: options.checks, loaded: options.program });
  } catch (err) {
    if (choice === 'sockmap' || !isEnvironmentError(err) || err.code === 'BATON_ERR_NOT_BUILT') throw err;
    options.fallback?.(err);
    return new Broker();
  }
}
