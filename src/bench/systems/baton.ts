// baton under test: `baton up` in its own process on a generated chain file.
import type { ChildProcess } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { stringify } from 'yaml';
import type { ChainFileInput } from '../../chain/index.ts';
import { descendants, spawnTracked, stop } from '../procs.ts';
import { STOP_DECISION_MS } from '../../isolation/spin-priority.ts';
import { sourceFile } from '../../paths.ts';

const BIN = fileURLToPath(new URL('../../../bin/baton.js', import.meta.url));
export const BENCH_FUNCTIONS = sourceFile('bench/functions/');

export interface RunningSystem {
  url: string;
  /** Every process of the system (gateway and workers, or every service). */
  pids(): number[];
  stop(): Promise<void>;
}

export async function startBaton(
  tmp: string,
  name: string,
  chain: ChainFileInput,
  args: string[] = [],
): Promise<RunningSystem & { child: ChildProcess; adminUrl: string }> {
  const file = path.join(tmp, `${name}.yaml`);
  const doc = { ...chain, gateway: { port: 0, logLevel: 'warn', ...chain.gateway, admin: { port: 0 } } };
  writeFileSync(file, stringify(doc));
  const child = spawnTracked(process.execPath, [BIN, 'up', file, ...args], ['ignore', 'pipe', 'inherit']);
  let out = '';
  const [url, adminUrl] = await new Promise<[string, string]>((resolve, reject) => {
    child.stdout!.on('data', (c) => {
      out += c;
      const m = /baton: serving .* on (http:\S+) .*; admin on (http:\S+)/.exec(out);
      if (m) resolve([m[1]!, m[2]!]);
    });
    child.once('exit', (code) => reject(new Error(`baton up exited (${code}): ${out.slice(-500)}`)));
  });
  child.stdout!.resume();
  return { url, adminUrl, child, pids: () => [child.pid!, ...descendants(child.pid!)], stop: () => stop(child) };
}

/** A chain of `n` echo functions at POST /chain. */
export function echoChain(n: number, extra: Partial<ChainFileInput> = {}): ChainFileInput {
  const functions = Object.fromEntries([...Array(n)].map((_, i) => [`f${i + 1}`, { module: path.join(BENCH_FUNCTIONS, 'echo.ts') }]));
  return { functions, routes: [{ method: 'POST', path: '/chain', chain: Object.keys(functions) }], ...extra };
}

/** The worker processes of a running gateway, from its admin status. */
export async function workerPids(adminUrl: string): Promise<number[]> {
  const status = (await (await fetch(`${adminUrl}/status`)).json()) as { functions: { instances: { pid: number | null }[] }[] };
  return status.functions.flatMap((f) => f.instances.map((i) => i.pid).filter((p): p is number => p !== null));
}

/** Waits until every function with spinUs polls again at idle priority (status spinPriority),
 *  for up to `timeoutMs`; true if they do. Load just before (a warm-up at saturation) stops
 *  their polling — the gateway decides on whole seconds of the node's CPU, so that shows only
 *  up to two seconds later: look from then on — and they poll again only after a second in
 *  which the node's other processes took less than half of gateway.spinStopsAt (on a slow day
 *  the paced load client and the gateway at 250 req/s take more than that). Measured as
 *  "spinning", the system should be spinning, or say it is not. */
export async function spinningAgain(adminUrl: string, timeoutMs = 10_000): Promise<boolean> {
  await new Promise((r) => setTimeout(r, STOP_DECISION_MS + 100));
  const until = Date.now() + timeoutMs;
  for (;;) {
    const status = (await (await fetch(`${adminUrl}/status`)).json()) as { functions: { spinPriority: string | null }[] };
    if (status.functions.every((f) => f.spinPriority === null || f.spinPriority === 'idle')) return true;
    if (Date.now() >= until) return false;
    await new Promise((r) => setTimeout(r, 250));
  }
}
