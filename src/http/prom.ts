/**
 * The Prometheus registry behind `/metrics`, on prom-client (https://github.com/siimon/prom-client):
 * the process and Node.js metrics prom-client collects (`process_*`, `nodejs_*`), histograms the
 * daemon observes as things happen, and families whose values are read from the daemon at each
 * scrape (`family()` declares one once, with its labels, and returns the setter for this scrape).
 * prom-client does the text format: HELP/TYPE lines, label and help escaping.
 */
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';

export type MetricType = 'counter' | 'gauge' | 'histogram';
export type Labels = Record<string, string | number | undefined>;

type Metric = Counter<string> | Gauge<string> | Histogram<string>;

export class MetricsRegistry {
  readonly registry = new Registry();
  private readonly metrics = new Map<string, { type: MetricType; metric: Metric }>();

  constructor(opts: { processMetrics?: boolean } = {}) {
    if (opts.processMetrics !== false) {
      collectDefaultMetrics({ register: this.registry });
      // gauges prom-client names like counters (`promtool check metrics` flags them); the
      // per-type nodejs_active_handles / _requests / _resources carry the same numbers
      for (const name of ['nodejs_active_handles_total', 'nodejs_active_requests_total', 'nodejs_active_resources_total']) this.registry.removeSingleMetric(name);
    }
  }

  /**
   * A family, and how to record a value in it: a gauge is set, a counter takes the value it has
   * reached (read from the daemon's own counters at each scrape), a histogram observes (`buckets`).
   * The prom-client metric is made now when `labelNames` are given (its HELP and TYPE show even
   * before a value), else at its first value, with that value's label names (a family always uses
   * the same ones).
   */
  family(name: string, type: MetricType, help: string, opts: { labelNames?: string[]; buckets?: number[] } = {}): (value: number, labels?: Labels) => void {
    const make = (labelNames: string[]) => {
      let m = this.metrics.get(name);
      if (!m) {
        const cfg = { name, help, labelNames, registers: [this.registry] };
        const metric = type === 'counter' ? new Counter(cfg) : type === 'gauge' ? new Gauge(cfg) : new Histogram({ ...cfg, buckets: opts.buckets });
        this.metrics.set(name, (m = { type, metric }));
      } else if (m.type !== type) throw new Error(`metric ${name} declared as ${m.type} and ${type}`);
      return m;
    };
    if (opts.labelNames) make(opts.labelNames);
    return (v, l = {}) => {
      const labels = Object.fromEntries(Object.entries(l).filter(([, x]) => x !== undefined)) as Record<string, string | number>;
      const m = make(Object.keys(labels));
      if (type === 'histogram') (m.metric as Histogram<string>).observe(labels, v);
      else if (type === 'gauge') (m.metric as Gauge<string>).set(labels, v);
      else (m.metric as Counter<string>).inc(labels, v);
    };
  }

  /** Forget the values read at the last scrape (histograms keep theirs: they are observed, not read). */
  beginScrape(): void {
    for (const { type, metric } of this.metrics.values()) if (type !== 'histogram') metric.reset();
  }

  /** the scrape running now, if any: the next one starts after it */
  private scraping: Promise<unknown> = Promise.resolve();

  /**
   * One scrape: reset, `fill` (which may await the state database), render. Scrapes run one at a
   * time: the values live in one shared registry and counters are filled with inc(), so a second
   * scrape resetting and filling between the first's awaits would double what the first renders.
   */
  scrape(fill: () => Promise<void> | void): Promise<string> {
    const run = this.scraping.then(async () => {
      this.beginScrape();
      await fill();
      return this.render();
    });
    this.scraping = run.catch(() => undefined); // a failed scrape does not block the next
    return run;
  }

  render(): Promise<string> {
    return this.registry.metrics();
  }

  get contentType(): string {
    return this.registry.contentType;
  }
}

/** Parse the text format back (tests, `doctor`): name → samples. Handles escaped label values. */
export function parsePromText(text: string): { help: Map<string, string>; type: Map<string, string>; samples: { name: string; labels: Record<string, string>; value: number }[] } {
  const help = new Map<string, string>();
  const type = new Map<string, string>();
  const samples: { name: string; labels: Record<string, string>; value: number }[] = [];
  for (const line of text.split('\n')) {
    if (!line) continue;
    let m = /^# HELP (\S+) (.*)$/.exec(line);
    if (m) {
      help.set(m[1], m[2]);
      continue;
    }
    m = /^# TYPE (\S+) (\S+)$/.exec(line);
    if (m) {
      type.set(m[1], m[2]);
      continue;
    }
    if (line.startsWith('#')) continue;
    const nm = /^([a-zA-Z_:][a-zA-Z0-9_:]*)/.exec(line);
    if (!nm) throw new Error(`bad sample line: ${line}`);
    let i = nm[1].length;
    const labels: Record<string, string> = {};
    if (line[i] === '{') {
      i++;
      while (line[i] !== '}') {
        const lm = /^([a-zA-Z_][a-zA-Z0-9_]*)="/.exec(line.slice(i));
        if (!lm) throw new Error(`bad label in: ${line}`);
        i += lm[0].length;
        let v = '';
        for (; i < line.length && line[i] !== '"'; i++) {
          if (line[i] === '\\') {
            const n = line[++i];
            v += n === 'n' ? '\n' : n;
          } else v += line[i];
        }
        if (line[i] !== '"') throw new Error(`unterminated label value in: ${line}`);
        i++;
        labels[lm[1]] = v;
        if (line[i] === ',') i++;
        else if (line[i] !== '}') throw new Error(`bad label separator in: ${line}`);
      }
      i++;
    }
    if (line[i] !== ' ') throw new Error(`bad sample line: ${line}`);
    const vs = line.slice(i + 1).trim().split(' ')[0];
    const value = vs === '+Inf' ? Infinity : vs === '-Inf' ? -Infinity : Number(vs);
    if (vs !== 'NaN' && Number.isNaN(value)) throw new Error(`bad value in: ${line}`);
    samples.push({ name: nm[1], labels, value });
  }
  return { help, type, samples };
}
