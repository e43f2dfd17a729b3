// Process entry of a function instance, spawned by the gateway with its sockmap socket on
// fd 3, the pool memfd on fd 4 and an IPC channel. Runs unprivileged. Exits when the
// gateway goes away (socket EOF or IPC disconnect), so no worker outlives its gateway.
import { pathToFileURL } from 'node:url';
import { Endpoint } from '../dataplane/endpoint.ts';
import { native } from '../native/index.ts';
import { Pool } from '../pool/index.ts';
import { isFunctionDefinition } from '../sdk/index.ts';
import {
  WORKER_ENV, WORKER_POOL_FD, WORKER_SOCKET_FD, type GatewayMessage, type WorkerConfig, type WorkerMessage,
} from './config.ts';
import { captureOutput } from './output.ts';
import { WorkerRuntime } from './runtime.ts';
import { rehearse } from './rehearsal.ts';
import { warmUp } from './warmup.ts';

function tell(msg: WorkerMessage): void {
  if (process.connected) process.send!(msg);
}

function fatal(message: string): never {
  tell({ type: 'fatal', message });
  console.error(`[baton worker] ${message}`);
  process.exit(1);
}

/** The next message of `type` from the gateway. */
function nextMessage<T extends GatewayMessage['type']>(type: T): Promise<Extract<GatewayMessage, { type: T }>> {
  return new Promise((resolve) => {
    const on = (msg: GatewayMessage) => {
      if (msg?.type !== type) return;
      process.off('message', on);
      resolve(msg as Extract<GatewayMessage, { type: T }>);
    };
    process.on('message', on);
  });
}

async function main(): Promise<void> {
  const raw = process.env[WORKER_ENV];
  if (!raw || !process.send) fatal('not started by a baton gateway (no config or IPC channel)');
  const cfg = JSON.parse(raw) as WorkerConfig;
  // before any function code runs (it may loop at import): the kernel kills this process
  // when the gateway exits, even stopped or spinning, and nothing it runs gains privileges
  native((a) => (a.dieWithParent(cfg.gatewayPid), a.noNewPrivileges()));
  // one system call less per wait for a descriptor (nothing here reads the loop's idle time)
  native((a) => a.stopLoopIdleTime());
  const fn = cfg.deployment.functions[cfg.fnId];
  if (!fn) fatal(`unknown function id ${cfg.fnId}`);
  // which instances are running (early binding picks among them), from now on
  let live = cfg.live;
  let spin = true;
  process.on('message', (msg: GatewayMessage) => {
    if (msg?.type === 'spin') {
      spin = msg.on === true;
      endpoint?.setSpinning(spin);
      tell({ type: 'spin', on: spin });
    }
    if (msg?.type !== 'live') return;
    live = msg.live;
    runtime?.router.setLive(live);
  });
  let runtime: WorkerRuntime | undefined;
  let endpoint: Endpoint | undefined;
  // the gateway puts this process in its cgroup first: its limits hold from the first byte
  const start = await nextMessage('start');
  captureOutput(tell); // from here on, console output reaches the gateway's log labelled
  const pool = Pool.attach(WORKER_POOL_FD, cfg.deployment.pool);
  // ICU's collator only for a function that compares strings by locale (~10 ms of a start)
  warmUp({ collator: start.collator === true });
  // a spare has time to spare: its request path compiled and warm before its first request
  // (rehearsal.ts, 3–5 ms). A process started to serve at once has a request waiting for it.
  // One that cannot rehearse (no memfd or socket left, say) serves anyway.
  if (!start.serve) await rehearse(cfg).catch(() => undefined);
  // warm: everything but the function itself; a spare waits here until an instance is wanted
  tell({ type: 'spare' });
  const entry = start.serve ?? (await nextMessage('serve')).entry;
  let mod: { default?: unknown };
  // stack traces map to the function's own source from here on: only its bundle's map is read.
  // (--enable-source-maps at spawn would also parse the runtime's maps, ~4 MiB of every
  // process's memory, spares included, for baton's own frames)
  process.setSourceMapsEnabled(true);
  try {
    mod = (await import(pathToFileURL(entry).href)) as { default?: unknown };
  } catch (err) {
    fatal(`function '${fn.name}': cannot load ${fn.module}: ${(err as Error).stack ?? err}`);
  }
  if (!isFunctionDefinition(mod.default)) {
    fatal(`function '${fn.name}': ${fn.module} must \`export default defineFunction(...)\` from 'baton/sdk'`);
  }

  const warn = (message: string, reqId?: number) => tell({ type: 'log', level: 'warn', message, reqId });
  const leave = () => process.exit(0);
  endpoint = new Endpoint(WORKER_SOCKET_FD, {
    frame: (frame) => runtime!.onFrame(frame),
    garbage: (bytes) => warn(`skipped ${bytes} bytes that were not a descriptor`),
    end: (errno) => (errno ? fatal(`socket error: errno ${errno}`) : leave()),
  }, { spinUs: fn.spinUs });
  endpoint.setSpinning(spin);
  const error = (message: string, reqId?: number) => tell({ type: 'log', level: 'error', message, reqId });
  runtime = new WorkerRuntime({ ...cfg, live }, pool, endpoint, mod.default.handler, { warn, error });
  process.on('disconnect', leave);
  // work first: what waits is bound to this socket now, and read in this process's next turn
  runtime.open();
  tell({ type: 'ready' });
}

void main();
