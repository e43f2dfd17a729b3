// HTTP load from autocannon (a maintained load generator with HDR histograms), run in a
// child process.
import { fileURLToPath } from 'node:url';
import { forkReady, nextMessage, stop } from '../procs.ts';

const CHILD = fileURLToPath(new URL('./autocannon-child.ts', import.meta.url));

export interface LoadResult {
  rps: number;
  total: number;
  bytesPerSec: number;
  latencyMs: { p50: number; p90: number; p99: number; max: number };
  errors: number;
  non2xx: number;
}

export async function httpLoad(job: {
  url: string;
  connections: number;
  duration: number;
  overallRate?: number;
  bodyBytes?: number;
  method?: 'GET' | 'POST';
}): Promise<LoadResult> {
  const child = await forkReady(CHILD, []);
  try {
    child.send(job);
    return await nextMessage<LoadResult>(child, (m) => 'rps' in (m as object));
  } finally {
    await stop(child);
  }
}
