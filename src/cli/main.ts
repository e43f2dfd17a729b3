// baton's command line.
//   baton up <chain-file> [--port N] [--host H]   start the gateway and the chain's workers
import { parseArgs } from 'node:util';
import { loadChainFile } from '../chain/index.ts';
import { BatonError } from '../errors.ts';
import { Gateway } from '../gateway/index.ts';

const USAGE = `usage: baton up <chain-file> [--port N] [--host H] [--timeout-ms N]

  up     start the gateway serving the chain file's routes; Ctrl-C stops everything`;

async function up(args: string[]): Promise<void> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: { port: { type: 'string' }, host: { type: 'string' }, 'timeout-ms': { type: 'string' } },
  });
  if (positionals.length !== 1) throw new UsageError('baton up takes one chain file');
  const deployment = loadChainFile(positionals[0]!);
  const gw = await Gateway.start(deployment, {
    port: values.port !== undefined ? integer('--port', values.port) : undefined,
    host: values.host,
    timeoutMs: values['timeout-ms'] !== undefined ? integer('--timeout-ms', values['timeout-ms']) : undefined,
  });
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

class UsageError extends Error {}

function integer(flag: string, v: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0) throw new UsageError(`${flag} expects a non-negative integer, got '${v}'`);
  return n;
}

async function main(argv: string[]): Promise<void> {
  const [command, ...rest] = argv;
  if (command === 'up') return up(rest);
  throw new UsageError(command ? `unknown command '${command}'` : 'no command');
}

main(process.argv.slice(2)).catch((err: unknown) => {
  if (err instanceof UsageError) console.error(`baton: ${err.message}\n\n${USAGE}`);
  else if (err instanceof BatonError) console.error(`baton: ${err.code}: ${err.message}`);
  else console.error(err);
  process.exit(err instanceof UsageError ? 2 : 1);
});
