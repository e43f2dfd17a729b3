// `baton up` as a user runs it: a real process, real signals. Ctrl-C must leave nothing
// behind: no worker process, no BPF map, no listening port; nor must a gateway killed with
// SIGKILL, whatever state its workers are in.
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { copyFileSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { cpuMs } from '../src/bench/procs.ts';
import { dataplaneUnavailable, suiteDataplane } from './helpers/env.ts';
import { EXAMPLES, FIXTURES, waitFor } from './helpers/gateway.ts';
import { alive, batonMapIds, poolHolders } from './helpers/system.ts';

const BIN = new URL('../bin/baton.js', import.meta.url).pathname;

/** Runs `baton up` on a chain file; resolves once it serves, with its URL and output so far. */
async function up(
  file: string,
  how: { args?: string[]; env?: NodeJS.ProcessEnv; prefix?: string[] } = {},
): Promise<{ child: ChildProcess; url: string; admin: string; output: () => string }> {
  const [cmd, ...rest] = [...(how.prefix ?? []), process.execPath, BIN, 'up', file, ...(how.args ?? [])];
  const child = spawn(cmd!, rest, { stdio: ['ignore', 'pipe', 'pipe'], env: how.env ?? process.env });
  let out = '';
  child.stdout!.on('data', (c) => (out += c));
  child.stderr!.on('data', (c) => (out += c));
  await waitFor('gateway to listen', () => /baton: serving \d+ route\(s\) on http:/.test(out), 20_000);
  const [, url, admin] = /baton: serving .* on (http:\S+) .*; admin on (http:\S+)/.exec(out)!;
  return { child, url: url!, admin: admin!, output: () => out };
}

/** `baton up` that fails: its exit code and stderr. */
function upFails(file: string, how: { args?: string[]; env?: NodeJS.ProcessEnv; prefix?: string[] } = {}): { status: number; stderr: string } {
  const [cmd, ...rest] = [...(how.prefix ?? []), process.execPath, BIN, 'up', file, ...(how.args ?? [])];
  try {
    execFileSync(cmd!, rest, { stdio: 'pipe', encoding: 'utf8', env: how.env ?? process.env });
  } catch (e) {
    return e as { status: number; stderr: string };
  }
  throw new Error('expected baton up to fail');
}

describe('the compiled up command', () => {
  // npm run build makes dist/up/up.cjs and V8's code cache of it; a cache this Node rejects
  // would still work, only slower: this checks it is taken
  it('loads from its code cache', () => {
    const script = "const r = (await import('./dist/cli/up-bundle.js')).loadUpBundle(); console.log(JSON.stringify({ cached: r?.cached, serve: typeof r?.up.serve }));";
    const out = execFileSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8', cwd: new URL('..', import.meta.url).pathname });
    expect(JSON.parse(out.trim().split('\n').pop()!)).toEqual({ cached: true, serve: 'function' });
  });
});

describe.skipIf(dataplaneUnavailable)('baton up', () => {
  it('serves the example chain and stops cleanly on SIGINT', async () => {
    // the example, on a free port
    const dir = mkdtempSync(path.join(os.tmpdir(), 'baton-cli-'));
    for (const f of ['parse.ts', 'transform.ts', 'render.ts']) copyFileSync(path.join(EXAMPLES, 'text-pipeline', f), path.join(dir, f));
    const chain = readFileSync(path.join(EXAMPLES, 'text-pipeline/chain.yaml'), 'utf8').replace('port: 8080', 'port: 0\n  admin: { port: 0 }');
    writeFileSync(path.join(dir, 'chain.yaml'), chain);
    execFileSync('chmod', ['-R', 'a+rX', dir]); // workers run as nobody
    // the examples import 'baton/sdk': resolve it from this checkout
    execFileSync('mkdir', ['-p', path.join(dir, 'node_modules')]);
    execFileSync('ln', ['-s', path.resolve(BIN, '../..'), path.join(dir, 'node_modules/baton')]);

    const mapsBefore = new Set(batonMapIds());
    const { child, url, admin } = await up(path.join(dir, 'chain.yaml'));

    const res = await fetch(`${url}/stats`, { method: 'POST', body: 'a b a' });
    expect(await res.json()).toMatchObject({ words: 3, distinct: 2 });
    const status = (await (await fetch(`${admin}/status`)).json()) as { functions: { instances: { pid: number }[] }[] };
    const pids = status.functions.flatMap((f) => f.instances.map((i) => i.pid));
    expect(pids).toHaveLength(4);
    const ours = batonMapIds().filter((id) => !mapsBefore.has(id));
    expect(ours).toHaveLength(suiteDataplane === 'sockmap' ? 1 : 0); // the broker loads no program

    child.kill('SIGINT');
    const [code] = await once(child, 'exit');
    expect(code).toBe(0);
    expect(pids.filter(alive)).toEqual([]);
    await waitFor('the sockmap to be freed', () => ours.every((id) => !batonMapIds().includes(id)));
    expect(execFileSync('find', ['/sys/fs/cgroup', '-maxdepth', '4', '-name', `baton-${child.pid}*`], { encoding: 'utf8' })).toBe(''); // and its idle group
    await expect(fetch(`${url}/stats`, { method: 'POST', body: 'x' })).rejects.toThrow();
  });

  it('explains a bad chain file and exits 1', () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'baton-cli-'));
    writeFileSync(path.join(dir, 'chain.yaml'), 'functions: {}\nroutes:\n  - { method: GET, path: /x, chain: [ghost] }\n');
    const err = upFails(path.join(dir, 'chain.yaml'));
    expect(err.status).toBe(1);
    expect(err.stderr).toMatch(/BATON_ERR_CHAIN_FILE[\s\S]*routes\.0\.chain\.0: unknown function 'ghost'/);
  });

  it('names a port in use and its process, without a stack trace, before starting anything', async () => {
    const busy = net.createServer();
    await new Promise<void>((r) => busy.listen(0, '127.0.0.1', r));
    const port = (busy.address() as net.AddressInfo).port;
    const dir = mkdtempSync(path.join(os.tmpdir(), 'baton-cli-'));
    writeFileSync(
      path.join(dir, 'chain.yaml'),
      `gateway: { port: ${port}, admin: { port: 0 } }\nfunctions: { a: { module: ${path.join(FIXTURES, 'echo.ts')} } }\nroutes: [{ method: GET, path: /x, chain: [a] }]\n`,
    );
    try {
      const err = upFails(path.join(dir, 'chain.yaml'));
      expect(err.status).toBe(1);
      expect(err.stderr.trim()).toBe(
        `baton: BATON_ERR_PORT_IN_USE: the gateway cannot listen: the port is in use: 127.0.0.1:${port} is taken by pid ${process.pid} (node): stop it, or choose another port (--port, or gateway.port in the chain file)`,
      );
    } finally {
      busy.close();
    }
  });

  it('a gateway killed with SIGKILL takes every worker with it, stopped or spinning, and leaves no program or pool', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'baton-cli-'));
    const fixture = (f: string) => path.join(FIXTURES, f);
    writeFileSync(
      path.join(dir, 'chain.yaml'),
      `gateway: { port: 0, admin: { port: 0 } }
functions:
  stopped: { module: ${fixture('tagged.ts')} }
  spinning: { module: ${fixture('hostile.ts')} }
  idle: { module: ${fixture('echo.ts')}, instances: 2 }
routes:
  - { method: POST, path: /stopped, chain: [stopped] }
  - { method: POST, path: /spinning, chain: [spinning] }
  - { method: POST, path: /idle, chain: [idle] }
`,
    );
    const mapsBefore = new Set(batonMapIds());
    const { child, url, admin } = await up(path.join(dir, 'chain.yaml'));
    const status = (await (await fetch(`${admin}/status`)).json()) as { functions: { name: string; instances: { pid: number }[] }[] };
    const pidOf = (fn: string) => status.functions.find((f) => f.name === fn)!.instances[0]!.pid;
    const pids = status.functions.flatMap((f) => f.instances.map((i) => i.pid));
    expect(pids).toHaveLength(4);
    const ours = batonMapIds().filter((id) => !mapsBefore.has(id));

    process.kill(pidOf('stopped'), 'SIGSTOP');
    void fetch(`${url}/spinning?do=spin`, { method: 'POST', body: 'x' }).catch(() => {});
    const spinner = pidOf('spinning');
    const cpu0 = cpuMs([spinner]);
    await waitFor('the worker to spin', () => cpuMs([spinner]) - cpu0 >= 200);

    child.kill('SIGKILL');
    await waitFor('every worker to be gone', () => pids.every((p) => !alive(p)), 5000);
    await waitFor('the sockmap to be freed', () => ours.every((id) => !batonMapIds().includes(id)), 5000);
    expect(poolHolders()).toEqual([]);
  });
});

