// Open-loop load at a fixed rate: one request every 1/rate seconds over a pool of
// keep-alive connections, on a schedule that never waits for answers (so a slow server
// cannot slow the client down and hide its queue: no coordinated omission). A request
// never leaves before it is due; timers may send it a little late, so its latency runs
// from when it actually went out. autocannon's rate mode sends each connection's quota in
// a burst at the start of every second, which measures burst handling instead.
// Percentiles from Node's HDR histogram, microsecond resolution. With `timing`, each baton
// answer's Server-Timing header gives the time of every hop (see src/gateway/timing.ts).
import { createHistogram } from 'node:perf_hooks';
import { Pool } from 'undici';
import { hopWaits, type HopWaits, type LoadJob } from './autocannon.ts';

process.send!({ ready: true });
process.on('message', async (job: LoadJob & { overallRate: number }) => {
  const url = new URL(job.url);
  const pool = new Pool(url.origin, { connections: job.connections, keepAliveTimeout: 60_000 });
  const body = job.bodyText !== undefined ? Buffer.from(job.bodyText) : Buffer.alloc(job.bodyBytes ?? 0, 'x');
  const latency = createHistogram();
  let errors = 0;
  let non2xx = 0;
  let total = 0;
  const hops: HopWaits = { first: [], inside: [], back: [] };
  const intervalMs = 1000 / job.overallRate;
  const count = Math.round(job.overallRate * job.duration);
  const headers: Record<string, string> = { 'content-type': 'application/octet-stream' };
  if (job.timing) headers['x-baton-timing'] = '1';
  const t0 = performance.now();
  const inflight = new Set<Promise<void>>();
  for (let i = 0; i < count; i++) {
    const due = t0 + i * intervalMs;
    while (performance.now() < due) await new Promise((r) => setTimeout(r, due - performance.now()));
    const sent = performance.now();
    const p = pool
      .request({ path: url.pathname + url.search, method: job.method ?? 'POST', body, headers })
      .then(async (res) => {
        await res.body.arrayBuffer();
        total++;
        if (res.statusCode >= 300) non2xx++;
        else latency.record(Math.max(1, Math.round((performance.now() - sent) * 1000)));
        const timing = res.headers['server-timing'];
        if (job.timing && typeof timing === 'string') hopWaits(timing, hops);
      })
      .catch(() => {
        errors++;
      });
    inflight.add(p);
    void p.finally(() => inflight.delete(p));
  }
  await Promise.all(inflight);
  const elapsed = (performance.now() - t0) / 1000;
  await pool.close();
  const at = (q: number) => (latency.count ? latency.percentile(q) / 1000 : 0);
  process.send!({
    rps: total / elapsed,
    total,
    bytesPerSec: 0,
    latencyMs: { p50: at(50), p90: at(90), p99: at(99), max: latency.count ? latency.max / 1000 : 0 },
    errors,
    non2xx,
    ...(job.timing ? { hops } : {}),
  });
});
