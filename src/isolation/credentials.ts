// Who a function's instances run as: their own uid and gid per function when the gateway is
// root, so one function cannot signal another's processes or read their memory or environment.
import { readFileSync } from 'node:fs';
import type { Deployment } from '../chain/index.ts';
import { batonError } from '../errors.ts';

/** Function `fnId`'s own uid and gid when the gateway is root (none otherwise: workers then run
 *  as the gateway's user, and functions are not separated from each other by uid). */
export function workerCredentials(d: Pick<Deployment, 'isolation'>, fnId: number): { uid: number; gid: number } | undefined {
  if (process.getuid?.() !== 0) return undefined;
  const id = d.isolation.uidBase + fnId;
  return { uid: id, gid: id };
}

/** Refuses a uid range that an account of this machine uses: its files and processes would be
 *  the function's. */
export function checkUidRange(d: Pick<Deployment, 'isolation' | 'functions'>): void {
  if (process.getuid?.() !== 0) return;
  const { uidBase } = d.isolation;
  let passwd = '';
  try {
    passwd = readFileSync('/etc/passwd', 'utf8');
  } catch {
    return;
  }
  for (const line of passwd.split('\n')) {
    const [name, , uid] = line.split(':');
    const n = Number(uid);
    if (n >= uidBase && n < uidBase + d.functions.length) {
      throw batonError('BATON_ERR_CHAIN_FILE', `isolation.uidBase: uid ${n} is the account '${name}' here; choose a range of ${d.functions.length} uids no account uses`);
    }
  }
}
