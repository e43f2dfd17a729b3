// `baton test`: a function project's tests, TypeScript included, with no test framework to
// install: each *.test.ts / *.test.js is bundled by esbuild (baton/sdk and baton/testing
// resolved to this package, as in the gateway's build) and run by `node --test`.
import { spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { bundle } from '../build/functions.ts';
import { batonError } from '../errors.ts';

const TEST_FILE = /\.test\.(ts|mts|js|mjs)$/;

export async function runTests(targets: string[]): Promise<void> {
  const files = targets.flatMap((t) => find(path.resolve(t)));
  if (files.length === 0) throw batonError('BATON_ERR_TESTS_FAILED', `no *.test.ts or *.test.js file under ${targets.join(', ')}`);
  const out = mkdtempSync(path.join(os.tmpdir(), 'baton-test-'));
  try {
    const base = process.cwd();
    const entryPoints = Object.fromEntries(files.map((f) => [path.relative(base, f).replace(/\.[^.]+$/, '').replace(/\.\.\//g, '__/'), f]));
    await bundle(entryPoints, out);
    const bundles = readdirSync(out, { recursive: true, encoding: 'utf8' }).filter((f) => f.endsWith('.mjs')).map((f) => path.join(out, f));
    const code = await new Promise<number>((resolve) => {
      const child = spawn(process.execPath, ['--enable-source-maps', '--test', '--test-reporter=spec', ...bundles], { stdio: 'inherit' });
      child.on('exit', (c, signal) => resolve(c ?? (signal ? 1 : 0)));
    });
    if (code !== 0) throw batonError('BATON_ERR_TESTS_FAILED', `node --test exited with ${code} (see above)`);
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
}

function find(p: string): string[] {
  let st;
  try {
    st = statSync(p);
  } catch {
    throw batonError('BATON_ERR_TESTS_FAILED', `no such file or directory: ${p}`);
  }
  if (st.isFile()) return [p];
  return readdirSync(p, { withFileTypes: true }).flatMap((e) => {
    if (e.name === 'node_modules' || e.name.startsWith('.')) return [];
    const full = path.join(p, e.name);
    if (e.isDirectory()) return find(full);
    return TEST_FILE.test(e.name) ? [full] : [];
  });
}
