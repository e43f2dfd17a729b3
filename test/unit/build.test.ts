// The function build step: bundles a function wherever it lives, with baton/sdk resolved and
// shared with the runtime, into a directory workers can read and not write; a module that
// does not build is named with file and line.
import { existsSync, mkdtempSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { buildFunctions } from '../../src/build/functions.ts';

const fn = (name: string, module: string) => ({ name, module }) as Parameters<typeof buildFunctions>[0]['functions'][number];

describe('function build', () => {
  it('bundles a function outside this package, with baton/sdk resolved, into a read-only directory', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'baton-fn-')); // no node_modules anywhere above it
    writeFileSync(path.join(dir, 'upper.ts'), "import { defineFunction } from 'baton/sdk';\nexport default defineFunction((req) => req.text().toUpperCase());\n");
    const build = await buildFunctions({ functions: [fn('upper', path.join(dir, 'upper.ts'))] });
    try {
      const bundle = build.modules.get('upper')!;
      expect(statSync(build.dir).mode & 0o777).toBe(0o755);
      expect(statSync(bundle).mode & 0o777).toBe(0o644);
      expect(statSync(build.worker).mode & 0o777).toBe(0o644);
      const mod = (await import(bundle)) as { default: { handler: (req: { text(): string }) => string } };
      expect(mod.default.handler({ text: () => 'abc' })).toBe('ABC');
    } finally {
      build.remove();
    }
    expect(existsSync(build.dir)).toBe(false);
  });

  it('names every module that does not build, with file and line', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'baton-fn-'));
    writeFileSync(path.join(dir, 'broken.ts'), "import { defineFunction } from 'baton/sdk';\nexport default defineFunction(() => {;\n");
    writeFileSync(path.join(dir, 'missing.ts'), "import x from 'no-such-package';\nexport default x;\n");
    const err = await buildFunctions({ functions: [fn('broken', path.join(dir, 'broken.ts')), fn('missing', path.join(dir, 'missing.ts'))] }).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'BATON_ERR_BUILD' });
    expect((err as Error).message).toMatch(/broken\.ts:\d+:\d+: /);
    expect((err as Error).message).toMatch(/missing\.ts:1:\d+: Could not resolve "no-such-package"/);
  });

  it('knows which functions compare strings by locale (their processes warm ICU up), through their imports too', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'baton-fn-'));
    writeFileSync(path.join(dir, 'sorting.ts'), "export const byName = (a: string, b: string) => a.localeCompare(b);\n");
    writeFileSync(path.join(dir, 'names.ts'), "import { defineFunction } from 'baton/sdk';\nimport { byName } from './sorting.ts';\nexport default defineFunction((req) => req.text().split(' ').sort(byName).join(' '));\n");
    writeFileSync(path.join(dir, 'upper.ts'), "import { defineFunction } from 'baton/sdk';\nexport default defineFunction((req) => req.text().toUpperCase());\n");
    const build = await buildFunctions({ functions: [fn('names', path.join(dir, 'names.ts')), fn('upper', path.join(dir, 'upper.ts'))] });
    try {
      expect([...build.collates]).toEqual(['names']);
    } finally {
      build.remove();
    }
  });
});
