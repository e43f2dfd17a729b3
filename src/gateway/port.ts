// Claims the gateway's port before anything else starts, so a busy port is reported at once,
// with the process holding it when /proc tells (it does for root, or for one's own processes).
import { readdirSync, readFileSync, readlinkSync } from 'node:fs';
import net from 'node:net';
import { batonError, type BatonError } from '../errors.ts';

/** Resolves once `host:port` could be bound (and released again); throws a typed error if not. */
export async function checkPort(port: number, host: string): Promise<void> {
  if (port === 0) return; // any free port: nothing to collide with
  const probe = net.createServer();
  await new Promise<void>((resolve, reject) => {
    probe.once('error', (err: NodeJS.ErrnoException) => reject(listenError(err, port, host)));
    probe.listen({ port, host, exclusive: true }, () => probe.close(() => resolve()));
  });
}

/** The error table's version of a failed listen. */
export function listenError(err: NodeJS.ErrnoException, port: number, host: string): BatonError {
  if (err.code === 'EADDRINUSE') {
    const holder = whoListens(port);
    const who = holder ? ` by pid ${holder.pid} (${holder.command})` : '';
    return batonError('BATON_ERR_PORT_IN_USE', `${host}:${port} is taken${who}: stop it, or choose another port (--port, or gateway.port in the chain file)`);
  }
  if (err.code === 'EACCES') return batonError('BATON_ERR_LISTEN', `${host}:${port}: ports below 1024 need root or CAP_NET_BIND_SERVICE`);
  if (err.code === 'EADDRNOTAVAIL' || err.code === 'ENOTFOUND') return batonError('BATON_ERR_LISTEN', `${host} is not an address of this machine`);
  return batonError('BATON_ERR_LISTEN', `${host}:${port}: ${err.message}`);
}

/** Every TCP socket of this machine's network namespace, from /proc/net/tcp and tcp6. */
function tcpSockets(): { localPort: number; remotePort: number; state: string; uid: number; inode: string }[] {
  const out = [];
  for (const table of ['/proc/net/tcp', '/proc/net/tcp6']) {
    let text = '';
    try {
      text = readFileSync(table, 'utf8');
    } catch {
      continue;
    }
    for (const line of text.split('\n').slice(1)) {
      // sl local_address rem_address st … uid timeout inode; addresses are ADDR:PORT in hex
      const f = line.trim().split(/\s+/);
      if (f.length < 10) continue;
      const port = (a: string) => parseInt(a.split(':')[1]!, 16);
      out.push({ localPort: port(f[1]!), remotePort: port(f[2]!), state: f[3]!, uid: Number(f[7]), inode: f[9]! });
    }
  }
  return out;
}

/** The uid owning the loopback TCP socket connected from `peerPort` to our `localPort`, if
 *  /proc shows it (the peer of a connection we accepted). */
export function peerUid(localPort: number, peerPort: number): number | undefined {
  return tcpSockets().find((s) => s.localPort === peerPort && s.remotePort === localPort)?.uid;
}

/** The process with a TCP socket listening on `port`, if /proc shows it. */
export function whoListens(port: number): { pid: number; command: string } | undefined {
  const LISTEN = '0A';
  const inodes = new Set(tcpSockets().filter((s) => s.state === LISTEN && s.localPort === port).map((s) => s.inode));
  if (inodes.size === 0) return undefined;
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    let fds: string[];
    try {
      fds = readdirSync(`/proc/${entry}/fd`);
    } catch {
      continue;
    }
    for (const fd of fds) {
      let link = '';
      try {
        link = readlinkSync(`/proc/${entry}/fd/${fd}`);
      } catch {
        continue;
      }
      const m = /^socket:\[(\d+)\]$/.exec(link);
      if (m && inodes.has(m[1]!)) {
        let command = '?';
        try {
          command = readFileSync(`/proc/${entry}/comm`, 'utf8').trim();
        } catch {
          // gone meanwhile
        }
        return { pid: Number(entry), command };
      }
    }
  }
  return undefined;
}
