// Failures to load the data plane are typed errors that say what to do.
import { execFileSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { loadProgramAhead } from '../src/dataplane/program.ts';
import { Sockmap } from '../src/dataplane/sockmap.ts';
import { native } from '../src/native/index.ts';
import { waitFor } from './helpers/gateway.ts';
import { batonMapIds } from './helpers/system.ts';
import { dataplaneUnavailable } from './helpers/env.ts';

const PROBE = new URL('./fixtures/probe-dataplane.ts', import.meta.url).pathname;

function probe(options: { uid?: number; env?: Record<string, string> } = {}): { ok?: boolean; code?: string; message?: string } {
  const out = execFileSync(process.execPath, ['--import', 'tsx', PROBE], {
    encoding: 'utf8',
    cwd: new URL('..', import.meta.url).pathname,
    env: { ...process.env, ...options.env },
    ...(options.uid !== undefined ? { uid: options.uid, gid: options.uid } : {}),
  });
  return JSON.parse(out.trim().split('\n').pop()!);
}

describe('native addon errors', () => {
  it('a missing build says how to build it', () => {
    const r = probe({ env: { BATON_ADDON: '/nonexistent/baton.node' } });
    expect(r.code).toBe('BATON_ERR_NOT_BUILT');
    expect(r.message).toMatch(/apt-get install -y clang libbpf-dev bpftool pkg-config, then npm install/);
  });

  it.runIf(process.getuid?.() === 0)('an unprivileged process is told it needs CAP_BPF, CAP_PERFMON and CAP_NET_ADMIN', () => {
    const r = probe({ uid: 65534 });
    expect(r.code).toBe('BATON_ERR_NO_PRIVILEGE');
    expect(r.message).toMatch(/run as root, or grant CAP_BPF, CAP_PERFMON and CAP_NET_ADMIN/);
  });
});

describe.skipIf(dataplaneUnavailable)('native errors after close', () => {
  it('a closed data plane answers with a typed error, not a crash', () => {
    const map = new Sockmap();
    map.destroy();
    expect(() => map.counters(1)).toThrow(expect.objectContaining({ code: 'BATON_ERR_CLOSED' }));
  });
});

describe.skipIf(dataplaneUnavailable)('the program loaded ahead (off the main thread)', () => {
  // the kernel frees a map some time after its last fd closes: wait for it
  const gone = (ids: number[]) => waitFor('the program\'s maps to be freed', () => batonMapIds().every((id) => ids.includes(id)));

  it('serves as a data plane once loaded; closed, it leaves no map behind', async () => {
    const before = batonMapIds();
    const program = await loadProgramAhead().loaded;
    expect(program).toBeDefined();
    expect(batonMapIds().filter((id) => !before.includes(id))).toHaveLength(1);
    const map = new Sockmap({ loaded: program });
    expect(map.counters(1)).toMatchObject({ redirected: 0, refused: 0 });
    map.destroy();
    await gone(before);
  });

  it('discarded while it loads, it is destroyed once loaded: nothing stays behind', async () => {
    const before = batonMapIds();
    const dp = native((a) => new a.Dataplane({ deferred: true }));
    const loading = dp.load();
    dp.close(); // before the kernel has finished verifying it
    await expect(loading).rejects.toMatchObject({ code: 'BATON_ERR_CLOSED' });
    await gone(before);
    expect(() => dp.load()).toThrow(/once/);
  });

  it('a deferred data plane not loaded yet answers with a typed error', () => {
    const dp = native((a) => new a.Dataplane({ deferred: true }));
    expect(() => dp.counters(1)).toThrow(expect.objectContaining({ code: 'BATON_ERR_CLOSED' }));
    dp.close();
  });
});

describe('event loop idle time', () => {
  // a child process, so this test's own loop keeps measuring: it stops measuring once (true,
  // then false), and from then on its idle time stands still while it waits
  it('stopLoopIdleTime() turns off the loop\'s idle-time measuring, once', () => {
    const script = `
      import { native } from './src/native/index.ts';
      import { performance } from 'node:perf_hooks';
      const wait = () => new Promise((r) => setTimeout(r, 30));
      const before = performance.eventLoopUtilization().idle;
      await wait();
      const measuring = performance.eventLoopUtilization().idle > before;
      const first = native((a) => a.stopLoopIdleTime());
      const second = native((a) => a.stopLoopIdleTime());
      const stopped = performance.eventLoopUtilization().idle;
      await wait();
      console.log(JSON.stringify({ measuring, first, second, still: performance.eventLoopUtilization().idle === stopped }));`;
    const out = execFileSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], {
      encoding: 'utf8', cwd: new URL('..', import.meta.url).pathname,
    });
    expect(JSON.parse(out.trim().split('\n').pop()!)).toEqual({ measuring: true, first: true, second: false, still: true });
  });
});
