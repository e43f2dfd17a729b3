#!/usr/bin/env node
// An installed baton runs its compiled JavaScript (dist/); a checkout runs its TypeScript
// sources through tsx's loader, so an edit takes effect without a build.
import { existsSync } from 'node:fs';

const sources = new URL('../src/cli/main.ts', import.meta.url);
if (existsSync(sources)) {
  const { register } = await import('tsx/esm/api');
  register();
  await import(sources.href);
} else {
  await import(new URL('../dist/cli/main.js', import.meta.url).href);
}
