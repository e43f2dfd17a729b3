// baton's command line.
//   baton up <chain-file> [--port N] [--host H] [--admin-port N]   start the gateway and the workers
//   baton bench <scenario|all> [--quick]          measure against the baselines, in one run
//   baton bench list | compare <run> <run>        stored runs
import { parseArgs } from 'node:util';
import { loadChainFile } from '../chain/index.ts';
import { BatonError } from '../errors.ts';
import { Gateway } from '../gateway/index.ts';

const USAGE = `usage: baton up <chain-file> [--port N] [--host H] [--admin-port N] [--timeout-ms N]
       baton bench <scenario…|all> [--quick] [--db FILE] [--out DIR]
       baton bench list [--db FILE]
       baton bench compare <run> <run> [--db FILE]

  up     start the gateway serving the chain file's routes; Ctrl-C stops everything
  bench  run benchmark scenarios (${'${SCENARIO_NAMES}'}) against their baselines;
         results go to the SQLite database (default .bench/bench.sqlite), an HTML
         report to --out (default .bench/)`;

async function up(args: string[]): Promise<void> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: {
      port: { type: 'string' }, host: { type: 'string' }, 'admin-port': { type: 'string' }, 'timeout-ms': { type: 'string' },
      'bench-no-kernel-checks': { type: 'boolean' },
    },
  });
  if (positionals.length !== 1) throw new UsageError('baton up takes one chain file');
  const deployment = loadChainFile(positionals[0]!);
  const gw = await Gateway.start(deployment, {
    port: values.port !== undefined ? integer('--port', values.port) : undefined,
    host: values.host,
    adminPort: values['admin-port'] !== undefined ? integer('--admin-port', values['admin-port']) : undefined,
    kernelChecks: values['bench-no-kernel-checks'] ? false : undefined,
    timeoutMs: values['timeout-ms'] !== undefined ? integer('--timeout-ms', values['timeout-ms']) : undefined,
  });
  // a plain line whatever the log level: people and scripts look for it
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

class UsageError extends Error {}

function integer(flag: string, v: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0) throw new UsageError(`${flag} expects a non-negative integer, got '${v}'`);
  return n;
}

async function bench(args: string[]): Promise<void> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: { quick: { type: 'boolean', default: false }, db: { type: 'string' }, out: { type: 'string' } },
  });
  const { SCENARIOS, runBench } = await import('../bench/index.ts');
  const { listRuns, compareRuns } = await import('../bench/compare.ts');
  const db = values.db ?? '.bench/bench.sqlite';
  if (positionals[0] === 'list') return listRuns(db);
  if (positionals[0] === 'compare') {
    const [a, b] = positionals.slice(1).map(Number);
    if (!a || !b) throw new UsageError('baton bench compare takes two run ids (see baton bench list)');
    return compareRuns(db, a, b);
  }
  if (positionals.length === 0) throw new UsageError('name a scenario or all');
  const names = positionals.includes('all') ? SCENARIOS.filter((s) => s.inAll !== false).map((s) => s.name) : positionals;
  const chosen = names.map((n) => {
    const s = SCENARIOS.find((x) => x.name === n);
    if (!s) throw new UsageError(`unknown scenario '${n}' (scenarios: ${SCENARIOS.map((x) => x.name).join(', ')})`);
    return s;
  });
  const t0 = performance.now();
  const { run, report } = await runBench(chosen, {
    mode: values.quick ? 'quick' : 'full',
    db,
    outDir: values.out ?? '.bench',
    log: (line) => console.log(line),
  });
  console.log(`\nrun ${run} done in ${((performance.now() - t0) / 1000).toFixed(0)} s; database ${db}; report ${report}`);
}

async function main(argv: string[]): Promise<void> {
  const [command, ...rest] = argv;
  if (command === 'up') return up(rest);
  if (command === 'bench') return bench(rest);
  throw new UsageError(command ? `unknown command '${command}'` : 'no command');
}

// process.exit() runs 'exit' handlers (the bench stops what it started); a signal would not
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  if (process.argv[2] !== 'up') process.once(signal, () => process.exit(130));
}

main(process.argv.slice(2)).catch((err: unknown) => {
  if (err instanceof UsageError) console.error(`baton: ${err.message}\n\n${USAGE.replace('${SCENARIO_NAMES}', 'hop, chain, payload, coldstart, binding, idle, soak')}`);
  else if (err instanceof BatonError) console.error(`baton: ${err.code}: ${err.message}`);
  else console.error(err);
  process.exit(err instanceof UsageError ? 2 : 1);
});
