// `baton up` as a user runs it: a real process, real signals. Ctrl-C must leave nothing
// behind: no worker process, no BPF map, no listening port.
import { execFileSync, spawn } from 'node:child_process';
import { once } from 'node:events';
import { copyFileSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { dataplaneUnavailable } from './helpers/env.ts';
import { EXAMPLES, waitFor } from './helpers/gateway.ts';

const BIN = new URL('../bin/baton.js', import.meta.url).pathname;

function batonMapIds(): number[] {
  const maps = JSON.parse(execFileSync('bpftool', ['-j', 'map', 'show'], { encoding: 'utf8' })) as { id: number; name?: string }[];
  return maps.filter((m) => m.name === 'baton_socks').map((m) => m.id);
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

describe.skipIf(dataplaneUnavailable)('baton up', () => {
  it('serves the example chain and stops cleanly on SIGINT', async () => {
    // the example, on a free port
    const dir = mkdtempSync(path.join(os.tmpdir(), 'baton-cli-'));
    for (const f of ['parse.ts', 'transform.ts', 'render.ts']) copyFileSync(path.join(EXAMPLES, 'text-pipeline', f), path.join(dir, f));
    const chain = readFileSync(path.join(EXAMPLES, 'text-pipeline/chain.yaml'), 'utf8').replace('port: 8080', 'port: 0');
    writeFileSync(path.join(dir, 'chain.yaml'), chain);
    execFileSync('chmod', ['-R', 'a+rX', dir]); // workers run as nobody
    // the examples import 'baton/sdk': resolve it from this checkout
    execFileSync('mkdir', ['-p', path.join(dir, 'node_modules')]);
    execFileSync('ln', ['-s', path.resolve(BIN, '../..'), path.join(dir, 'node_modules/baton')]);

    const mapsBefore = new Set(batonMapIds());
    const child = spawn(process.execPath, [BIN, 'up', path.join(dir, 'chain.yaml')], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (c) => (out += c));
    child.stderr.on('data', (c) => (out += c));
    await waitFor('gateway to listen', () => /baton: serving 1 route\(s\) on http:/.test(out), 20_000);
    const url = /baton: serving .* on (http:\S+)/.exec(out)![1]!;

    const res = await fetch(`${url}/stats`, { method: 'POST', body: 'a b a' });
    expect(await res.json()).toMatchObject({ words: 3, distinct: 2 });
    const status = (await (await fetch(`${url}/_baton/status`)).json()) as { functions: { instances: { pid: number }[] }[] };
    const pids = status.functions.flatMap((f) => f.instances.map((i) => i.pid));
    expect(pids).toHaveLength(4);
    const ours = batonMapIds().filter((id) => !mapsBefore.has(id));
    expect(ours).toHaveLength(1);

    child.kill('SIGINT');
    const [code] = await once(child, 'exit');
    expect(code).toBe(0);
    expect(pids.filter(alive)).toEqual([]);
    await waitFor('the sockmap to be freed', () => !batonMapIds().includes(ours[0]!));
    await expect(fetch(`${url}/stats`, { method: 'POST', body: 'x' })).rejects.toThrow();
  });

  it('explains a bad chain file and exits 1', () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'baton-cli-'));
    writeFileSync(path.join(dir, 'chain.yaml'), 'functions: {}\nroutes:\n  - { method: GET, path: /x, chain: [ghost] }\n');
    let err: { status: number; stderr: string } | undefined;
    try {
      execFileSync(process.execPath, [BIN, 'up', path.join(dir, 'chain.yaml')], { stdio: 'pipe', encoding: 'utf8' });
    } catch (e) {
      err = e as { status: number; stderr: string };
    }
    expect(err?.status).toBe(1);
    expect(err?.stderr).toMatch(/BATON_ERR_CHAIN_FILE[\s\S]*routes\.0\.chain\.0: unknown function 'ghost'/);
  });
});
