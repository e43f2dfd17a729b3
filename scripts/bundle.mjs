// npm run build, after tsc: the bundles a compiled baton runs from dist/.
//   dist/runtime — the worker runtime and baton's SDK: a gateway copies them for its workers
//                  instead of bundling them at every start;
//   dist/up      — the `up` command and everything it loads but esbuild and the addon, as one
//                  CommonJS file (up.cjs) and V8's code cache of it (up.cache): the gateway then
//                  starts from one file whose code is already compiled (src/cli/up-bundle.ts).
import { execFileSync } from 'node:child_process';
import { rmSync } from 'node:fs';
import { build } from 'esbuild';
import { buildRuntime } from '../dist/build/functions.js';

const dist = new URL('../dist/', import.meta.url).pathname;
for (const d of ['runtime', 'up']) rmSync(dist + d, { recursive: true, force: true });
await buildRuntime(dist + 'runtime');
await build({
  entryPoints: { up: dist + 'cli/up.js' },
  outfile: dist + 'up/up.cjs',
  bundle: true,
  format: 'cjs', // what it imports later (the listeners, metrics) is still evaluated only then
  platform: 'node',
  target: 'node20',
  sourcemap: 'linked',
  external: ['esbuild', '*.node'],
  // every module of it sits in dist/<folder>/ as up.cjs does: paths relative to import.meta.url hold
  define: { 'import.meta.url': '__batonModuleUrl' },
  banner: { js: "const __batonModuleUrl = require('node:url').pathToFileURL(__filename).href;" },
  logLevel: 'warning',
});
// the cache: compiled in a process of its own, as bin/baton.js will (same Node, same flags)
execFileSync(process.execPath, [new URL('../dist/cli/up-bundle.js', import.meta.url).pathname, 'cache'], { stdio: 'inherit' });
