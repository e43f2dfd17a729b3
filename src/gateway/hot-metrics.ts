// Histograms and counters for the per-answer hot path, read by prom-client at scrape time.
// prom-client's own children hash their labels and check them again on every observation
// (~15% of the gateway's CPU at saturation with a 5-function chain, measured with perf); here a
// child is a few numbers bound once to its labels, and observing one is a bucket search and
// three additions. The registry only calls get() when /metrics is scraped.
import type { Registry } from 'prom-client';

type Labels = Record<string, string>;
interface Sample { labels: Labels; value: number; metricName?: string }

export class HistogramChild {
  /** Observations per bucket, not cumulative; the last one is +Inf's. */
  readonly counts: Float64Array;
  sum = 0;
  count = 0;
  constructor(private readonly bounds: readonly number[], readonly labels: Labels) {
    this.counts = new Float64Array(bounds.length + 1);
  }

  observe(value: number): void {
    const b = this.bounds;
    let i = 0;
    while (i < b.length && value > b[i]!) i++;
    this.counts[i]!++;
    this.sum += value;
    this.count++;
  }
}

export class CounterChild {
  value = 0;
  constructor(readonly labels: Labels) {}
  inc(by = 1): void {
    this.value += by;
  }
}

/** A metric the prom-client registry prints as its own: name, help, type, get(). */
abstract class Family<C extends { labels: Labels }> {
  abstract readonly type: 'histogram' | 'counter';
  readonly aggregator = 'sum';
  private readonly children = new Map<string, C>();

  constructor(readonly name: string, readonly help: string, registry: Registry) {
    registry.registerMetric(this as never);
  }

  /** The child for these labels, created on first use; keep it to observe without a lookup. */
  labels(labels: Labels): C {
    const key = JSON.stringify(labels);
    let child = this.children.get(key);
    if (!child) this.children.set(key, (child = this.create(labels)));
    return child;
  }

  protected abstract create(labels: Labels): C;
  protected abstract samples(child: C): Sample[];

  get(): { name: string; help: string; type: string; aggregator: string; values: Sample[] } {
    const values = [...this.children.values()].flatMap((c) => this.samples(c));
    return { name: this.name, help: this.help, type: this.type, aggregator: this.aggregator, values };
  }
}

export class HotHistogram extends Family<HistogramChild> {
  readonly type = 'histogram';
  constructor(name: string, help: string, private readonly bounds: readonly number[], registry: Registry) {
    super(name, help, registry);
  }

  protected create(labels: Labels): HistogramChild {
    return new HistogramChild(this.bounds, labels);
  }

  protected samples(c: HistogramChild): Sample[] {
    const out: Sample[] = [];
    let cumulative = 0;
    for (let i = 0; i <= this.bounds.length; i++) {
      cumulative += c.counts[i]!;
      const le = i < this.bounds.length ? String(this.bounds[i]) : '+Inf';
      out.push({ labels: { le, ...c.labels }, value: cumulative, metricName: `${this.name}_bucket` });
    }
    out.push({ labels: c.labels, value: c.sum, metricName: `${this.name}_sum` });
    out.push({ labels: c.labels, value: c.count, metricName: `${this.name}_count` });
    return out;
  }
}

export class HotCounter extends Family<CounterChild> {
  readonly type = 'counter';
  protected create(labels: Labels): CounterChild {
    return new CounterChild(labels);
  }
  protected samples(c: CounterChild): Sample[] {
    return [{ labels: c.labels, value: c.value }];
  }
}
