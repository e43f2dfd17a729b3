// README "Your first function", as a user runs it outside the repository: pack baton, install
// the tarball (compiled JavaScript) into a fresh project, scaffold, type-check with plain tsc, unit-test with
// `baton test`, serve with `baton up`, curl. Real npm (offline-first from the cache the
// checkout's own install filled), real processes, real HTTP.
import { execFileSync, spawn, type ExecFileSyncOptions } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { dataplaneUnavailable } from './helpers/env.ts';
import { waitFor } from './helpers/gateway.ts';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const BIN = path.join(ROOT, 'bin/baton.js');
// node-gyp builds the addon against the machine's Node headers (as scripts/setup.sh does)
const env = { ...process.env, ...(existsSync('/usr/include/node/node.h') ? { npm_config_nodedir: '/usr' } : {}) };
const NPM_QUIET = ['--prefer-offline', '--no-audit', '--no-fund', '--loglevel=error'];

function sh(cmd: string, args: string[], cwd: string, options: ExecFileSyncOptions = {}): string {
  return execFileSync(cmd, args, { cwd, env, encoding: 'utf8', stdio: 'pipe', ...options }) as string;
}

/** Exit status and output of a command expected to fail. */
function fails(cmd: string, args: string[], cwd: string): { status: number; stdout: string; stderr: string } {
  try {
    sh(cmd, args, cwd);
  } catch (e) {
    return e as { status: number; stdout: string; stderr: string };
  }
  throw new Error(`expected ${cmd} ${args.join(' ')} to fail`);
}

describe('your first function, outside the repository', () => {
  it('baton init in a new directory depends on this baton and lists what to do next', () => {
    const dir = path.join(mkdtempSync(path.join(os.tmpdir(), 'baton-init-')), 'My App');
    const out = sh(process.execPath, [BIN, 'init', dir], ROOT);
    expect(out).toMatch(/functions\/greet\.ts[\s\S]*npm install[\s\S]*npx baton test[\s\S]*baton up chain\.yaml/);
    const pkg = JSON.parse(readFileSync(path.join(dir, 'package.json'), 'utf8')) as Record<string, Record<string, string>>;
    expect(pkg.name).toBe('my-app');
    expect(pkg.dependencies).toEqual({ baton: `file:${ROOT.replace(/\/$/, '')}` });
    expect(Object.keys(pkg.devDependencies!).sort()).toEqual(['@types/node', 'typescript']);
  });

  it.skipIf(dataplaneUnavailable)('npm pack → npm install → baton init → tsc → baton test → baton up → curl', async () => {
    const work = mkdtempSync(path.join(os.tmpdir(), 'baton-walk-'));
    const tarball = sh('npm', ['pack', '--pack-destination', work, '--loglevel=error'], ROOT).trim().split('\n').pop()!;
    const app = path.join(work, 'app');
    sh('mkdir', [app], work);
    sh('npm', ['init', '-y', '--loglevel=error'], app);
    sh('npm', ['install', ...NPM_QUIET, path.join(work, tarball)], app, { timeout: 300_000 });
    // the installed package runs compiled JavaScript, not TypeScript through a loader
    expect(existsSync(path.join(app, 'node_modules/baton/dist/cli/main.js'))).toBe(true);
    expect(existsSync(path.join(app, 'node_modules/baton/src/cli/main.ts'))).toBe(false);

    const init = sh('npx', ['baton', 'init', '.'], app);
    expect(init).toMatch(/a function project in \.:/);
    sh('npm', ['install', ...NPM_QUIET], app, { timeout: 300_000 });

    // plain tsc type-checks the functions against the SDK's .d.ts, and catches a wrong type
    sh('npx', ['tsc'], app);
    const greet = path.join(app, 'functions/greet.ts');
    const good = readFileSync(greet, 'utf8');
    writeFileSync(greet, good.replace("return ctx.json(", "ctx.status('201');\n  return ctx.json("));
    expect(fails('npx', ['tsc'], app).stdout).toMatch(/functions\/greet\.ts\(\d+,\d+\): error TS2345: Argument of type 'string' is not assignable to parameter of type 'number'/);
    writeFileSync(greet, good);

    // the scaffold's unit tests pass without a gateway; a failing one fails the command
    expect(sh('npx', ['baton', 'test'], app)).toMatch(/pass 2[\s\S]*fail 0/);
    writeFileSync(path.join(app, 'test/broken.test.ts'), "import { test } from 'node:test';\ntest('broken', () => { throw new Error('no'); });\n");
    const broken = fails('npx', ['baton', 'test'], app);
    expect(broken.status).toBe(1);
    expect(broken.stderr).toMatch(/BATON_ERR_TESTS_FAILED/);

    // serve the chain and call it
    // the installed command itself (npx would not pass our SIGINT on, a terminal's Ctrl-C would)
    const child = spawn(path.join(app, 'node_modules/.bin/baton'), ['up', 'chain.yaml', '--port', '0', '--admin-port', '0'], {
      cwd: app, env, stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    child.stdout!.on('data', (c) => (out += c));
    child.stderr!.on('data', (c) => (out += c));
    try {
      await waitFor('the gateway to serve', () => /baton: serving 1 route\(s\) on http:/.test(out), 60_000).catch((err: Error) => {
        throw new Error(`${err.message}; it wrote:\n${out}`);
      });
      const url = /serving \d+ route\(s\) on (http:\S+)/.exec(out)![1]!;
      const res = await fetch(`${url}/greet`, { method: 'POST', body: 'world' });
      expect(res.status).toBe(200);
      expect(await res.text()).toBe('HELLO, WORLD!\n');
    } finally {
      child.kill('SIGINT');
    }
    const [code] = await once(child, 'exit');
    expect(code).toBe(0);
  }, 300_000);
});
