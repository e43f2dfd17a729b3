// `baton up`: load the chain file, start the gateway, print the one line people and scripts
// look for, stop everything on SIGINT/SIGTERM.
import v8 from 'node:v8';
import pino from 'pino';
import { loadChainFile } from '../chain/index.ts';
import { watchSources, type SourceWatch } from '../build/watch.ts';
import { BROKER_COST } from '../dataplane/dataplane.ts';
import { Gateway, type GatewayOptions } from '../gateway/index.ts';
import { native } from '../native/index.ts';

export interface UpOptions extends Pick<GatewayOptions, 'port' | 'host' | 'adminPort' | 'timeoutMs' | 'kernelChecks' | 'dataplane' | 'program'> {
  debug: boolean;
  watch: boolean;
}

export async function serve(file: string, { debug, watch, ...options }: UpOptions): Promise<void> {
  // the gateway's process: one system call less per wait for events (nothing reads its idle time)
  native((a) => a.stopLoopIdleTime());
  // V8's incremental marking, once it runs under load, keeps running: each request's objects,
  // stored into long-lived ones (sockets, maps) while it marks, outlive the next scavenge and are
  // promoted, so the old space refills and the next cycle starts at once — 20% of the young
  // generation survived every scavenge (0.5% without), 5 ms pauses every 100 ms, ~18% of the
  // gateway's CPU at saturation. Marked all at once instead, the gateway's small heap (~20 MB)
  // pauses ~10 ms now and then. BATON_INCREMENTAL_MARKING=1 keeps V8's default.
  if (process.env.BATON_INCREMENTAL_MARKING !== '1') v8.setFlagsFromString('--no-incremental-marking');
  const deployment = loadChainFile(file);
  const gw = await Gateway.start(deployment, {
    ...options,
    logger: debug ? pino({ level: 'debug', name: 'baton' }) : undefined,
  });
  if (gw.dataplaneFallback) {
    // said where a person sees it, not only in the log: this node runs slower than it could
    console.error(`baton: WARNING: no eBPF here (${gw.dataplaneFallback}); serving on the user-space broker: ${BROKER_COST}`);
  }
  console.log(`baton: serving ${deployment.routes.length} route(s) on ${gw.url} (Ctrl-C stops); admin on ${gw.adminUrl}`);
  if (watch) reloadOnChange(gw);
  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) return;
    stopping = true;
    gw.log.info({ signal }, 'stopping');
    gw.stop().then(
      () => process.exit(0),
      (err) => {
        gw.log.error({ err }, 'stop failed');
        process.exit(1);
      },
    );
  };
  process.on('SIGINT', () => stop('SIGINT'));
  process.on('SIGTERM', () => stop('SIGTERM'));
}

/** Rebuilds when a function's source changes and restarts what changed; a module that no
 *  longer builds is reported and the running code keeps serving. */
function reloadOnChange(gw: Gateway): void {
  let reloading = Promise.resolve();
  const arm = (): SourceWatch =>
    watchSources(gw.sources, (files) => {
      reloading = reloading.then(async () => {
        gw.log.info({ files }, 'sources changed: rebuilding');
        try {
          const changed = await gw.reload();
          current.close();
          current = arm(); // a new import may have joined the sources
          gw.log.info({ functions: changed }, changed.length ? 'restarted the changed functions' : 'no function changed');
        } catch (err) {
          gw.log.error(`not reloaded, still serving the previous build: ${(err as Error).message}`);
        }
      });
    });
  let current = arm();
}