/** Runs what follows as root without the capabilities eBPF needs: a container without CAP_BPF. */
const WITHOUT_EBPF = ['setpriv', '--bounding-set=-bpf,-sys_admin,-net_admin,-perfmon', '--inh-caps=-bpf,-sys_admin,-net_admin,-perfmon', '--'];
const noBpfUnavailable = process.getuid?.() !== 0 ? 'not root: cannot drop the eBPF capabilities to test without them' : dataplaneUnavailable;

describe.skipIf(noBpfUnavailable)('baton up where eBPF cannot load', () => {
  const env = { ...process.env, BATON_DATAPLANE: undefined }; // the broker pass sets it: not here
  const chainFile = () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'baton-cli-'));
    writeFileSync(
      path.join(dir, 'chain.yaml'),
      `gateway: { port: 0, admin: { port: 0 } }\nfunctions: { a: { module: ${path.join(FIXTURES, 'echo.ts')} }, b: { module: ${path.join(FIXTURES, 'xor.ts')} } }\n` +
        'routes: [{ method: POST, path: /x, chain: [a, b, b] }]\n',
    );
    return path.join(dir, 'chain.yaml');
  };

  it('falls back to the user-space broker after a loud warning, serves the chain the same, and stops cleanly', async () => {
    const mapsBefore = new Set(batonMapIds());
    const { child, url, admin, output } = await up(chainFile(), { prefix: WITHOUT_EBPF, env });
    try {
      expect(output()).toMatch(/baton: WARNING: no eBPF here \(eBPF needs privilege.*\); serving on the user-space broker: every descriptor now crosses the gateway process/);
      const body = Buffer.from('broker '.repeat(500));
      const answers = await Promise.all([...Array(20)].map(() => fetch(`${url}/x`, { method: 'POST', body }).then(async (r) => [r.status, Buffer.from(await r.arrayBuffer())] as const)));
      for (const [status, got] of answers) {
        expect(status).toBe(200);
        expect(got.equals(body)).toBe(true); // xor twice: the body itself
      }
      const status = (await (await fetch(`${admin}/status`)).json()) as { dataplane: string; stats: { badDescriptors: number } };
      expect(status).toMatchObject({ dataplane: 'broker', stats: { badDescriptors: 0 } });
      expect(await (await fetch(`${admin}/metrics`)).text()).toMatch(/^baton_dataplane_info\{dataplane="broker"\} 1$/m);
      expect(batonMapIds().filter((id) => !mapsBefore.has(id))).toEqual([]); // no program, no map
    } finally {
      child.kill('SIGINT');
    }
    const [code] = await once(child, 'exit');
    expect(code).toBe(0);
  });

  it('--dataplane sockmap fails instead, with the typed reason; an unknown data plane is a usage error', () => {
    const file = chainFile();
    const err = upFails(file, { prefix: WITHOUT_EBPF, env, args: ['--dataplane', 'sockmap'] });
    expect(err.status).toBe(1);
    expect(err.stderr).toMatch(/^baton: BATON_ERR_NO_PRIVILEGE: eBPF needs privilege/m);
    const usage = upFails(file, { env, args: ['--dataplane', 'kernel'] });
    expect(usage.status).toBe(2);
    expect(usage.stderr).toMatch(/--dataplane expects one of auto, sockmap, broker, got 'kernel'/);
  });
});

