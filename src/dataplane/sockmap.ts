// The gateway's handle on the kernel data plane: the loaded SK_MSG program, its sockmap,
// and one loopback TCP connection per key. The end under the key is the one a function
// instance (or the gateway, for key 0) sends and receives on; the gateway keeps the peer
// end, whose EOF says the instance is gone and on which dead letters arrive (the program
// passes a descriptor it cannot redirect down the real TCP connection).
import { EventEmitter } from 'node:events';
import net from 'node:net';
import { native, type KeyCounters, type NativeDataplane } from '../native/index.ts';
import { FrameReader } from './framing.ts';

export interface KeySockets {
  /** fd of the end inserted in the sockmap: hand it to the worker, then close it here. */
  fd: number;
  /** The gateway's peer end (EOF on exit; dead letters arriving on it are emitted as 'deadLetter'). */
  peer: net.Socket;
}

export interface SockmapEvents {
  /** A descriptor sent by the socket under `senderKey` found no socket under its own key. */
  deadLetter: [frame: Buffer, senderKey: number];
}

export class Sockmap extends EventEmitter<SockmapEvents> {
  private readonly dp: NativeDataplane;
  private readonly peers = new Map<number, net.Socket>();
  private destroyed = false;

  constructor() {
    super();
    this.dp = native((a) => new a.Dataplane());
  }

  /** Creates a connection, puts one end under `key`, returns both ends. */
  open(key: number): KeySockets {
    const [fd, peerFd] = native((a) => a.tcpPair());
    try {
      native(() => this.dp.insert(key, fd));
    } catch (err) {
      native((a) => (a.closeFd(fd), a.closeFd(peerFd)));
      throw err;
    }
    const peer = new net.Socket({ fd: peerFd, readable: true, writable: true });
    const deadLetters = new FrameReader((frame) => this.emit('deadLetter', frame, key));
    peer.on('data', (chunk: Buffer) => deadLetters.push(chunk));
    peer.on('error', () => {}); // reset when the other end's process dies: its owner learns that on exit
    this.peers.get(key)?.destroy();
    this.peers.set(key, peer);
    peer.once('close', () => {
      if (this.peers.get(key) === peer) this.peers.delete(key);
    });
    return { fd, peer };
  }

  /** Takes `key` out of the map and closes the gateway's peer end. */
  close(key: number): void {
    if (this.destroyed) return; // the maps are gone, and the entry with them
    native(() => this.dp.remove(key));
    this.peers.get(key)?.destroy();
    this.peers.delete(key);
  }

  counters(key: number): KeyCounters {
    return native(() => this.dp.counters(key));
  }

  /** The kernel's idle-token bitmaps, memory-mapped (see src/binding/idle.ts). */
  idleBuffer(): ArrayBuffer {
    return native(() => this.dp.idleBuffer());
  }

  /** Tells the program which keys function `fnId`'s tokens belong to. */
  setFunction(fnId: number, baseKey: number, concurrency: number): void {
    native(() => this.dp.setFunction(fnId, baseKey, concurrency));
  }

  /** Detaches the program and frees the maps; closes every peer end. */
  destroy(): void {
    if (this.destroyed) return;
    this.destroyed = true;
    for (const peer of this.peers.values()) peer.destroy();
    this.peers.clear();
    this.dp.close();
  }
}
