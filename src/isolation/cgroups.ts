// Resource limits per function instance, enforced by the kernel's cgroups: memory (no swap),
// tasks, and optionally CPU. Each instance gets its own group, nested under the gateway's own
// cgroup (baton-<pid>/k<key>), which goes away when the gateway stops. An instance that spins
// (spinUs) takes its CPU at idle priority: its group sits under baton-<pid>-idle, a group with
// cpu.idle set beside baton-<pid> (for v1, in the cpu hierarchy only) — there its polling gets
// only CPU time no other process wants, and any process that wakes takes the CPU from it at
// once. sched_yield cannot do that: it yields only to tasks of the caller's own group, and an
// instance is alone in its group. With v1, such an instance also has a normal group (under
// baton-<pid>, like every other instance's) that it is moved to while other processes keep the
// node's CPUs busy (isolation/spin-priority.ts; it does not poll meanwhile): its work then gets
// its fair share of the CPU. cgroup v2 is used where it is mounted with the memory and
// pids controllers; otherwise the v1 hierarchies (this project's CI machines mount v1
// controllers, and a v2 mount without them). An instance the kernel killed for its memory is
// told apart from a crash by the group's oom_kill count.
import { mkdirSync, readdirSync, readFileSync, rmdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';

export interface Limits {
  memoryBytes: number;
  /** Tasks (processes and threads): Node needs about a dozen. */
  pids: number;
  /** Cores; undefined: no CPU limit. */
  cpu?: number;
  /** Its CPU at idle priority (it spins); where the kernel has no idle groups, at normal. */
  idle?: boolean;
}

interface Mounts {
  version: 1 | 2;
  /** v2: the one directory; v1: one per controller (memory, pids, cpu). */
  dirs: Record<string, string>;
}

export class Cgroups {
  private readonly created: string[] = [];
  private readonly ooms = new Map<number, number>();
  /** Keys of the instances whose CPU is at idle priority (they spin). */
  private readonly idleKeys = new Set<number>();
  /** Those of them moved to their normal cpu group for now (setBusy). */
  private readonly busyKeys = new Set<number>();

  private constructor(
    private readonly mounts: Mounts,
    /** Per controller, baton-<pid> under the gateway's own group. */
    private readonly roots: Record<string, string>,
    /** baton-<pid>-idle (cpu.idle set), for the controller that carries CPU (v1: cpu; v2: unified);
     *  undefined where there is no CPU controller or the kernel has no idle groups (before 5.15). */
    private readonly idleRoot?: string,
  ) {}

  /** Whether an instance asked to spin gets its CPU at idle priority here. */
  get idleGroups(): boolean {
    return this.idleRoot !== undefined;
  }

  /** Whether a spinning instance can be moved to a normal group while busy (setBusy): v1 only,
   *  where CPU has its own hierarchy (with v2 its whole group, memory too, is the idle one's,
   *  and memory already charged would not follow a move). */
  get movesBusy(): boolean {
    return this.idleRoot !== undefined && this.mounts.version === 1;
  }

  /** The gateway's cgroups, or the reason there are none (not root, no controllers). */
  static open(): Cgroups | string {
    if (process.getuid?.() !== 0) return 'the gateway does not run as root';
    const mounts = findMounts();
    if (typeof mounts === 'string') return mounts;
    const own = ownGroups();
    const v2 = mounts.version === 2;
    const roots: Record<string, string> = {};
    const made: string[] = [];
    const controls = '+memory +pids' + (mounts.dirs.cpu ? ' +cpu' : '');
    try {
      for (const [controller, dir] of Object.entries(mounts.dirs)) {
        const parent = path.join(dir, own[v2 ? '' : controller] ?? '/');
        removeStale(parent);
        const root = path.join(parent, `baton-${process.pid}`);
        mkdirSync(root, { recursive: true });
        if (!made.includes(root)) made.push(root);
        roots[controller] = root;
      }
      if (v2) writeFileSync(path.join(roots.unified!, 'cgroup.subtree_control'), controls);
      let idleRoot: string | undefined;
      if (mounts.dirs.cpu) {
        const idle = `${roots[v2 ? 'unified' : 'cpu']!}-idle`;
        mkdirSync(idle, { recursive: true });
        made.push(idle);
        if (v2) writeFileSync(path.join(idle, 'cgroup.subtree_control'), controls);
        if (tryWrite(path.join(idle, 'cpu.idle'), '1')) idleRoot = idle;
      }
      const cg = new Cgroups(mounts, roots, idleRoot);
      cg.created.push(...made);
      return cg;
    } catch (err) {
      return `cannot create cgroups: ${(err as Error).message}`;
    }
  }

  /** Creates (or resets) instance `key`'s group with `limits`. */
  prepare(key: number, limits: Limits): void {
    const v2 = this.mounts.version === 2;
    if (limits.idle && this.idleRoot) this.idleKeys.add(key);
    else this.idleKeys.delete(key);
    this.busyKeys.delete(key); // a new process starts at idle priority
    const dir = (controller: string) => this.make(this.group(v2 ? 'unified' : controller, key));
    if (v2) {
      const d = dir('unified');
      writeFileSync(path.join(d, 'memory.max'), String(limits.memoryBytes));
      writeFileSync(path.join(d, 'memory.swap.max'), '0');
      writeFileSync(path.join(d, 'pids.max'), String(limits.pids));
      if (limits.cpu && this.mounts.dirs.cpu) writeFileSync(path.join(d, 'cpu.max'), `${Math.round(limits.cpu * 100_000)} 100000`);
    } else {
      const mem = dir('memory');
      writeFileSync(path.join(mem, 'memory.limit_in_bytes'), String(limits.memoryBytes));
      tryWrite(path.join(mem, 'memory.memsw.limit_in_bytes'), String(limits.memoryBytes)); // only with swap accounting
      writeFileSync(path.join(dir('pids'), 'pids.max'), String(limits.pids));
      if (this.roots.cpu) {
        // a spinning instance's normal group too, with the same limit (see setBusy)
        const groups = this.idleKeys.has(key) ? [dir('cpu'), this.normal('cpu', key)] : [dir('cpu')];
        for (const cpu of groups) {
          writeFileSync(path.join(cpu, 'cpu.cfs_period_us'), '100000');
          writeFileSync(path.join(cpu, 'cpu.cfs_quota_us'), limits.cpu ? String(Math.round(limits.cpu * 100_000)) : '-1');
        }
      }
    }
    this.ooms.set(key, this.oomKills(key));
  }

  /** Moves process `pid` into instance `key`'s group. */
  place(key: number, pid: number): void {
    for (const controller of Object.keys(this.roots)) {
      writeFileSync(path.join(this.group(controller, key), 'cgroup.procs'), String(pid));
    }
  }

  /** Moves spinning instance `key` (process `pid`) to its normal cpu group while `busy`, and
   *  back to its idle one when not; nothing for an instance that does not spin, or where the
   *  kernel cannot (movesBusy). Whole processes move (cgroup.procs): every thread. */
  setBusy(key: number, pid: number, busy: boolean): void {
    if (!this.movesBusy || !this.idleKeys.has(key) || this.busyKeys.has(key) === busy) return;
    const to = busy ? this.normal('cpu', key) : path.join(this.idleRoot!, `k${key}`);
    try {
      writeFileSync(path.join(to, 'cgroup.procs'), String(pid));
    } catch {
      return; // the process is gone: its next one starts idle (prepare)
    }
    if (busy) this.busyKeys.add(key);
    else this.busyKeys.delete(key);
  }

  /** Whether spinning instance `key` is in its normal cpu group now. */
  busy(key: number): boolean {
    return this.busyKeys.has(key);
  }

  /** Instance `key`'s group of `controller` ('unified' for v2). */
  private group(controller: string, key: number): string {
    const cpu = controller === (this.mounts.version === 2 ? 'unified' : 'cpu');
    if (cpu && this.idleKeys.has(key) && !this.busyKeys.has(key)) return path.join(this.idleRoot!, `k${key}`);
    return path.join(this.roots[controller]!, `k${key}`);
  }

  /** Instance `key`'s group under baton-<pid> (a spinning instance's normal cpu group), made. */
  private normal(controller: string, key: number): string {
    return this.make(path.join(this.roots[controller]!, `k${key}`));
  }

  /** Makes group `d` (if missing) and remembers it for remove(). */
  private make(d: string): string {
    mkdirSync(d, { recursive: true });
    if (!this.created.includes(d)) this.created.unshift(d); // removed before their parents
    return d;
  }

  /** Whether the kernel killed instance `key` for its memory since the last time asked. */
  killedForMemory(key: number): boolean {
    const now = this.oomKills(key);
    const before = this.ooms.get(key) ?? 0;
    this.ooms.set(key, now);
    return now > before;
  }

  /** Removes every group (their processes must be gone). */
  remove(): void {
    for (const d of this.created) {
      try {
        rmdirSync(d);
      } catch {
        // still busy or gone: nothing more to do
      }
    }
  }

  private oomKills(key: number): number {
    const v2 = this.mounts.version === 2;
    const file = path.join(this.group(v2 ? 'unified' : 'memory', key), v2 ? 'memory.events' : 'memory.oom_control');
    try {
      return Number(/oom_kill (\d+)/.exec(readFileSync(file, 'utf8'))?.[1] ?? 0);
    } catch {
      return 0;
    }
  }
}

/** Writes an optional knob; false where this kernel does not have it. */
function tryWrite(file: string, value: string): boolean {
  try {
    writeFileSync(file, value);
    return true;
  } catch {
    return false;
  }
}

/** Where the controllers are mounted: v2 if it has memory and pids, else v1's hierarchies. */
function findMounts(): Mounts | string {
  const lines = readFileSync('/proc/self/mounts', 'utf8').split('\n').map((l) => l.split(' '));
  const v2 = lines.find((f) => f[2] === 'cgroup2')?.[1];
  if (v2) {
    const own = ownGroups()[''] ?? '/';
    const controllers = safeRead(path.join(v2, own, 'cgroup.controllers')).split(/\s+/);
    if (controllers.includes('memory') && controllers.includes('pids')) {
      return { version: 2, dirs: { unified: v2, ...(controllers.includes('cpu') ? { cpu: v2 } : {}) } };
    }
  }
  const dirs: Record<string, string> = {};
  for (const f of lines) {
    if (f[2] !== 'cgroup') continue;
    const options = (f[3] ?? '').split(',');
    for (const c of ['memory', 'pids', 'cpu']) if (options.includes(c)) dirs[c] = f[1]!;
  }
  if (!dirs.memory || !dirs.pids) return 'neither cgroup v2 with the memory and pids controllers nor cgroup v1 memory and pids hierarchies are mounted';
  return { version: 1, dirs };
}

/** This process's group per controller ('' for v2), from /proc/self/cgroup. */
function ownGroups(): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of safeRead('/proc/self/cgroup').split('\n')) {
    const [, controllers, group] = line.split(':');
    if (group === undefined) continue;
    for (const c of controllers!.split(',')) out[c] = group;
  }
  return out;
}

function safeRead(file: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch {
    return '';
  }
}

/** Removes the (empty) groups of gateways that died without removing theirs (SIGKILL). */
function removeStale(parent: string): void {
  for (const name of safeList(parent)) {
    const pid = Number(/^baton-(\d+)(-idle)?$/.exec(name)?.[1]);
    if (!pid || alive(pid)) continue;
    const root = path.join(parent, name);
    try {
      for (const child of safeList(root)) if (/^k\d+$/.test(child)) rmdirSync(path.join(root, child));
      rmdirSync(root);
    } catch {
      // a process still lives in it: leave it
    }
  }
}

function safeList(dir: string): string[] {
  try {
    return readdirSync(dir);
  } catch {
    return [];
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}
