// One process's end of the data plane: a socket in the sockmap that sends descriptors (the
// SK_MSG program routes each by its first u32) and receives the ones redirected to it.
import net from 'node:net';
import { encodeInto, DESC_SIZE, type Descriptor } from '../descriptor/index.ts';
import { FrameReader } from './framing.ts';

export class Endpoint {
  readonly socket: net.Socket;
  private readonly reader: FrameReader;

  constructor(fdOrSocket: number | net.Socket, onFrame: (frame: Buffer) => void) {
    this.socket =
      typeof fdOrSocket === 'number' ? new net.Socket({ fd: fdOrSocket, readable: true, writable: true }) : fdOrSocket;
    this.socket.setNoDelay(true);
    this.reader = new FrameReader(onFrame);
    this.socket.on('data', (chunk: Buffer) => this.reader.push(chunk));
  }

  /** Sends descriptors now, in one write (the SK_MSG program routes each 64 bytes on its
   *  own). Never deferred: the slot's holder was just set to the receiver, and a sender
   *  that dies before a deferred write would lose a descriptor nobody is waiting for. */
  send(...ds: Descriptor[]): void {
    // a fresh buffer per send: a queued write keeps referring to it
    const buf = Buffer.allocUnsafe(DESC_SIZE * ds.length);
    ds.forEach((d, i) => encodeInto(d, buf, i * DESC_SIZE));
    this.socket.write(buf);
  }

  /** Sends raw bytes (tests use this to forge descriptors). */
  sendRaw(bytes: Buffer): void {
    this.socket.write(bytes);
  }

  destroy(): void {
    this.socket.destroy();
  }
}