/** Any baton command: exit code, stdout and stderr. */
function baton(args: string[], cwd?: string): { status: number; stdout: string; stderr: string } {
  try {
    const stdout = execFileSync(process.execPath, [BIN, ...args], { stdio: 'pipe', encoding: 'utf8', cwd });
    return { status: 0, stdout, stderr: '' };
  } catch (e) {
    return e as { status: number; stdout: string; stderr: string };
  }
}

describe('command-line manners (no eBPF needed)', () => {
  it('--help lists every command, and each command has its own', () => {
    for (const args of [['--help'], ['help'], []]) {
      const out = baton(args);
      expect(out.status).toBe(0);
      for (const cmd of ['up', 'status', 'top', 'init', 'test', 'bench', 'simulate']) expect(out.stdout).toMatch(new RegExp(`^  ${cmd} +\\S`, 'm'));
    }
    for (const cmd of ['up', 'status', 'top', 'init', 'test', 'bench', 'simulate']) {
      const out = baton([cmd, '--help']);
      expect(out).toMatchObject({ status: 0, stdout: expect.stringMatching(new RegExp(`^usage: baton ${cmd}`)) });
    }
    expect(baton(['--version']).stdout.trim()).toMatch(/^\d+\.\d+\.\d+$/);
  });

  it.each([
    [['frob'], /^baton: unknown command 'frob'\n\nusage: baton <command>/],
    [['up', 'chain.yaml', '--bogus'], /^baton: Unknown option '--bogus'[\s\S]*usage: baton up <chain-file>/],
    [['up', 'chain.yaml', '--port', 'x'], /^baton: --port expects a non-negative integer, got 'x'/],
    [['up'], /^baton: baton up takes one chain file/],
    [['bench', 'nosuch'], /^baton: unknown scenario 'nosuch'/],
    [['bench', 'compare', '1'], /^baton: baton bench compare takes two run ids/],
    [['simulate'], /^baton: baton simulate takes one trace file/],
    [['simulate', 'x.json', '--policy', 'magic'], /^baton: --policy is one of static, reactive, kraken or all, not 'magic'/],
  ])('usage mistake %j: exit 2, what to do, the usage, no stack', (args, message) => {
    const out = baton(args);
    expect(out.status).toBe(2);
    expect(out.stderr).toMatch(message);
    expect(out.stderr).not.toMatch(/\n\s+at /);
  });

  it('a typed error exits 1 with its code and no stack; --debug adds the stack', () => {
    const db = path.join(mkdtempSync(path.join(os.tmpdir(), 'baton-cli-')), 'none.sqlite');
    const out = baton(['bench', 'compare', '998', '999', '--db', db]);
    expect(out.status).toBe(1);
    expect(out.stderr).toMatch(/^baton: BATON_ERR_NO_SUCH_RUN: no such bench run: run 998 has no results in .*\(baton bench list shows the runs\)\n$/);
    const debug = baton(['bench', 'compare', '998', '999', '--db', db, '--debug']);
    expect(debug.status).toBe(1);
    expect(debug.stderr).toMatch(/BATON_ERR_NO_SUCH_RUN[\s\S]*\n\s+at /);
  });

  it('baton init refuses a directory that is not empty', () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'baton-cli-'));
    writeFileSync(path.join(dir, 'precious.txt'), 'x');
    const out = baton(['init', dir]);
    expect(out.status).toBe(1);
    expect(out.stderr).toMatch(/BATON_ERR_INIT: .* is not empty \(precious.txt\); choose a new or empty directory/);
    expect(readFileSync(path.join(dir, 'precious.txt'), 'utf8')).toBe('x');
  });
});

