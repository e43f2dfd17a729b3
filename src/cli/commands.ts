// The commands of `baton`, each with its usage, options and what it does. Heavy modules are
// imported by the command that needs them, so `baton --help` starts fast.
import type { ParseArgsConfig } from 'node:util';

type Values = Record<string, string | boolean | undefined>;

export interface Command {
  name: string;
  summary: string;
  usage: string;
  details?: string;
  options: NonNullable<ParseArgsConfig['options']>;
  run(values: Values, positionals: string[]): Promise<void>;
}

/** A mistake in how baton was called: exit 2 with the usage. */
export class UsageError extends Error {
  constructor(
    message: string,
    readonly command?: Command,
  ) {
    super(message);
  }
}

function integer(cmd: Command, flag: string, v: string | boolean | undefined): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0) throw new UsageError(`--${flag} expects a non-negative integer, got '${v}'`, cmd);
  return n;
}

function choice<T extends string>(cmd: Command, flag: string, v: string | boolean | undefined, allowed: readonly T[]): T | undefined {
  if (v === undefined) return undefined;
  if (!allowed.includes(v as T)) throw new UsageError(`--${flag} expects one of ${allowed.join(', ')}, got '${v}'`, cmd);
  return v as T;
}

function pattern(cmd: Command, flag: string, v: string): RegExp {
  try {
    return new RegExp(v);
  } catch (err) {
    throw new UsageError(`--${flag} expects a regular expression: ${(err as Error).message}`, cmd);
  }
}

/** (src/dataplane/dataplane.ts's DATAPLANE_CHOICES, not imported: --help stays light) */
const DATAPLANE_CHOICES = ['auto', 'sockmap', 'broker'] as const;

const up: Command = {
  name: 'up',
  summary: 'start the gateway serving a chain file\'s routes; Ctrl-C stops everything',
  usage: 'baton up <chain-file> [--port N] [--host H] [--admin-port N] [--timeout-ms N] [--dataplane auto|sockmap|broker] [--watch]',
  details: [
    '  --port N        public HTTP port (default: the chain file\'s gateway.port, else 8080)',
    '  --host H        address to listen on (default: the chain file\'s, else 127.0.0.1)',
    '  --admin-port N  admin listener for GET /status and POST /scale (default 9180)',
    '  --timeout-ms N  request timeout (default: the chain file\'s gateway.timeoutMs)',
    '  --dataplane D   sockmap (the eBPF program; fail without it), broker (user space, no eBPF),',
    '                  auto (default: sockmap, else broker after a warning); also BATON_DATAPLANE',
    '  --watch         rebuild when a function\'s source changes; restart only what changed',
    '  --debug         debug logging (every request) and stack traces',
  ].join('\n'),
  options: {
    port: { type: 'string' }, host: { type: 'string' }, 'admin-port': { type: 'string' }, 'timeout-ms': { type: 'string' },
    dataplane: { type: 'string' }, watch: { type: 'boolean' }, 'bench-no-kernel-checks': { type: 'boolean' },
  },
  async run(values, positionals) {
    if (positionals.length !== 1) throw new UsageError('baton up takes one chain file', up);
    const dataplane = choice(up, 'dataplane', values.dataplane, DATAPLANE_CHOICES);
    const kernelChecks = values['bench-no-kernel-checks'] ? false : undefined;
    // the kernel verifies the SK_MSG program (~50 ms) on another CPU while this one loads the
    // gateway's code (unless the broker is asked for before the chain file is read)
    const program = dataplane === 'broker' || process.env.BATON_DATAPLANE === 'broker'
      ? undefined
      : (await import('../dataplane/program.ts')).loadProgramAhead(kernelChecks !== false);
    // compiled: one bundle from its code cache (up-bundle.ts); a checkout running its sources: up.ts
    const { serve } = (await import('./up-bundle.ts')).loadUpBundle()?.up ?? (await import('./up.ts'));
    await serve(positionals[0]!, {
      port: integer(up, 'port', values.port),
      host: values.host as string | undefined,
      adminPort: integer(up, 'admin-port', values['admin-port']),
      timeoutMs: integer(up, 'timeout-ms', values['timeout-ms']),
      kernelChecks,
      dataplane,
      program,
      debug: values.debug === true,
      watch: values.watch === true,
    });
  },
};

const init: Command = {
  name: 'init',
  summary: 'scaffold a function project: a chain file, two functions, tsconfig.json and a test',
  usage: 'baton init <dir>',
  details: '  <dir> may exist if it is empty. Then: cd <dir> && baton up chain.yaml  (and baton test, tsc)',
  options: {},
  async run(_values, positionals) {
    if (positionals.length !== 1) throw new UsageError('baton init takes one directory', init);
    const { scaffold } = await import('./init.ts');
    scaffold(positionals[0]!);
  },
};

const test: Command = {
  name: 'test',
  summary: 'run a function project\'s tests (node:test files that import baton/testing) without a gateway',
  usage: 'baton test [file or directory …]',
  details: '  default: every *.test.ts / *.test.js under the current directory (node_modules aside)',
  options: {},
  async run(_values, positionals) {
    const { runTests } = await import('./test-runner.ts');
    await runTests(positionals.length ? positionals : ['.']);
  },
};

const ADMIN_DETAILS = '  --admin URL       the admin listener (default http://127.0.0.1:9180; --admin-port N for another local port)';

function adminUrl(cmd: Command, values: Values): string {
  if (values.admin !== undefined) return String(values.admin).replace(/\/$/, '');
  return `http://127.0.0.1:${integer(cmd, 'admin-port', values['admin-port']) ?? 9180}`;
}

