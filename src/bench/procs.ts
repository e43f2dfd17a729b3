// Processes the bench starts and what they cost: CPU time and memory from /proc.
import { execFileSync, fork, spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';

const TSX_LOADER = import.meta.resolve('tsx');

// Every process the bench starts, so none outlives it even when a scenario fails.
const started = new Set<ChildProcess>();
function track(child: ChildProcess): ChildProcess {
  started.add(child);
  child.once('exit', () => started.delete(child));
  return child;
}
process.once('exit', () => {
  for (const c of started) c.kill('SIGTERM');
});
const CLK_TCK = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;

type ForkOptions = { stdio?: unknown[]; env?: NodeJS.ProcessEnv };

/** Forks a TypeScript module with IPC; resolves with it and its {ready: true, …} message. */
export async function forkWithReady<T extends object>(file: string, args: string[], options: ForkOptions = {}): Promise<{ child: ChildProcess; ready: T }> {
  const child = track(
    fork(file, args, {
      execArgv: file.endsWith('.ts') ? ['--import', TSX_LOADER] : [],
      stdio: (options.stdio ?? ['ignore', 'inherit', 'inherit', 'ipc']) as never,
      env: options.env ?? process.env,
    }),
  );
  const ready = await nextMessage<T>(child, (m) => (m as { ready?: boolean }).ready === true);
  return { child, ready };
}

export async function forkReady(file: string, args: string[], options: ForkOptions = {}): Promise<ChildProcess> {
  return (await forkWithReady(file, args, options)).child;
}

/** Resolves with the child's next IPC message that `match` accepts. */
export function nextMessage<T = unknown>(child: ChildProcess, match: (m: unknown) => boolean = () => true): Promise<T> {
  return new Promise((resolve, reject) => {
    const onMessage = (m: unknown) => {
      if (!match(m)) return;
      cleanup();
      resolve(m as T);
    };
    const onExit = (code: number | null) => {
      cleanup();
      reject(new Error(`process ${child.pid} exited (${code}) before answering`));
    };
    const cleanup = () => {
      child.off('message', onMessage);
      child.off('exit', onExit);
    };
    child.on('message', onMessage);
    child.once('exit', onExit);
  });
}

/** Runs a command to completion; resolves with its stdout. */
export async function run(cmd: string, args: string[], stdio: unknown[] = ['ignore', 'pipe', 'inherit']): Promise<string> {
  const child = track(spawn(cmd, args, { stdio: stdio as never }));
  let out = '';
  child.stdout?.on('data', (c) => (out += c));
  const [code] = await once(child, 'exit');
  if (code !== 0) throw new Error(`${cmd} ${args.join(' ')} exited with ${code}`);
  return out;
}

/** Starts a long-running process the bench will stop (or that dies with the bench). */
export function spawnTracked(cmd: string, args: string[], stdio: unknown[]): ChildProcess {
  return track(spawn(cmd, args, { stdio: stdio as never }));
}

export async function stop(...children: (ChildProcess | undefined)[]): Promise<void> {
  await Promise.all(
    children.map(async (c) => {
      if (!c || c.exitCode !== null || c.signalCode !== null) return;
      const gone = once(c, 'exit');
      c.kill('SIGTERM');
      const timer = setTimeout(() => c.kill('SIGKILL'), 3000);
      await gone;
      clearTimeout(timer);
    }),
  );
}

/** CPU time (user + system) of the given processes, in milliseconds. */
export function cpuMs(pids: number[]): number {
  let ticks = 0;
  for (const pid of pids) {
    try {
      // fields after the parenthesised command name; utime and stime are the 14th and 15th
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      ticks += Number(fields[11]) + Number(fields[12]);
    } catch {
      // the process is gone: it used nothing more
    }
  }
  return (ticks * 1000) / CLK_TCK;
}

/** Resident memory of the given processes, in MiB. */
export function rssMiB(pids: number[]): number {
  let kib = 0;
  for (const pid of pids) {
    try {
      const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
      kib += Number(m?.[1] ?? 0);
    } catch {
      // gone
    }
  }
  return kib / 1024;
}

/** Every descendant of `pid` (workers of a gateway, say), from /proc. */
export function descendants(pid: number): number[] {
  const out: number[] = [];
  const children = (p: number) => {
    try {
      return readFileSync(`/proc/${p}/task/${p}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
    } catch {
      return [];
    }
  };
  const walk = (p: number) => {
    for (const c of children(p)) {
      out.push(c);
      walk(c);
    }
  };
  walk(pid);
  return out;
}
