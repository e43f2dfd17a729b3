// npm run build, after tsc: bundles the worker runtime and baton's SDK into dist/runtime, so a
// gateway running the compiled package copies them instead of bundling them at every start.
import { rmSync } from 'node:fs';
import { buildRuntime } from '../dist/build/functions.js';

const out = new URL('../dist/runtime/', import.meta.url).pathname;
rmSync(out, { recursive: true, force: true });
await buildRuntime(out);