describe('baton simulate', () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'baton-sim-'));
  const write = (name: string, doc: unknown) => {
    const file = path.join(dir, name);
    writeFileSync(file, typeof doc === 'string' ? doc : JSON.stringify(doc));
    return file;
  };
  const trace = {
    durationMs: 20_000,
    functions: { a: { exec: { kind: 'constant', ms: 5 }, instances: 1 }, b: { exec: { kind: 'exponential', meanMs: 5 }, instances: 1 } },
    routes: [{ chain: ['a', 'b'], slo: 100 }],
    arrivals: [{ route: 0, rate: [{ atMs: 0, perSecond: 20 }] }],
  };

  it('prints each policy side by side, or the figures as JSON with ratios against static', () => {
    const file = write('t.json', trace);
    const text = baton(['simulate', file]);
    expect(text.status).toBe(0);
    for (const p of ['static', 'reactive', 'kraken']) expect(text.stdout).toMatch(new RegExp(`│ ${p} +│ \\d+ +│ \\d+\\.\\d\\d% `));
    expect(text.stdout).toMatch(/instances over time, kraken \(full height \d+\):\n  a  +\S/);
    const json = JSON.parse(baton(['simulate', file, '--json', '--policy', 'all']).stdout) as { scenario: string; results: { system: string; metric: string; value: number; vs: Record<string, number> }[] };
    expect(json.scenario).toBe('simulate');
    const is = json.results.find((r) => r.system === 'static' && r.metric === 'instance-seconds')!;
    expect(is.value).toBeCloseTo(2 * 20, 0); // two instances for 20 s
    expect(json.results.find((r) => r.system === 'kraken' && r.metric === 'instance-seconds')!.vs.static).toBeGreaterThan(0);
  });

  it('a bad trace is a typed error naming each problem with its path', () => {
    const file = write('bad.json', { ...trace, routes: [{ chain: ['a', 'nope'] }], arrivals: [{ route: 0, rate: [] }] });
    const out = baton(['simulate', file]);
    expect(out.status).toBe(1);
    expect(out.stderr).toMatch(/BATON_ERR_TRACE/);
    expect(out.stderr).toMatch(/arrivals\.0\.rate: /);
    const unknown = baton(['simulate', write('unknown.json', { ...trace, routes: [{ chain: ['a', 'nope'] }] })]);
    expect(unknown.status).toBe(1);
    expect(unknown.stderr).toMatch(/routes\.0\.chain\.1: unknown function 'nope'/);
    expect(baton(['simulate', write('junk.json', '{')]).stderr).toMatch(/BATON_ERR_TRACE: invalid simulation trace: .*junk\.json/);
  });
});
