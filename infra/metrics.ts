/**
 * Prometheus text exposition, by the conventions `promtool check metrics` enforces: every family
 * has help and a type, counters and only counters end in `_total`, units are base units
 * (`_seconds`, `_bytes`), and names say what they count. A name that breaks them is refused when
 * the metric is declared, so a bad one never reaches a scrape.
 */

type Labels = Record<string, string | number>;
type MetricType = 'counter' | 'gauge' | 'histogram';

const NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL = /^[a-zA-Z_][a-zA-Z0-9_]*$/;
/** Abbreviated or non-base units promtool (and people) trip over. */
const NON_BASE_UNIT = /_(ms|milliseconds|us|microseconds|ns|nanoseconds|minutes|hours|kb|mb|gb|kilobytes|megabytes|percent)(_|$)/;

const escapeValue = (v: string) => v.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');
const escapeHelp = (v: string) => v.replace(/\\/g, '\\\\').replace(/\n/g, '\\n');

function formatNumber(x: number): string {
  if (Number.isNaN(x)) return 'NaN';
  if (x === Infinity) return '+Inf';
  if (x === -Infinity) return '-Inf';
  return String(x);
}

export class MetricNameError extends Error {}

function checkName(name: string, type: MetricType, labelNames: readonly string[]): void {
  if (!NAME.test(name)) throw new MetricNameError(`metric ${name}: not a Prometheus metric name`);
  if (type === 'counter' && !name.endsWith('_total')) throw new MetricNameError(`counter ${name}: a counter's name ends in _total`);
  if (type !== 'counter' && name.endsWith('_total')) throw new MetricNameError(`${type} ${name}: only counters end in _total`);
  if (NON_BASE_UNIT.test(name)) throw new MetricNameError(`metric ${name}: use base units (_seconds, _bytes, a ratio 0–1)`);
  for (const l of labelNames) {
    if (!LABEL.test(l) || l.startsWith('__')) throw new MetricNameError(`metric ${name}: label ${l} is not a Prometheus label name`);
    if (type === 'histogram' && l === 'le') throw new MetricNameError(`histogram ${name}: label le is reserved`);
  }
}

abstract class Family {
  protected readonly series = new Map<string, { labels: Labels; value: unknown }>();

  constructor(
    readonly name: string,
    readonly help: string,
    readonly type: MetricType,
    readonly labelNames: readonly string[],
  ) {
    checkName(name, type, labelNames);
    if (!help.trim()) throw new MetricNameError(`metric ${name}: help text is required`);
  }

  protected key(labels: Labels): string {
    const given = Object.keys(labels);
    if (given.length !== this.labelNames.length || this.labelNames.some((l) => !(l in labels))) {
      throw new MetricNameError(`metric ${this.name}: labels ${given.join(',') || '(none)'} given; it has ${this.labelNames.join(',') || 'none'}`);
    }
    return this.labelNames.map((l) => String(labels[l])).join('\u0000');
  }

  protected labelText(labels: Labels, extra?: string): string {
    const parts = this.labelNames.map((l) => `${l}="${escapeValue(String(labels[l]))}"`);
    if (extra) parts.push(extra);
    return parts.length ? `{${parts.join(',')}}` : '';
  }

  /** Forgets every series (a gauge recomputed whole at each scrape). */
  reset(): void {
    this.series.clear();
  }

  abstract lines(): string[];

  render(): string[] {
    return [`# HELP ${this.name} ${escapeHelp(this.help)}`, `# TYPE ${this.name} ${this.type}`, ...this.lines()];
  }
}

export class Counter extends Family {
  inc(labels: Labels = {}, by = 1): void {
    if (!(by >= 0)) throw new MetricNameError(`counter ${this.name}: cannot go down (inc by ${by})`);
    const k = this.key(labels);
    const s = this.series.get(k);
    if (s) s.value = (s.value as number) + by;
    else this.series.set(k, { labels, value: by });
  }

  /** For a count kept elsewhere (e.g. a buffer's dropped rows): it must only grow. */
  setTotal(labels: Labels, total: number): void {
    this.series.set(this.key(labels), { labels, value: total });
  }

  lines(): string[] {
    return [...this.series.values()].map((s) => `${this.name}${this.labelText(s.labels)} ${formatNumber(s.value as number)}`);
  }
}

export class Gauge extends Family {
  set(labels: Labels, value: number): void {
    this.series.set(this.key(labels), { labels, value });
  }

  lines(): string[] {
    return [...this.series.values()].map((s) => `${this.name}${this.labelText(s.labels)} ${formatNumber(s.value as number)}`);
  }
}

interface HistogramSeries {
  buckets: number[];
  sum: number;
  count: number;
}

export class Histogram extends Family {
  constructor(name: string, help: string, labelNames: readonly string[], readonly bounds: readonly number[]) {
    super(name, help, 'histogram', labelNames);
    if (!bounds.length || bounds.some((b, i) => i > 0 && b <= bounds[i - 1]!)) throw new MetricNameError(`histogram ${name}: buckets must increase`);
  }

  observe(labels: Labels, value: number): void {
    const k = this.key(labels);
    let s = this.series.get(k) as { labels: Labels; value: HistogramSeries } | undefined;
    if (!s) this.series.set(k, (s = { labels, value: { buckets: this.bounds.map(() => 0), sum: 0, count: 0 } }));
    const h = s.value;
    h.count++;
    h.sum += value;
    for (let i = 0; i < this.bounds.length; i++) if (value <= this.bounds[i]!) h.buckets[i]!++;
  }

  lines(): string[] {
    const out: string[] = [];
    for (const s of this.series.values()) {
      const h = s.value as HistogramSeries;
      this.bounds.forEach((b, i) => out.push(`${this.name}_bucket${this.labelText(s.labels, `le="${formatNumber(b)}"`)} ${h.buckets[i]}`));
      out.push(`${this.name}_bucket${this.labelText(s.labels, 'le="+Inf"')} ${h.count}`);
      out.push(`${this.name}_sum${this.labelText(s.labels)} ${formatNumber(h.sum)}`);
      out.push(`${this.name}_count${this.labelText(s.labels)} ${h.count}`);
    }
    return out;
  }
}

/** Latency buckets in seconds: 0.5 ms to 10 s. */
export const LATENCY_BUCKETS_SECONDS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

/** One process's metrics: families declared once, values set as things happen or just before a scrape. */
export class MetricsRegistry {
  private readonly families = new Map<string, Family>();
  private readonly collectors: Array<() => void | Promise<void>> = [];

  private add<F extends Family>(f: F): F {
    if (this.families.has(f.name)) throw new MetricNameError(`metric ${f.name} is declared twice`);
    this.families.set(f.name, f);
    return f;
  }

  counter(name: string, help: string, labelNames: readonly string[] = []): Counter {
    return this.add(new Counter(name, help, 'counter', labelNames));
  }

  gauge(name: string, help: string, labelNames: readonly string[] = []): Gauge {
    return this.add(new Gauge(name, help, 'gauge', labelNames));
  }

  histogram(name: string, help: string, labelNames: readonly string[], bounds: readonly number[]): Histogram {
    return this.add(new Histogram(name, help, labelNames, bounds));
  }

  /** Runs before every scrape: where a figure is read from its source rather than kept. */
  onCollect(fn: () => void | Promise<void>): void {
    this.collectors.push(fn);
  }

  async render(): Promise<string> {
    for (const c of this.collectors) await c();
    return `${[...this.families.values()].flatMap((f) => f.render()).join('\n')}\n`;
  }
}

export const METRICS_CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8';
