// Function instances: one worker process per instance, each with its sockmap socket (fd 3)
// and the pool (fd 4). Workers run unprivileged (nobody) when the gateway runs as root.
// A worker that exits is replaced, with backoff; one that keeps failing before it is ready
// is given up on and its function answers 502 (dead letters).
import { spawn, type ChildProcess } from 'node:child_process';
import { EventEmitter } from 'node:events';
import { fileURLToPath } from 'node:url';
import type { Logger } from 'pino';
import type { Deployment } from '../chain/index.ts';
import type { Sockmap } from '../dataplane/sockmap.ts';
import { native } from '../native/index.ts';
import type { Pool } from '../pool/index.ts';
import { WORKER_ENV, type WorkerConfig, type WorkerMessage } from '../worker/config.ts';

const WORKER_MAIN = fileURLToPath(new URL('../worker/main.ts', import.meta.url));
const TSX_LOADER = import.meta.resolve('tsx');
const MAX_FAST_FAILURES = 5;
const STOP_GRACE_MS = 2000;

export interface Instance {
  fnId: number;
  key: number;
  child?: ChildProcess;
  ready: boolean;
  restarts: number;
  /** Consecutive exits before becoming ready. */
  failures: number;
  lastError?: string;
  gaveUp: boolean;
}

export interface InstancesEvents {
  /** An instance's process is gone: requests it held must be answered. */
  exit: [key: number, reason: string];
}

export class Instances extends EventEmitter<InstancesEvents> {
  readonly all: Instance[];
  private stopping = false;
  private readonly credentials?: { uid: number; gid: number };

  constructor(
    private readonly deployment: Deployment,
    private readonly sockmap: Sockmap,
    private readonly pool: Pool,
    private readonly log: Logger,
  ) {
    super();
    this.all = deployment.functions.flatMap((f) =>
      f.keys.map((key) => ({ fnId: f.id, key, ready: false, restarts: 0, failures: 0, gaveUp: false })),
    );
    if (process.getuid?.() === 0) {
      const uid = Number(process.env.BATON_WORKER_UID ?? 65534);
      const gid = Number(process.env.BATON_WORKER_GID ?? uid);
      this.credentials = { uid, gid };
    }
  }

  /** Starts every instance; rejects with the first one's error if any cannot start. */
  async startAll(): Promise<void> {
    await Promise.all(this.all.map((inst) => this.start(inst)));
  }

  /** Starts one instance; resolves when it is ready to serve. */
  private start(inst: Instance): Promise<void> {
    const fn = this.deployment.functions[inst.fnId]!;
    const { fd } = this.sockmap.open(inst.key);

    const cfg: WorkerConfig = {
      fnId: inst.fnId,
      key: inst.key,
      deployment: { functions: this.deployment.functions, chains: this.deployment.chains, pool: this.deployment.pool },
    };
    let child: ChildProcess;
    try {
      child = spawn(process.execPath, ['--import', TSX_LOADER, WORKER_MAIN], {
        stdio: ['ignore', 'inherit', 'inherit', fd, this.pool.fd, 'ipc'],
        env: { ...process.env, [WORKER_ENV]: JSON.stringify(cfg) },
        ...this.credentials,
      });
    } finally {
      native((a) => a.closeFd(fd)); // the child has its copy; ours would keep the socket alive
    }
    inst.child = child;
    inst.ready = false;

    return new Promise((resolve, reject) => {
      child.on('message', (msg: WorkerMessage) => {
        if (msg.type === 'ready') {
          inst.ready = true;
          inst.failures = 0;
          this.log.debug({ fn: fn.name, key: inst.key, pid: child.pid }, 'instance ready');
          resolve();
        } else if (msg.type === 'fatal') {
          inst.lastError = msg.message;
        } else if (msg.type === 'log') {
          this.log[msg.level]({ fn: fn.name, key: inst.key, reqId: msg.reqId }, msg.message);
        }
      });
      child.on('error', (err) => {
        inst.lastError = err.message;
      });
      child.on('exit', (code, signal) => {
        const reason = signal ? `killed by ${signal}` : `exited with code ${code}`;
        const wasReady = inst.ready;
        inst.ready = false;
        inst.child = undefined;
        this.sockmap.close(inst.key);
        this.emit('exit', inst.key, reason);
        if (!wasReady) {
          inst.failures++;
          reject(new Error(`function '${fn.name}' instance ${inst.key} ${reason}: ${inst.lastError ?? 'no message'}`));
        }
        if (this.stopping) return;
        this.log.warn({ fn: fn.name, key: inst.key, reason }, 'instance exited; replacing it');
        this.respawn(inst);
      });
    });
  }

  private respawn(inst: Instance): void {
    const fn = this.deployment.functions[inst.fnId]!;
    if (inst.failures >= MAX_FAST_FAILURES) {
      inst.gaveUp = true;
      this.log.error({ fn: fn.name, key: inst.key, error: inst.lastError }, 'instance keeps failing before it is ready; giving up');
      return;
    }
    const delay = Math.min(100 * 2 ** inst.failures, 5000);
    setTimeout(() => {
      if (this.stopping) return;
      inst.restarts++;
      this.start(inst).catch(() => {}); // a failed restart exits and comes back here
    }, delay).unref();
  }

  /** Stops every worker (SIGTERM, then SIGKILL after a grace period) and waits for all. */
  async stopAll(): Promise<void> {
    this.stopping = true;
    await Promise.all(
      this.all.map((inst) => {
        const child = inst.child;
        if (!child || child.exitCode !== null || child.signalCode !== null) return undefined;
        return new Promise<void>((resolve) => {
          const kill = setTimeout(() => child.kill('SIGKILL'), STOP_GRACE_MS);
          child.once('exit', () => {
            clearTimeout(kill);
            resolve();
          });
          child.kill('SIGTERM');
        });
      }),
    );
  }

  byKey(key: number): Instance | undefined {
    return this.all.find((i) => i.key === key);
  }
}
