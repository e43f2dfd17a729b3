// What a baton gateway leaves on the machine, seen from outside: BPF maps, processes, memfds.
import { execFileSync } from 'node:child_process';
import { readdirSync, readlinkSync } from 'node:fs';

/** Ids of the sockmaps baton programs have loaded (one per running gateway). */
export function batonMapIds(): number[] {
  const maps = JSON.parse(execFileSync('bpftool', ['-j', 'map', 'show'], { encoding: 'utf8' })) as { id: number; name?: string }[];
  return maps.filter((m) => m.name === 'baton_socks').map((m) => m.id);
}

export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** Processes other than this one holding a baton pool memfd open. */
export function poolHolders(): number[] {
  const pids: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry) || Number(entry) === process.pid) continue;
    let fds: string[] = [];
    try {
      fds = readdirSync(`/proc/${entry}/fd`);
    } catch {
      continue;
    }
    if (fds.some((fd) => safeReadlink(`/proc/${entry}/fd/${fd}`).startsWith('/memfd:baton-pool'))) pids.push(Number(entry));
  }
  return pids;
}

function safeReadlink(p: string): string {
  try {
    return readlinkSync(p);
  } catch {
    return '';
  }
}
