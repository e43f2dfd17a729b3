// Runs autocannon in its own process (so the load generator never shares an event loop
// with what it measures) and reports its result over IPC. autocannon's own histogram keeps
// whole milliseconds; each response's exact duration also goes into Node's HDR histogram
// at microsecond resolution, and the percentiles come from there.
import { createHistogram } from 'node:perf_hooks';
import autocannon from 'autocannon';
import type { LoadJob } from './autocannon.ts';

process.send!({ ready: true });
process.on('message', async (job: LoadJob) => {
  const body = job.bodyText !== undefined ? Buffer.from(job.bodyText) : job.bodyBytes ? Buffer.alloc(job.bodyBytes, 'x') : undefined;
  const latency = createHistogram();
  const options = {
    url: job.url,
    connections: job.connections,
    duration: job.duration,
    overallRate: job.overallRate,
    method: job.method ?? 'POST',
    body,
    headers: { 'content-type': 'application/octet-stream' },
  } as const;
  const result = await new Promise<autocannon.Result>((resolve, reject) => {
    const instance = autocannon(options, (err, res) => (err ? reject(err) : resolve(res)));
    instance.on('response', (_client, status, _bytes, ms) => {
      if (status < 300) latency.record(Math.max(1, Math.round(ms * 1000)));
    });
  });
  const at = (p: number) => (latency.count ? latency.percentile(p) / 1000 : 0);
  process.send!({
    rps: result.requests.average,
    total: result.requests.total,
    bytesPerSec: result.throughput.average,
    latencyMs: { p50: at(50), p90: at(90), p99: at(99), max: latency.count ? latency.max / 1000 : 0 },
    errors: result.errors + result.timeouts,
    non2xx: result.non2xx,
  });
});
