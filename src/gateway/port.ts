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

/** The uid owning the loopback TCP socket connected from `peerPort` to our `localPort`, if
 *  /proc shows it (the peer of a connection we accepted). */
export function peerUid(localPort: number, peerPort: number): number | undefined {
  for (const table of ['/proc/net/tcp', '/proc/net/tcp6']) {
    let text = '';
    try {
      text = readFileSync(table, 'utf8');
    } catch {
      continue;
    }
    for (const line of text.split('\n').slice(1)) {
      const f = line.trim().split(/\s+/);
      // the peer's entry: its local port is peerPort, its remote port is ours; field 7 is its uid
      if (f.length > 7 && parseInt(f[1]!.split(':')[1]!, 16) === peerPort && parseInt(f[2]!.split(':')[1]!, 16) === localPort) {
        return Number(f[7]);
      }
    }
  }
  return undefined;
}

/** The process with a TCP socket listening on `port`, if /proc shows it. */
export function whoListens(port: number): { pid: number; command: string } | undefined {
  const inodes = new Set<string>();
  for (const table of ['/proc/net/tcp', '/proc/net/tcp6']) {
    let text = '';
    try {
      text = readFileSync(table, 'utf8');
    } catch {
      continue;
    }
    for (const line of text.split('\n').slice(1)) {
      const f = line.trim().split(/\s+/);
      // local_address is ADDR:PORT in hex; state 0A is LISTEN; field 9 is the inode
      if (f.length > 9 && f[3] === '0A' && parseInt(f[1]!.split(':')[1]!, 16) === port) inodes.add(f[9]!);
    }
  }
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
