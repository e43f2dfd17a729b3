// The admin listener's probes and `baton status` / `baton top` against a real gateway: health,
// readiness (every function has a ready instance), and the CLI's view of the same state.
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildAdmin } from '../src/gateway/admin.ts';
import type { Gateway } from '../src/gateway/index.ts';
import { dataplaneUnavailable, suiteDataplane } from './helpers/env.ts';
import { startGateway, waitFor } from './helpers/gateway.ts';

const BIN = new URL('../bin/baton.js', import.meta.url).pathname;
// asynchronously: the gateway it asks runs in this process
const baton = async (...args: string[]) => (await promisify(execFile)(process.execPath, [BIN, ...args], { encoding: 'utf8' })).stdout;

describe.skipIf(dataplaneUnavailable)('admin probes and baton status', () => {
  let gw: Gateway;
  beforeAll(async () => {
    gw = await startGateway({
      functions: { echo: { module: 'echo.ts', instances: 2 }, faulty: { module: 'faulty.ts' } },
      routes: [{ method: 'POST', path: '/e', chain: ['echo'] }, { method: 'POST', path: '/f', chain: ['faulty'] }],
    });
  });
  afterAll(() => gw?.stop());

  it('healthz and readyz answer 200 while every function has a ready instance', async () => {
    expect(await (await fetch(`${gw.adminUrl}/healthz`)).json()).toEqual({ status: 'ok' });
    const ready = await fetch(`${gw.adminUrl}/readyz`);
    expect([ready.status, await ready.json()]).toEqual([200, { status: 'ready' }]);
  });

  it('a function with no ready instance makes the gateway not ready until it is back', async () => {
    const faulty = gw.instances.all.find((i) => gw.deployment.functions[i.fnId]!.name === 'faulty')!;
    const seen = new Promise<string[]>((resolve) => gw.instances.once('exit', () => resolve(gw.notReady())));
    gw.instances.kill(faulty, 'test');
    expect(await seen).toEqual(['faulty']); // at its exit, before the replacement is scheduled
    await waitFor('the replacement', () => faulty.state === 'ready');
    expect(gw.notReady()).toEqual([]);
  });

  it('/metrics: Prometheus text with per-hop and per-route histograms, answers by status, instances, slots, starts', async () => {
    for (let i = 0; i < 3; i++) await fetch(`${gw.url}/e`, { method: 'POST', body: 'x' });
    await fetch(`${gw.url}/f?throw=1`, { method: 'POST', body: 'x' });
    const res = await fetch(`${gw.adminUrl}/metrics`);
    expect(res.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
    const text = await res.text();
    const value = (series: string) => Number(new RegExp(`^${series.replace(/[{}()[\]]/g, '\\$&')} (\\S+)$`, 'm').exec(text)?.[1]);
    expect(value('baton_responses_total{route="POST /e",status="200"}')).toBe(3);
    expect(value('baton_responses_total{route="POST /f",status="500"}')).toBe(1);
    expect(value('baton_hop_wait_seconds_count{function="echo"}')).toBe(3);
    expect(value('baton_hop_run_seconds_count{function="faulty"}')).toBe(1);
    expect(value('baton_request_duration_seconds_count{route="POST /e"}')).toBe(3);
    expect(value('baton_instances{function="echo",state="ready"}')).toBe(2);
    expect(value('baton_pool_slots{domain="POST /e",state="free"}')).toBe(64);
    expect(value('baton_instance_start_seconds_count{function="faulty"}')).toBe(2); // started, then replaced
    expect(value('baton_instance_restarts{function="faulty"}')).toBe(1);
    expect(value('baton_scaler_wanted_instances{function="echo"}')).toBe(2);
    expect(value('baton_scaler_decisions_total{kind="from_zero"}')).toBe(0);
    expect(value('baton_kernel_refusals{function="echo"}')).toBe(0);
    expect(value('baton_dead_letters_total')).toBe(0);
    expect(text).toMatch(/^baton_gateway_process_resident_memory_bytes \d+/m);
    // every sample line is `name{labels} number`
    // prom-client writes NaN (a gauge with no sample yet) as "Nan"; Prometheus reads floats case-insensitively
    for (const line of text.split('\n').filter((l) => l && !l.startsWith('#'))) expect(line).toMatch(/^[a-zA-Z_:][a-zA-Z0-9_:]*(\{[^}]*\})? ([-+\d.eE]+|NaN|Nan|[+-]Inf)$/);
  });

  it('baton status prints each function with its ready instances; --json is the admin JSON; top redraws', async () => {
    for (let i = 0; i < 3; i++) await fetch(`${gw.url}/e`, { method: 'POST', body: 'x' });
    const text = await baton('status', '--admin', gw.adminUrl);
    const plane = suiteDataplane === 'broker' ? ' \\(user-space broker data plane\\)' : '';
    expect(text).toMatch(new RegExp(`^baton at http://127\\.0\\.0\\.1:\\d+${plane}: 0 in flight; pool 0/128 slots used`)); // two domains of 64
    expect(text).toMatch(/│ echo +│ POST \/e +│ late +│ 2\/2 +│ 2 +│/); // ready, and what the scaler wants
    expect(text).toMatch(/│ faulty +│ POST \/f +│ late +│ 1\/1 +│ 1 +│ 1 +│/); // its restart above
    expect(text).toMatch(/^scaler static: 0 up, 0 down, 0 from zero$/m);
    expect(text).toMatch(/│ normal +│ 1000 ms +│ \d+ +│ 0 +│ 0 +│ 0 +│ \d+ +│ 100\.0% +│/); // the class the requests ran at
    const json = JSON.parse(await baton('status', '--admin', gw.adminUrl, '--json')) as { functions: { name: string }[] };
    expect(json.functions.map((f) => f.name)).toEqual(['echo', 'faulty']);
    const top = await baton('top', '--admin', gw.adminUrl, '--count', '2', '--interval', '50');
    expect(top.match(/^baton at /gm)).toHaveLength(2);
    expect(top).toMatch(/\d+ req\/s/); // the second reading has a rate
  });
});

describe('admin probes (HTTP mapping)', () => {
  it('readyz is 503 naming the functions that cannot serve, and both are 503 while stopping', async () => {
    const backend = { log: pino({ level: 'silent' }), isFunctionUid: () => false, status: () => ({}), scale: async () => {}, serving: true, notReady: () => ['work'],
      metrics: { text: async () => '', registry: { contentType: 'text/plain' } } };
    const app = buildAdmin(backend);
    const ready = await app.inject({ method: 'GET', url: '/readyz' });
    expect([ready.statusCode, ready.json()]).toEqual([503, { status: 'not ready', waiting: ['work'] }]);
    backend.serving = false;
    expect((await app.inject({ method: 'GET', url: '/healthz' })).statusCode).toBe(503);
    expect((await app.inject({ method: 'GET', url: '/readyz' })).statusCode).toBe(503);
    await app.close();
  });
});
