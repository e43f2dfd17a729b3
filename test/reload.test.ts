// Editing a function while the gateway serves: `reload()` (what `baton up --watch` calls)
// rebuilds, restarts only the functions whose bundle changed, loses no request meanwhile, and
// keeps the running code when the edit does not build. `baton up --watch` end to end too.
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Gateway } from '../src/gateway/index.ts';
import { dataplaneUnavailable } from './helpers/env.ts';
import { poolSettled, startGateway, waitFor } from './helpers/gateway.ts';

const BIN = new URL('../bin/baton.js', import.meta.url).pathname;
const version = (v: string) => `import { defineFunction } from 'baton/sdk';\nexport default defineFunction(() => ({ version: '${v}', pid: process.pid }));\n`;

describe.skipIf(dataplaneUnavailable)('reloading changed functions', () => {
  let gw: Gateway;
  let dir: string;
  const get = async (fn: string) => (await (await fetch(`${gw.url}/${fn}`)).json()) as { version: string; pid: number };

  beforeAll(async () => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'baton-reload-'));
    writeFileSync(path.join(dir, 'edited.ts'), version('v1'));
    writeFileSync(path.join(dir, 'untouched.ts'), version('u1'));
    gw = await startGateway(
      {
        functions: { edited: { module: 'edited.ts', instances: 2, maxInstances: 2 }, untouched: { module: 'untouched.ts' } },
        routes: [
          { method: 'GET', path: '/edited', chain: ['edited'] },
          { method: 'GET', path: '/untouched', chain: ['untouched'] },
        ],
      },
      {},
      dir,
    );
  });
  afterAll(() => gw?.stop());

  it('restarts only the edited function, answering every request meanwhile', async () => {
    const untouched = await get('untouched');
    expect((await get('edited')).version).toBe('v1');
    writeFileSync(path.join(dir, 'edited.ts'), version('v2'));
    let loading = true;
    const answers: number[] = [];
    const load = (async () => {
      while (loading) answers.push((await fetch(`${gw.url}/edited`)).status);
    })();
    expect(await gw.reload()).toEqual(['edited']);
    loading = false;
    await load;
    expect(answers.length).toBeGreaterThan(0);
    expect(answers.filter((s) => s !== 200)).toEqual([]);
    expect((await get('edited')).version).toBe('v2');
    expect(await get('untouched')).toEqual(untouched); // same process
    expect(gw.instances.all.filter((i) => i.wanted).length).toBe(3);
    await poolSettled(gw);
  });

  it('an edit that does not build is reported and the running code keeps serving', async () => {
    writeFileSync(path.join(dir, 'edited.ts'), 'export default defineFunction(() => {{');
    await expect(gw.reload()).rejects.toMatchObject({ code: 'BATON_ERR_BUILD', message: expect.stringMatching(/edited\.ts:\d+:\d+/) });
    expect((await get('edited')).version).toBe('v2');
    expect(await gw.reload().catch(() => 'still broken')).toBe('still broken');
    writeFileSync(path.join(dir, 'edited.ts'), version('v3'));
    expect(await gw.reload()).toEqual(['edited']);
    expect((await get('edited')).version).toBe('v3');
  });

  it('baton up --watch picks up a saved file by itself', async () => {
    const wdir = mkdtempSync(path.join(os.tmpdir(), 'baton-watch-'));
    writeFileSync(path.join(wdir, 'f.ts'), version('w1'));
    writeFileSync(path.join(wdir, 'chain.yaml'), "gateway: { port: 0, admin: { port: 0 } }\nfunctions: { f: { module: ./f.ts } }\nroutes: [{ method: GET, path: /f, chain: [f] }]\n");
    const child = spawn(process.execPath, [BIN, 'up', path.join(wdir, 'chain.yaml'), '--watch'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout!.on('data', (c) => (out += c));
    child.stderr!.on('data', (c) => (out += c));
    try {
      await waitFor('the gateway to serve', () => /serving 1 route/.test(out), 20_000);
      const url = /serving \d+ route\(s\) on (http:\S+)/.exec(out)![1]!;
      const version = async () => ((await (await fetch(`${url}/f`)).json()) as { version: string }).version;
      expect(await version()).toBe('w1');
      writeFileSync(path.join(wdir, 'f.ts'), `import { defineFunction } from 'baton/sdk';\nexport default defineFunction(() => ({ version: 'w2' }));\n`);
      await waitFor('the restart', () => /restarted the changed functions/.test(out), 20_000);
      expect(await version()).toBe('w2');
    } finally {
      child.kill('SIGINT');
    }
    expect((await once(child, 'exit'))[0]).toBe(0);
  });
});
