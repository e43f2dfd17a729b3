// `baton status` and `baton top`: a running gateway's state from its admin listener, as tables
// (or JSON). `top` redraws every interval and adds request rates from the change between two
// readings.
import Table from 'cli-table3';
import { batonError } from '../errors.ts';

interface Summary {
  count: number;
  p50: number;
  p99: number;
}

interface Status {
  dataplane?: string;
  pool: { slots: number; free: number; quarantined: number };
  inFlight: number;
  stats: { badDescriptors: number; deadLetters: number; binding: { queued: number; rejectedFull: number } };
  timing: { responseTime: Summary; jct: Summary; functions: Record<string, { wait: Summary; run: Summary }> };
  functions: {
    name: string;
    domain: string;
    binding: string;
    queued: number;
    idleTokens: number;
    instances: { state: string; restarts: number; gaveUp: boolean; coldStartMs: number | null }[];
  }[];
  scaler?: { policy: string; decisions: { up: number; down: number; fromZero: number }; functions: { name: string; want: number; reason: string }[] };
  admission?: {
    enabled: boolean;
    classes: Record<string, { admitted: number; downgraded: number; rejected: number; shed: number; answered: number; metSlo: number; slo: number; p50: number | null; p99: number | null }>;
    probabilities: { route: string; class: string; p: number }[];
  };
}

export async function fetchStatus(admin: string): Promise<Status> {
  let res: Response;
  try {
    res = await fetch(`${admin}/status`, { signal: AbortSignal.timeout(5000) });
  } catch (err) {
    throw batonError('BATON_ERR_NOT_RUNNING', `nothing answers at ${admin} (${(err as Error).cause ?? (err as Error).message}): is \`baton up\` running, with this admin port (--admin-port)?`);
  }
  if (!res.ok) throw batonError('BATON_ERR_NOT_RUNNING', `${admin}/status answered ${res.status}: is that a baton admin listener?`);
  return (await res.json()) as Status;
}

const us = (v: number) => (v >= 1000 ? `${(v / 1000).toFixed(1)} ms` : `${v} µs`);

/** The status as text; `rate`: requests per second since the previous reading, if known. */
export function renderStatus(admin: string, s: Status, rate?: number): string {
  const head = [
    `baton at ${admin}${s.dataplane === 'broker' ? ' (user-space broker data plane)' : ''}: ${s.inFlight} in flight${rate !== undefined ? `, ${rate.toFixed(0)} req/s` : ''}; ` +
      `pool ${s.pool.slots - s.pool.free}/${s.pool.slots} slots used${s.pool.quarantined ? ` (${s.pool.quarantined} quarantined)` : ''}; ` +
      `response p50 ${us(s.timing.responseTime.p50)} p99 ${us(s.timing.responseTime.p99)} over ${s.timing.jct.count} requests`,
    `rejected descriptors ${s.stats.badDescriptors}, dead letters ${s.stats.deadLetters}, queued ${s.stats.binding.queued}, queue full ${s.stats.binding.rejectedFull}`,
  ];
  if (s.scaler) {
    const d = s.scaler.decisions;
    head.push(`scaler ${s.scaler.policy}: ${d.up} up, ${d.down} down, ${d.fromZero} from zero`);
  }
  const scaling = new Map((s.scaler?.functions ?? []).map((f) => [f.name, f]));
  const table = new Table({
    head: ['function', 'domain', 'binding', 'ready', 'wants', 'restarts', 'queued', 'idle', 'wait p50/p99', 'run p50/p99'],
    style: { head: [], border: [] },
  });
  for (const f of s.functions) {
    const ready = f.instances.filter((i) => i.state === 'ready').length;
    const gaveUp = f.instances.some((i) => i.gaveUp);
    const t = s.timing.functions[f.name]?.run.count ? s.timing.functions[f.name] : undefined; // nothing run yet: no figures
    table.push([
      f.name, f.domain, f.binding, `${ready}/${f.instances.length}${gaveUp ? ' (gave up)' : ''}`, scaling.get(f.name)?.want ?? '-',
      f.instances.reduce((n, i) => n + i.restarts, 0), f.queued, f.binding === 'late' ? f.idleTokens : '-',
      t ? `${us(t.wait.p50)} / ${us(t.wait.p99)}` : '-', t ? `${us(t.run.p50)} / ${us(t.run.p99)}` : '-',
    ]);
  }
  return `${head.join('\n')}\n${table.toString()}${s.admission ? `\n${renderAdmission(s.admission)}` : ''}`;
}

/** Per class: what admission did and how the answers met the class's target. */
function renderAdmission(a: NonNullable<Status['admission']>): string {
  const table = new Table({
    head: [`class (admission ${a.enabled ? 'on' : 'off'})`, 'target', 'admitted', 'downgraded', 'refused', 'shed', 'answered', 'within target', 'p50/p99'],
    style: { head: [], border: [] },
  });
  const ms = (v: number | null) => (v === null ? '-' : `${v} ms`);
  for (const [name, c] of Object.entries(a.classes)) {
    table.push([
      name, `${c.slo} ms`, c.admitted, c.downgraded, c.rejected, c.shed, c.answered,
      c.answered ? `${((100 * c.metSlo) / c.answered).toFixed(1)}%` : '-', `${ms(c.p50)} / ${ms(c.p99)}`,
    ]);
  }
  const p = a.probabilities.map((x) => `${x.route} ${x.class} p=${x.p}`).join(', ');
  return `${table.toString()}${p ? `\nadmit probabilities: ${p}` : ''}`;
}

export async function status(admin: string, json: boolean): Promise<void> {
  const s = await fetchStatus(admin);
  console.log(json ? JSON.stringify(s, null, 2) : renderStatus(admin, s));
}

/** Redraws every `intervalMs`, `count` times (0: until Ctrl-C). */
export async function top(admin: string, intervalMs: number, count: number): Promise<void> {
  let last: { at: number; requests: number } | undefined;
  for (let i = 0; count === 0 || i < count; i++) {
    if (i > 0) await new Promise((r) => setTimeout(r, intervalMs));
    const s = await fetchStatus(admin);
    const now = performance.now();
    const rate = last ? ((s.timing.jct.count - last.requests) * 1000) / (now - last.at) : undefined;
    last = { at: now, requests: s.timing.jct.count };
    const screen = renderStatus(admin, s, rate);
    process.stdout.write(process.stdout.isTTY ? `\x1b[H\x1b[2J${screen}\n` : `${screen}\n\n`);
  }
}
