/**
 * A minimal Prometheus text exposition (format 0.0.4) writer: one HELP and one TYPE line per
 * metric family, samples grouped under it, label values and help text escaped as the format says.
 */

export type MetricType = 'counter' | 'gauge';
export type Labels = Record<string, string | number | undefined>;

const NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL = /^[a-zA-Z_][a-zA-Z0-9_]*$/;

/** `\` → `\\`, newline → `\n` (HELP text) */
export function escapeHelp(s: string): string {
  return s.replace(/\\/g, '\\\\').replace(/\n/g, '\\n');
}

/** `\` → `\\`, `"` → `\"`, newline → `\n` (label values) */
export function escapeLabelValue(s: string): string {
  return s.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');
}

export function formatValue(v: number): string {
  if (Number.isNaN(v)) return 'NaN';
  if (v === Infinity) return '+Inf';
  if (v === -Infinity) return '-Inf';
  return String(v);
}

interface Family {
  name: string;
  help: string;
  type: MetricType;
  samples: { labels: Labels; value: number }[];
}

export class PromWriter {
  private readonly families = new Map<string, Family>();

  /** Declare a family (so HELP/TYPE appear even with no samples) and return an adder for its samples. */
  family(name: string, type: MetricType, help: string): (value: number, labels?: Labels) => void {
    if (!NAME.test(name)) throw new Error(`bad metric name ${name}`);
    let f = this.families.get(name);
    if (!f) {
      f = { name, help, type, samples: [] };
      this.families.set(name, f);
    }
    const fam = f;
    return (value, labels = {}) => {
      fam.samples.push({ labels, value });
    };
  }

  render(): string {
    const out: string[] = [];
    for (const f of this.families.values()) {
      out.push(`# HELP ${f.name} ${escapeHelp(f.help)}`);
      out.push(`# TYPE ${f.name} ${f.type}`);
      for (const s of f.samples) {
        const ls = Object.entries(s.labels).filter(([, v]) => v !== undefined);
        for (const [k] of ls) if (!LABEL.test(k)) throw new Error(`bad label name ${k}`);
        const lt = ls.length ? `{${ls.map(([k, v]) => `${k}="${escapeLabelValue(String(v))}"`).join(',')}}` : '';
        out.push(`${f.name}${lt} ${formatValue(s.value)}`);
      }
    }
    return out.join('\n') + '\n';
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
