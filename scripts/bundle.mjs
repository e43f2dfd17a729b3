// npm run build, after tsc: the bundles a compiled baton runs from dist/.
//   dist/runtime — the worker runtime and baton's SDK: a gateway copies them for its workers
//                  instead of bundling them at every start;
//   dist/up      — the `up` command and everything it loads but esbuild and the addon, so the
//                  gateway starts from a few files instead of hundreds.
import { rmSync } from 'node:fs';
import { build } from 'esbuild';
import { buildRuntime } from '../dist/build/functions.js';

const dist = new URL('../dist/', import.meta.url).pathname;
for (const d of ['runtime', 'up']) rmSync(dist + d, { recursive: true, force: true });
await buildRuntime(dist + 'runtime');
await build({
  entryPoints: { up: dist + 'cli/up.js' },
  outdir: dist + 'up',
  bundle: true,
  splitting: true, // what it imports later (the HTTP and admin listeners, metrics) stays apart
  format: 'esm',
  platform: 'node',
  target: 'node20',
  sourcemap: 'linked',
  external: ['esbuild', '*.node'],
  // CommonJS dependencies bundled into ESM still call require() for Node's built-ins
  banner: { js: "import { createRequire as __batonRequire } from 'node:module'; const require = __batonRequire(import.meta.url);" },
  logLevel: 'warning',
});
