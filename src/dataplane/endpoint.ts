// One process's end of the data plane: a socket in the sockmap that sends descriptors (the
// SK_MSG program checks and routes each) and receives the ones redirected to it.
import net from 'node:net';
import { encodeInto, DESC_SIZE, type Descriptor } from '../descriptor/index.ts';
import { FrameReader } from './framing.ts';

/** Descriptors per write. The program sees a write as one message and judges it descriptor
 *  by descriptor; a message too large for one kernel buffer (~64 KiB) could be split mid-
 *  descriptor, which the program refuses. 16 KiB stays far below that. */
export const MAX_WRITE = 256;

export class Endpoint {
  readonly socket: net.Socket;
  private readonly reader: FrameReader;

  constructor(fdOrSocket: number | net.Socket, onFrame: (frame: Buffer) => void, onGarbage?: (bytes: number) => void) {
    this.socket =
      typeof fdOrSocket === 'number' ? new net.Socket({ fd: fdOrSocket, readable: true, writable: true }) : fdOrSocket;
    this.socket.setNoDelay(true);
    this.reader = new FrameReader(onFrame, onGarbage);
    this.socket.on('data', (chunk: Buffer) => this.reader.push(chunk));
  }

  /** Sends descriptors now, in as few writes as allowed. Never deferred: a sender that dies
   *  before a deferred write would lose a descriptor whose slot it holds. */
  send(...ds: Descriptor[]): void {
    for (let at = 0; at < ds.length; at += MAX_WRITE) {
      const n = Math.min(MAX_WRITE, ds.length - at);
      // a fresh buffer per write: a queued write keeps referring to it
      const buf = Buffer.allocUnsafe(DESC_SIZE * n);
      for (let i = 0; i < n; i++) encodeInto(ds[at + i]!, buf, i * DESC_SIZE);
      this.socket.write(buf);
    }
  }

  destroy(): void {
    this.socket.destroy();
  }
}
