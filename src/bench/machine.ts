// The machine a run measured, and the node's CPU and memory sampled while it ran.
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import os from 'node:os';

export function machineInfo() {
  return {
    cpus: os.cpus().length,
    cpuModel: os.cpus()[0]?.model ?? 'unknown',
    kernel: os.release(),
    memGiB: Math.round(os.totalmem() / 2 ** 30),
    load: os.loadavg(),
    node: process.version,
  };
}

export function gitRevision(): string {
  try {
    return execFileSync('git', ['rev-parse', '--short', 'HEAD'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
  } catch {
    return 'unknown';
  }
}

function cpuTimes(): { busy: number; total: number } {
  const line = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.split(/\s+/).slice(1).map(Number);
  const total = line.reduce((a, b) => a + b, 0);
  const idle = line[3]! + (line[4] ?? 0); // idle + iowait
  return { busy: total - idle, total };
}

/** Samples node CPU busy % and memory every `ms` until stopped. */
export function sampleNode(ms: number, onSample: (s: { t: number; cpuBusy: number; memUsedMiB: number; load1: number }) => void): () => void {
  const t0 = performance.now();
  let last = cpuTimes();
  const timer = setInterval(() => {
    const now = cpuTimes();
    const cpuBusy = now.total > last.total ? (100 * (now.busy - last.busy)) / (now.total - last.total) : 0;
    last = now;
    onSample({
      t: (performance.now() - t0) / 1000,
      cpuBusy,
      memUsedMiB: (os.totalmem() - os.freemem()) / 2 ** 20,
      load1: os.loadavg()[0]!,
    });
  }, ms);
  timer.unref();
  return () => clearInterval(timer);
}
