// deploy/baton.service holds root to a capability set: run `baton up` with exactly that
// bounding set (setpriv, as systemd would apply it) and check it serves with every protection
// (eBPF, per-function uids, cgroups) and stops cleanly; and that each capability it keeps is
// needed (without it, the start fails or a protection is lost — eBPF's: the broker serves).
import { execFileSync, spawn } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { cgroupsUnavailable, dataplaneUnavailable } from './helpers/env.ts';
import { FIXTURES, waitFor } from './helpers/gateway.ts';
import { alive } from './helpers/system.ts';

const BIN = new URL('../bin/baton.js', import.meta.url).pathname;
const UNIT = readFileSync(new URL('../deploy/baton.service', import.meta.url), 'utf8');
const CAPS = /^CapabilityBoundingSet=(.*)$/m.exec(UNIT)![1]!.split(/\s+/).map((c) => c.replace(/^CAP_/, '').toLowerCase());
const setpriv = existsSync('/usr/bin/setpriv') ? '/usr/bin/setpriv' : undefined;
const why = process.getuid?.() !== 0 ? 'needs root' : !setpriv ? 'needs setpriv (util-linux)' : dataplaneUnavailable ?? cgroupsUnavailable;

/** `baton up` under a bounding set; resolves with its output once it serves or exits. */
async function upWith(caps: string[]) {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'baton-deploy-'));
  const chain = path.join(dir, 'chain.yaml');
  writeFileSync(chain, `gateway: { port: 0, admin: { port: 0 } }\nfunctions: { echo: { module: ${path.join(FIXTURES, 'faulty.ts')} } }\nroutes: [{ method: POST, path: /e, chain: [echo] }]\n`);
  const child = spawn(setpriv!, ['--bounding-set', ['-all', ...caps.map((c) => `+${c}`)].join(','), process.execPath, BIN, 'up', chain], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, BATON_DATAPLANE: undefined }, // the unit's deployment: auto, as in the chain file
  });
  let out = '';
  child.stdout!.on('data', (c) => (out += c));
  child.stderr!.on('data', (c) => (out += c));
  const exited = once(child, 'exit');
  await Promise.race([waitFor('the gateway to serve', () => /baton: serving/.test(out), 20_000), exited]);
  return { child, output: () => out, exited };
}

describe.skipIf(why)('deploy/baton.service capabilities', () => {
  it(`serves with exactly ${CAPS.join(', ')}: eBPF, per-function uids, cgroups; stops cleanly`, async () => {
    expect(CAPS).toEqual(['bpf', 'perfmon', 'net_admin', 'setuid', 'setgid', 'kill', 'dac_override']);
    const { child, output, exited } = await upWith(CAPS);
    const [, url, admin] = /serving .* on (http:\S+) .*; admin on (http:\S+)/.exec(output())!;
    const res = await fetch(`${url}/e`, { method: 'POST', body: 'x' });
    const body = (await res.json()) as { pid: number; uid: number };
    expect(body.uid).toBeGreaterThanOrEqual(200000); // its own uid
    expect(output()).not.toMatch(/not enforced/); // cgroups made
    expect(execFileSync('grep', ['-c', 'baton-', '/proc/' + body.pid + '/cgroup'], { encoding: 'utf8' }).trim()).not.toBe('0');
    expect((await fetch(`${admin}/readyz`)).status).toBe(200);
    child.kill('SIGTERM');
    expect((await exited)[0]).toBe(0);
    expect(alive(body.pid)).toBe(false);
  });

  it.each([
    // no eBPF: it serves on the user-space broker, and says so
    ['bpf', /BATON_ERR_NO_PRIVILEGE.*falling back to the user-space broker/],
    ['perfmon', /BATON_ERR_NO_PRIVILEGE.*falling back to the user-space broker/],
    ['net_admin', /BATON_ERR_NO_PRIVILEGE.*falling back to the user-space broker/],
    ['setuid', /BATON_ERR_START_FAILED|EPERM/],
    ['setgid', /BATON_ERR_START_FAILED|EPERM/],
    ['dac_override', /limits are not enforced: cannot create cgroups: EACCES/],
  ])('without %s it does not start, or says what it lost', async (cap, failure) => {
    const { child, output, exited } = await upWith(CAPS.filter((c) => c !== cap));
    if (child.exitCode === null) {
      child.kill('SIGTERM');
      await exited;
    }
    expect(output()).toMatch(failure);
  });
});
