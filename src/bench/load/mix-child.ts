// Open-loop load of several request kinds at once (the overload bench's classes): Poisson
// arrivals at `rate` over the whole mix, each request's kind drawn by weight, over a pool of
// keep-alive connections, never waiting for answers. Per kind: what was sent, each status,
// how many answers came back within the kind's SLO, and the latency percentiles of the
// successful answers (HDR histogram, µs).
import { createHistogram } from 'node:perf_hooks';
import { Pool } from 'undici';

export interface MixJob {
  origin: string;
  connections: number;
  /** Seconds. */
  duration: number;
  rate: number;
  kinds: { path: string; weight: number; sloMs: number }[];
  seed: number;
}

export interface KindResult {
  sent: number;
  statuses: Record<string, number>;
  /** Successful answers within the kind's SLO. */
  withinSlo: number;
  p50: number;
  p99: number;
  p999: number;
}

process.send!({ ready: true });
process.on('message', async (job: MixJob) => {
  const pool = new Pool(job.origin, { connections: job.connections, keepAliveTimeout: 60_000, headersTimeout: 0, bodyTimeout: 0 });
  let s = job.seed >>> 0;
  const rand = () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32);
  const total = job.kinds.reduce((a, k) => a + k.weight, 0);
  const results = job.kinds.map(() => ({ sent: 0, statuses: {} as Record<string, number>, withinSlo: 0, latency: createHistogram() }));
  const body = Buffer.from('x');
  const inflight = new Set<Promise<void>>();
  const t0 = performance.now();
  for (let due = t0; due < t0 + job.duration * 1000; due += (-Math.log(1 - rand()) * 1000) / job.rate) {
    while (performance.now() < due) await new Promise((r) => setTimeout(r, due - performance.now()));
    let x = rand() * total;
    const k = Math.max(0, job.kinds.findIndex((kind) => (x -= kind.weight) < 0));
    const r = results[k]!;
    r.sent++;
    const sent = performance.now();
    const p = pool
      .request({ path: job.kinds[k]!.path, method: 'POST', body })
      .then(async (res) => {
        await res.body.arrayBuffer();
        const ms = performance.now() - sent;
        r.statuses[res.statusCode] = (r.statuses[res.statusCode] ?? 0) + 1;
        if (res.statusCode < 300) {
          r.latency.record(Math.max(1, Math.round(ms * 1000)));
          if (ms <= job.kinds[k]!.sloMs) r.withinSlo++;
        }
      })
      .catch(() => {
        r.statuses.error = (r.statuses.error ?? 0) + 1;
      });
    inflight.add(p);
    void p.finally(() => inflight.delete(p));
  }
  await Promise.all(inflight);
  await pool.close();
  const at = (h: ReturnType<typeof createHistogram>, q: number) => (h.count ? h.percentile(q) / 1000 : 0);
  process.send!({
    kinds: results.map(({ latency, ...r }): KindResult => ({ ...r, p50: at(latency, 50), p99: at(latency, 99), p999: at(latency, 99.9) })),
  });
});
