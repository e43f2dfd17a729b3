// The gateway's handle on the kernel data plane: the loaded SK_MSG program, its sockmap,
// and one loopback TCP connection per key. The end under the key is the one a function
// instance (or the gateway, for key 0) sends and receives on; the gateway keeps the peer
// end. Nothing legitimate ever travels the TCP connection itself: the program redirects
// every good descriptor socket to socket, so bytes arriving on a peer end are what the
// program refused from that key's sender ('refused'), and EOF on it means the sender's
// socket is gone ('lost').
import { EventEmitter } from 'node:events';
import net from 'node:net';
import { CLASS_QUEUES, decode, DESC_SIZE, encodeInto, GATEWAY_FN, type Descriptor } from '../descriptor/index.ts';
import type { Dataplane } from './dataplane.ts';
import { native, type KeyCounters, type NativeDataplane } from '../native/index.ts';

export interface KeySockets {
  /** fd of the end inserted in the sockmap: hand it to the worker, then close it here. */
  fd: number;
  /** The gateway's peer end. */
  peer: net.Socket;
}

export interface SockmapEvents {
  /** The program refused a write of the socket under `key` (see Violation). */
  refused: [key: number];
  /** The socket under `key` closed (its process exited, or closed it). */
  lost: [key: number];
}

/** Why the program refused a sender (bpf/baton_shared.h, enum baton_violation). */
export const VIOLATIONS: Record<number, string> = {
  1: 'wrote on a socket the gateway never registered',
  2: 'wrote something that is not a whole number of descriptors',
  3: 'wrote bytes that are not a descriptor of this version',
  4: 'forged the sender of a descriptor',
  5: 'sent a kind of descriptor where it cannot go',
  6: 'sent a payload length beyond a slot',
  7: 'sent a descriptor for a slot it does not hold',
  8: 'sent a descriptor the kernel could not read',
  9: 'called a function its chain file does not let it call',
};

/** A refusal's reason in words. */
export function violation(reason: number): string {
  return VIOLATIONS[reason] ?? `broke rule ${reason}`;
}

/** The function of a socket that runs none (it may call nothing). */
export const NO_FUNCTION = 0xfffe;

export class Sockmap extends EventEmitter<SockmapEvents> implements Dataplane {
  readonly kind = 'sockmap' as const;
  private readonly dp: NativeDataplane;
  private readonly scratch = Buffer.alloc(DESC_SIZE);
  private starveEvery = 0;
  /** The gateway's own takings from each function's queues. */
  private readonly pops: number[] = [];
  private readonly keys = new Map<number, { peer: net.Socket; port: number }>();
  private destroyed = false;

  /** `checks: false` loads the reference program that routes without checking anything: only
   *  for measuring what the checks cost (bench), never to serve. `loaded`: a program loaded
   *  ahead (program.ts), with the same checks. */
  constructor(options: { checks?: boolean; loaded?: NativeDataplane } = {}) {
    super();
    this.dp = options.loaded ?? native((a) => new a.Dataplane({ checks: options.checks }));
  }

  /** Creates a connection, puts one end under `key` as a sender running function `fn`
   *  (GATEWAY_FN: the gateway, which may call anything), returns both ends. */
  open(key: number, fn = key === 0 ? GATEWAY_FN : NO_FUNCTION): KeySockets {
    const [fd, peerFd, port] = native((a) => a.tcpPair());
    try {
      native(() => this.dp.insert(key, fd, port, fn));
    } catch (err) {
      native((a) => (a.closeFd(fd), a.closeFd(peerFd)));
      throw err;
    }
    this.forget(key);
    const peer = new net.Socket({ fd: peerFd, readable: true, writable: true });
    const entry = { peer, port };
    this.keys.set(key, entry);
    let reported = false;
    peer.on('data', () => {
      if (!reported) this.emit('refused', key); // once is enough: the gateway kills the sender
      reported = true;
    });
    peer.on('error', () => {}); // reset when the other end's process dies: 'close' follows
    peer.once('close', () => {
      if (this.keys.get(key) !== entry) return; // closed by us
      this.keys.delete(key);
      this.emit('lost', key);
    });
    return { fd, peer };
  }

