// One process's end of the data plane: a socket in the sockmap that sends descriptors (the
// SK_MSG program checks and routes each) and receives the ones redirected to it. Reads and
// writes go through the addon's RawSocket, not Node's streams: one read buffer for the life of
// the endpoint, descriptors encoded into one write buffer, write(2) called at once — a hop's
// own cost in this process is then a few JS calls and two syscalls.
import { DESC_MAGIC, DESC_SIZE, DESC_VERSION, encodeInto, F, type Descriptor } from '../descriptor/index.ts';
import { native, type NativeRawSocket } from '../native/index.ts';
import { Spinner } from './spin.ts';

/** Descriptors per write. The program sees a write as one message and judges it descriptor
 *  by descriptor; a message too large for one kernel buffer (~64 KiB) could be split mid-
 *  descriptor, which the program refuses. 16 KiB stays far below that. */
export const MAX_WRITE = 256;
/** Bytes one read event can take: many descriptors arrive together under load (on a seqpacket
 *  socket, several of the largest writes). */
const READ_BYTES = 4 * MAX_WRITE * DESC_SIZE;

const SIG_0 = DESC_MAGIC & 0xff;
const SIG_1 = DESC_MAGIC >> 8;

export interface EndpointEvents {
  /** A descriptor: a view valid only during the call (the read buffer is reused). */
  frame(frame: Buffer): void;
  /** Bytes without the descriptor signature were skipped (never expected: the kernel frames). */
  garbage?(bytes: number): void;
  /** (seqpacket socket) A write of `bytes` that was not a whole number of descriptors. */
  malformed?(bytes: number): void;
  /** The socket ended (errno 0: the other side closed it) or failed. */
  end?(errno: number): void;
}

export interface EndpointOptions {
  /** µs to keep polling after each read before sleeping (spin.ts); 0: never. */
  spinUs?: number;
  /** Where sends go instead of the socket (the gateway's own sends on the broker data plane
   *  are routed in this process, at once, as the kernel routes them inside send()). */
  divert?: (bytes: Buffer, length: number) => void;
}

export class Endpoint {
  private readonly raw: NativeRawSocket;
  private readonly input = Buffer.allocUnsafe(READ_BYTES);
  private readonly output = Buffer.allocUnsafe(MAX_WRITE * DESC_SIZE);
  /** Bytes the socket could not take yet, in order. */
  private backlog: Buffer[] = [];
  private closed = false;
  private readonly spinner: Spinner;
  private readonly divert?: (bytes: Buffer, length: number) => void;

  constructor(fd: number, private readonly on: EndpointEvents, options: EndpointOptions = {}) {
    this.spinner = new Spinner(options.spinUs ?? 0);
    this.divert = options.divert;
    this.raw = native((a) => new a.RawSocket(fd, this.input, (n) => this.read(n), () => this.flush(), (errno) => this.ended(errno)));
  }

  /** Sends descriptors now, in as few writes as allowed. Never deferred: a sender that dies
   *  before a deferred write would lose a descriptor whose slot it holds. */
  send(...ds: Descriptor[]): void {
    for (let at = 0; at < ds.length; at += MAX_WRITE) {
      const n = Math.min(MAX_WRITE, ds.length - at);
      for (let i = 0; i < n; i++) encodeInto(ds[at + i]!, this.output, i * DESC_SIZE);
      this.write(this.output, n * DESC_SIZE);
    }
  }

  /** Sends descriptors, then whole descriptors already encoded in `after` (a constant notice),
   *  in one write when they fit. */
  sendWith(ds: Descriptor[], after: Buffer): void {
    const n = ds.length;
    if ((n + after.length / DESC_SIZE) > MAX_WRITE) {
      this.send(...ds);
      this.write(after, after.length);
      return;
    }
    for (let i = 0; i < n; i++) encodeInto(ds[i]!, this.output, i * DESC_SIZE);
    after.copy(this.output, n * DESC_SIZE);
    this.write(this.output, n * DESC_SIZE + after.length);
  }

  /** Sends `length` bytes of whole descriptors already encoded in `bytes`. */
  sendEncoded(bytes: Buffer, length = bytes.length): void {
    this.write(bytes, length);
  }

  /** Whether to poll for the spin window after each read (spinUs): off while the node's CPUs
   *  are busy with other work (see isolation/spin-priority.ts). */
  setSpinning(on: boolean): void {
    this.spinner.enabled = on;
  }

  destroy(): void {
    if (this.closed) return;
    this.closed = true;
    this.raw.close();
  }

  private write(bytes: Buffer, length: number): void {
    if (this.closed) return;
    if (this.divert) return this.divert(bytes, length);
    if (this.backlog.length > 0) {
      this.backlog.push(Buffer.from(bytes.subarray(0, length)));
      return;
    }
    const n = this.raw.write(bytes, 0, length);
    if (n === length) return;
    if (n < 0) {
      this.ended(-n);
      return;
    }
    // the socket is full (the kernel's buffers): keep the rest, in order, until it drains
    this.backlog.push(Buffer.from(bytes.subarray(n, length)));
    this.raw.wantWritable();
  }

  private flush(): void {
    while (this.backlog.length > 0 && !this.closed) {
      const b = this.backlog[0]!;
      const n = this.raw.write(b, 0, b.length);
      if (n < 0) return this.ended(-n);
      if (n < b.length) {
        this.backlog[0] = b.subarray(n);
        this.raw.wantWritable();
        return;
      }
      this.backlog.shift();
    }
  }

  private read(bytes: number): void {
    if (bytes < 0) return this.on.malformed?.(-bytes);
    this.spinner.poke();
    const b = this.input;
    for (let at = 0; at < bytes; at += DESC_SIZE) {
      if (b[at + F.magic] === SIG_0 && b[at + F.magic + 1] === SIG_1 && b[at + F.version] === DESC_VERSION) {
        this.on.frame(b.subarray(at, at + DESC_SIZE));
      } else {
        this.on.garbage?.(DESC_SIZE);
      }
    }
  }

  private ended(errno: number): void {
    const was = this.closed;
    this.closed = true;
    this.backlog = [];
    if (!was) this.raw.close();
    this.on.end?.(errno);
  }
}
