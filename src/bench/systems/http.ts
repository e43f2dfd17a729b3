// The HTTP baselines: a bare fastify hello route (the gateway's ceiling), and a chain of
// fastify services, one process per function, calling the next over undici keep-alive.
import type { ChildProcess } from 'node:child_process';
import { forkWithReady, stop } from '../procs.ts';
import type { RunningSystem } from './baton.ts';
import { sibling } from '../../paths.ts';

const SERVICE = sibling(import.meta.url, './http-service.ts');

/** Starts one service; `next` is the URL it forwards to ('-': it answers itself). */
export async function startService(next: string, mode: 'echo' | 'hello'): Promise<{ child: ChildProcess; url: string }> {
  const { child, ready } = await forkWithReady<{ url: string }>(SERVICE, [next, mode]);
  return { child, url: ready.url };
}

export async function startHttpChain(n: number): Promise<RunningSystem> {
  const children: ChildProcess[] = [];
  let next = '-';
  for (let i = n; i >= 1; i--) {
    const { child, url } = await startService(next, 'echo');
    children.push(child);
    next = url;
  }
  return { url: next, pids: () => children.map((c) => c.pid!), stop: () => stop(...children) };
}

export async function startFastifyHello(): Promise<RunningSystem> {
  const { child, url } = await startService('-', 'hello');
  return { url, pids: () => [child.pid!], stop: () => stop(child) };
}