const status: Command = {
  name: 'status',
  summary: 'a running gateway: functions, instances, queues, pool, errors',
  usage: 'baton status [--admin URL | --admin-port N] [--json]',
  details: `${ADMIN_DETAILS}
  --json            the admin listener's JSON as it is`,
  options: { admin: { type: 'string' }, 'admin-port': { type: 'string' }, json: { type: 'boolean' } },
  async run(values) {
    const { status: show } = await import('./status.ts');
    await show(adminUrl(status, values), values.json === true);
  },
};

const top: Command = {
  name: 'top',
  summary: 'baton status, redrawn every second, with request rates',
  usage: 'baton top [--admin URL | --admin-port N] [--interval MS] [--count N]',
  details: `${ADMIN_DETAILS}
  --interval MS     between redraws (default 1000)
  --count N         redraw N times, then exit (default: until Ctrl-C)`,
  options: { admin: { type: 'string' }, 'admin-port': { type: 'string' }, interval: { type: 'string' }, count: { type: 'string' } },
  async run(values) {
    const { top: watch } = await import('./status.ts');
    await watch(adminUrl(top, values), integer(top, 'interval', values.interval) ?? 1000, integer(top, 'count', values.count) ?? 0);
  },
};

const bench: Command = {
  name: 'bench',
  summary: 'measure baton against its baselines in one run; list and compare stored runs',
  usage: 'baton bench <scenario…|all> [--quick] [--json] [--systems REGEX] [--db FILE] [--out DIR]\n       baton bench list [--db FILE]\n       baton bench compare <run> <run> [--db FILE]',
  details: [
    '  scenarios: hop, chain, calls, payload, coldstart, binding, idle, scaling, overload, soak (all: every one but soak)',
    '  --quick     short runs (smoke test); full runs are the ones to quote',
    '  --json      print the figures as JSON on stdout (one scenario: an object, several: an array);',
    '              progress and tables go to stderr',
    '  --systems R only the systems whose names match the regular expression R (chain, hop);',
    '              name the baselines too: ratios are against systems of the same run',
    '  --db FILE   results database (default .bench/bench.sqlite)',
    '  --out DIR   where the HTML report goes (default .bench/)',
  ].join('\n'),
  options: {
    quick: { type: 'boolean', default: false }, json: { type: 'boolean', default: false }, systems: { type: 'string' }, db: { type: 'string' }, out: { type: 'string' },
  },
  async run(values, positionals) {
    const db = (values.db as string | undefined) ?? '.bench/bench.sqlite';
    const { listRuns, compareRuns } = await import('../bench/compare.ts');
    if (positionals[0] === 'list') return listRuns(db);
    if (positionals[0] === 'compare') {
      const [a, b] = positionals.slice(1).map(Number);
      if (!a || !b || positionals.length !== 3) throw new UsageError('baton bench compare takes two run ids (see baton bench list)', bench);
      return compareRuns(db, a, b);
    }
    const { SCENARIOS, runBench } = await import('../bench/index.ts');
    if (positionals.length === 0) throw new UsageError('name a scenario or all', bench);
    const names = positionals.includes('all') ? SCENARIOS.filter((s) => s.inAll !== false).map((s) => s.name) : positionals;
    const chosen = names.map((n) => {
      const s = SCENARIOS.find((x) => x.name === n);
      if (!s) throw new UsageError(`unknown scenario '${n}' (scenarios: ${SCENARIOS.map((x) => x.name).join(', ')})`, bench);
      return s;
    });
    const t0 = performance.now();
    const mode = values.quick ? 'quick' : 'full';
    // with --json, stdout carries only the document
    const log = values.json ? (line: string) => console.error(line) : (line: string) => console.log(line);
    const systems = values.systems === undefined ? undefined : pattern(bench, 'systems', values.systems as string);
    const { run, report, results, series } = await runBench(chosen, { mode, db, outDir: (values.out as string | undefined) ?? '.bench', log, systems });
    log(`\nrun ${run} done in ${((performance.now() - t0) / 1000).toFixed(0)} s; database ${db}; report ${report}`);
    if (values.json) {
      const { runJson } = await import('../bench/json.ts');
      console.log(JSON.stringify(runJson(run, mode, chosen, results, series), null, 2));
    }
  },
};

const simulateCmd: Command = {
  name: 'simulate',
  summary: 'run a trace through the scaling policies on a virtual clock (a model node, no processes)',
  usage: 'baton simulate <trace.json> [--policy static|reactive|kraken|all] [--json]',
  details: [
    '  --policy P  one policy, or all (default): static, reactive and kraken side by side',
    '  --json      the figures as JSON on stdout (as baton bench --json), progress on stderr',
    '  The trace format: README "Scaling", src/sim/trace.ts; an example: examples/scaling/trace.json',
  ].join('\n'),
  options: { policy: { type: 'string', default: 'all' }, json: { type: 'boolean', default: false } },
  async run(values, positionals) {
    if (positionals.length !== 1) throw new UsageError('baton simulate takes one trace file', simulateCmd);
    const { POLICIES, runSimulation } = await import('../sim/cli.ts');
    const p = values.policy as string;
    const chosen = p === 'all' ? [...POLICIES] : POLICIES.filter((x) => x === p);
    if (!chosen.length) throw new UsageError(`--policy is one of ${POLICIES.join(', ')} or all, not '${p}'`, simulateCmd);
    await runSimulation(positionals[0]!, chosen, values.json === true);
  },
};

export const COMMANDS: Command[] = [up, status, top, init, test, bench, simulateCmd];
