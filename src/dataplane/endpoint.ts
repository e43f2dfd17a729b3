// One process's end of the data plane: a socket in the sockmap that sends descriptors (the
// SK_MSG program routes each by its first u32) and receives the ones redirected to it.
import net from 'node:net';
import { encodeInto, DESC_SIZE, type Descriptor } from '../descriptor/index.ts';
import { FrameReader } from './framing.ts';

/** BATON_NO_CORK=1 turns off batching of the descriptors sent in one tick (see send()). */
const CORK = process.env.BATON_NO_CORK !== '1';

export class Endpoint {
  readonly socket: net.Socket;
  private readonly reader: FrameReader;
  private corked = false;

  constructor(fdOrSocket: number | net.Socket, onFrame: (frame: Buffer) => void) {
    this.socket =
      typeof fdOrSocket === 'number' ? new net.Socket({ fd: fdOrSocket, readable: true, writable: true }) : fdOrSocket;
    this.socket.setNoDelay(true);
    this.reader = new FrameReader(onFrame);
    this.socket.on('data', (chunk: Buffer) => this.reader.push(chunk));
  }

  send(d: Descriptor): void {
    // a fresh buffer per send: a queued write keeps referring to it
    const buf = Buffer.allocUnsafe(DESC_SIZE);
    encodeInto(d, buf);
    // Descriptors sent in the same tick (a worker's forward and its Idle notice, replies
    // the gateway sends together) leave in one writev: a syscall saved per extra
    // descriptor. The SK_MSG program still routes each 64 bytes on its own.
    if (CORK && !this.corked) {
      this.corked = true;
      this.socket.cork();
      process.nextTick(() => {
        this.corked = false;
        this.socket.uncork();
      });
    }
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
