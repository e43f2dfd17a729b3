// `baton up`: load the chain file, start the gateway, print the one line people and scripts
// look for, stop everything on SIGINT/SIGTERM.
import pino from 'pino';
import { loadChainFile } from '../chain/index.ts';
import { Gateway, type GatewayOptions } from '../gateway/index.ts';

export interface UpOptions extends Pick<GatewayOptions, 'port' | 'host' | 'adminPort' | 'timeoutMs' | 'kernelChecks'> {
  debug: boolean;
}

export async function serve(file: string, { debug, ...options }: UpOptions): Promise<void> {
  const deployment = loadChainFile(file);
  const gw = await Gateway.start(deployment, {
    ...options,
    logger: debug ? pino({ level: 'debug', name: 'baton' }) : undefined,
  });
  console.log(`baton: serving ${deployment.routes.length} route(s) on ${gw.url} (Ctrl-C stops); admin on ${gw.adminUrl}`);
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