  /** Takes `key` out of the map and closes the gateway's peer end. */
  close(key: number): void {
    const entry = this.keys.get(key);
    this.forget(key);
    if (this.destroyed) return; // the maps are gone, and the entry with them
    native(() => this.dp.remove(key, entry?.port ?? 0));
  }

  private forget(key: number): void {
    const entry = this.keys.get(key);
    this.keys.delete(key);
    entry?.peer.destroy();
  }

  counters(key: number): KeyCounters {
    return native(() => this.dp.counters(key));
  }

  /** Why the program refused `key`'s sender, in words. */
  refusal(key: number): string {
    return violation(this.counters(key).reason);
  }

  /** The kernel's idle-token bitmaps, memory-mapped (see src/binding/idle.ts). */
  idleBuffer(): ArrayBuffer {
    return native(() => this.dp.idleBuffer());
  }

  /** The kernel's slot custody entries, memory-mapped (see src/gateway/custody.ts). */
  custodyBuffer(): ArrayBuffer {
    return native(() => this.dp.custodyBuffer());
  }

  /** Tells the program which keys are function `fnId`'s instances (`keys` from `baseKey`), and
   *  which of them its tokens belong to. */
  setFunction(fnId: number, baseKey: number, concurrency: number, keys: number): void {
    native(() => this.dp.setFunction(fnId, baseKey, concurrency, keys));
  }

  /** Function `from` may call the functions `to`, and no other. */
  allowCalls(from: number, to: number[], returnsTo: number[] = []): void {
    native(() => this.dp.allowCalls(from, to, returnsTo));
  }

  /** Tells the program the pool's geometry (descriptors beyond it are refused), and that every
   *  `starveEvery`-th taking from a function's queues serves the lowest class first (0: never). */
  configure(slots: number, capacity: number, starveEvery = 0): void {
    this.starveEvery = starveEvery;
    native(() => this.dp.configure(slots, capacity, starveEvery));
  }

  /** Late binding's kernel queues of each function, one per class, `depth` descriptors deep. */
  create(specs: [fnId: number, depth: number][]): void {
    native(() => this.dp.createQueues(specs));
  }

  /** Appends `d` to `fnId`'s queue of class `cls`; false when it is full. */
  push(fnId: number, d: Descriptor, cls: number): boolean {
    encodeInto(d, this.scratch);
    return native(() => this.dp.queuePush(fnId, Math.min(cls, CLASS_QUEUES - 1), this.scratch));
  }

  /** The oldest descriptor of the highest class waiting for `fnId`, as the program takes them
   *  (every starveEvery-th taking looks at the lowest class first). */
  pop(fnId: number): Descriptor | undefined {
    const n = (this.pops[fnId] ?? 0) + 1;
    const lowestFirst = this.starveEvery > 0 && n % this.starveEvery === 0;
    for (let k = 0; k < CLASS_QUEUES; k++) {
      const cls = lowestFirst ? (k === 0 ? CLASS_QUEUES - 1 : k - 1) : k;
      if (native(() => this.dp.queuePop(fnId, cls, this.scratch))) {
        this.pops[fnId] = n; // only takings count, as in the program
        return decode(this.scratch);
      }
    }
    return undefined;
  }

  /** The kernel routes every send inside send(): nothing to divert. */
  divert(): undefined {
    return undefined;
  }

  /** Detaches the program and frees the maps; closes every peer end. */
  destroy(): void {
    if (this.destroyed) return;
    this.destroyed = true;
    for (const key of [...this.keys.keys()]) this.forget(key);
    this.dp.close();
  }
}
