#!/usr/bin/env node
// baton runs its compiled JavaScript (dist/, built by npm install and npm test). A checkout
// whose sources changed since the last build runs them through tsx's loader instead, so an
// edit takes effect without a build (slower to start, and a loader thread at run time).
import { existsSync, readdirSync, statSync } from 'node:fs';

const root = new URL('..', import.meta.url);
const compiled = new URL('dist/cli/main.js', root);
const sources = new URL('src/', root);
const entry = new URL('src/cli/main.ts', root); // only a checkout has it (the package ships dist/)

/** The newest modification time of a file under `dir`. */
function newest(dir) {
  let t = 0;
  for (const e of readdirSync(dir, { withFileTypes: true, recursive: true })) {
    if (e.isFile()) t = Math.max(t, statSync(`${e.parentPath ?? e.path}/${e.name}`).mtimeMs);
  }
  return t;
}

if (existsSync(entry) && (!existsSync(compiled) || newest(sources) > statSync(compiled).mtimeMs)) {
  const { register } = await import('tsx/esm/api');
  register();
  await import(entry.href);
} else {
  await import(compiled.href);
}
