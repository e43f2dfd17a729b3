// The gateway's handle on the kernel data plane: the loaded SK_MSG program, its sockmap,
// and one loopback TCP connection per key. The end under the key is the one a function
// instance (or the gateway, for key 0) sends and receives on; the gateway keeps the peer
// end, whose EOF says the instance is gone and on which dead letters arrive (the program
// passes a descriptor it cannot redirect down the real TCP connection).
import net from 'node:net';
import { native, type KeyCounters, type NativeDataplane } from '../native/index.ts';

export interface KeySockets {
  /** fd of the end inserted in the sockmap: hand it to the worker, then close it here. */
  fd: number;
  /** The gateway's peer end (dead letters, EOF on exit). */
  peer: net.Socket;
}

export class Sockmap {
  private readonly dp: NativeDataplane;
  private readonly peers = new Map<number, net.Socket>();

  constructor() {
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
    this.peers.get(key)?.destroy();
    this.peers.set(key, peer);
    peer.once('close', () => {
      if (this.peers.get(key) === peer) this.peers.delete(key);
    });
    return { fd, peer };
  }

  /** Takes `key` out of the map and closes the gateway's peer end. */
  close(key: number): void {
    native(() => this.dp.remove(key));
    this.peers.get(key)?.destroy();
    this.peers.delete(key);
  }

  counters(key: number): KeyCounters {
    return native(() => this.dp.counters(key));
  }

  /** Detaches the program and frees the maps; closes every peer end. */
  destroy(): void {
    for (const peer of this.peers.values()) peer.destroy();
    this.peers.clear();
    this.dp.close();
  }
}
