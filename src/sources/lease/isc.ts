/**
 * ISC dhcpd.leases (dhcpd.leases(5)): an append-only journal of `lease ADDRESS { ... }` blocks,
 * each the lease's whole new state; dhcpd rewrites it at start and periodically (writes
 * dhcpd.leases.new, keeps the old one as dhcpd.leases~, renames), which our tailer sees as a new
 * file read from its start. Statements read in a lease block:
 *
 *   starts|ends|cltt|tstp  W YYYY/MM/DD HH:MM:SS;  (UTC)  or  epoch N;  or  never;
 *   binding state active|free|released|expired|abandoned|backup|reset;
 *   hardware ethernet MAC;   uid "…";   client-hostname "…";
 *
 * `free` is written both when a client releases and when a lease runs out: a free block whose
 * `ends` is before the end of the active lease we read for that address is a release, otherwise
 * an expiry. DHCPv6 (`ia-na` blocks) and other blocks (`host`, `failover peer`) are skipped.
 * Linear in the input; never throws.
 */
import { canonicalIp } from '../../util/ip.js';
import { normalizeMac } from '../../util/mac.js';
import type { JournalReader, LeaseRecord } from './record.js';

/** a lease block longer than this is not one dhcpd wrote */
const MAX_BLOCK_LINES = 200;

function parseTime(rest: string): number | undefined | 'never' {
  const r = rest.trim();
  if (r.startsWith('never')) return 'never';
  const ep = /^epoch\s+(\d+)/.exec(r);
  if (ep) return Number(ep[1]) * 1000;
  const m = /^\d\s+(\d{4})\/(\d{1,2})\/(\d{1,2})\s+(\d{1,2}):(\d{2}):(\d{2})/.exec(r);
  if (!m) return undefined;
  const ms = Date.UTC(+m[1], +m[2] - 1, +m[3], +m[4], +m[5], +m[6]);
  return Number.isFinite(ms) ? ms : undefined;
}

/** Strip a quoted string's quotes (escapes kept as written). */
const unquote = (s: string) => (s.startsWith('"') && s.endsWith('"') && s.length >= 2 ? s.slice(1, -1) : s);

interface Block {
  ip?: string;
  /** depth of braces inside the block (nested blocks are skipped) */
  depth: number;
  lines: number;
  starts?: number;
  ends?: number | 'never';
  cltt?: number;
  state?: string;
  mac?: string;
  uid?: string;
  hostname?: string;
}

/**
 * A statement without its closing `;` and any `# comment` after it: cut at the first `;` or `#`
 * outside a quoted string (dhcpd escapes within quotes with a backslash). One pass: the regex this
 * replaced backtracked from every `;` of a crafted line (quadratic), and cut inside quotes.
 */
export function statementText(t: string): string {
  let quoted = false;
  for (let i = 0; i < t.length; i++) {
    const c = t[i];
    if (quoted) {
      if (c === '\\') i++;
      else if (c === '"') quoted = false;
    } else if (c === '"') quoted = true;
    else if (c === ';' || c === '#') return t.slice(0, i).trimEnd();
  }
  return t;
}

export class IscLeasesReader implements JournalReader {
  /** inside a block: the lease being read, or a skipped block (ip undefined) */
  private block?: Block;
  /** per address, the end of the last active lease read (tells a release from an expiry) */
  private readonly activeEnds = new Map<string, number>();

  reset(): void {
    this.block = undefined;
  }

  line(text: string): { records: LeaseRecord[]; boundary: boolean; error?: string } {
    const t = text.trim();
    if (!this.block) {
      if (t === '' || t.startsWith('#')) return { records: [], boundary: true };
      const open = /^lease\s+(\S+)\s*\{\s*$/.exec(t);
      if (open) {
        const ip = canonicalIp(open[1]);
        if (!ip) {
          this.block = { depth: 1, lines: 1 };
          return { records: [], boundary: false, error: `not an address after "lease": ${open[1].slice(0, 64)}` };
        }
        this.block = { ip, depth: 1, lines: 1 };
        return { records: [], boundary: false };
      }
      const opens = count(t, '{') - count(t, '}');
      if (opens > 0) this.block = { depth: opens, lines: 1 }; // another kind of block: skipped
      return { records: [], boundary: opens <= 0 };
    }
    const b = this.block;
    b.lines++;
    if (b.lines > MAX_BLOCK_LINES) {
      this.block = undefined;
      return { records: [], boundary: true, error: `block not closed after ${MAX_BLOCK_LINES} lines` };
    }
    if (/^lease\s+\S+\s*\{\s*$/.test(t) && b.depth === 1) {
      // a block that never closed (a truncated write), and the next one starting: drop the first
      this.block = undefined;
      const again = this.line(text);
      return { ...again, error: 'lease block not closed before the next one (truncated file?)' };
    }
    b.depth += count(t, '{') - count(t, '}');
    if (b.depth > 1) return { records: [], boundary: false };
    if (b.depth <= 0) {
      this.block = undefined;
      const rec = b.ip ? this.finish(b) : undefined;
      return { records: rec ? [rec] : [], boundary: true };
    }
    if (b.ip) this.statement(b, statementText(t));
    return { records: [], boundary: false };
  }

  private statement(b: Block, s: string): void {
    const sp = s.indexOf(' ');
    const word = sp < 0 ? s : s.slice(0, sp);
    const rest = sp < 0 ? '' : s.slice(sp + 1);
    switch (word) {
      case 'starts':
      case 'cltt': {
        const v = parseTime(rest);
        if (typeof v === 'number') b[word] = v;
        break;
      }
      case 'ends': {
        const v = parseTime(rest);
        if (v !== undefined) b.ends = v;
        break;
      }
      case 'binding':
        if (rest.startsWith('state ')) b.state = rest.slice(6).trim();
        break;
      case 'hardware':
        b.mac = normalizeMac(rest.split(/\s+/)[1]);
        break;
      case 'uid':
        b.uid = unquote(rest.trim());
        break;
      case 'client-hostname': {
        const h = unquote(rest.trim());
        if (h && h.length <= 255) b.hostname = h;
        break;
      }
    }
  }

  private finish(b: Block): LeaseRecord | undefined {
    const r: LeaseRecord = { state: 'active', ip: b.ip! };
    if (b.mac) r.mac = b.mac;
    else if (b.uid) r.clientId = b.uid;
    if (b.hostname) r.hostname = b.hostname;
    const ends = b.ends === 'never' ? undefined : b.ends;
    switch (b.state) {
      case 'active': {
        r.startAt = b.cltt ?? b.starts;
        r.expiresAt = ends;
        if (ends !== undefined && r.startAt !== undefined) r.durationS = Math.max(0, Math.round((ends - r.startAt) / 1000));
        if (ends !== undefined) this.activeEnds.set(r.ip, ends);
        return r;
      }
      case 'free':
      case 'released':
      case 'expired': {
        const activeEnd = this.activeEnds.get(r.ip);
        this.activeEnds.delete(r.ip);
        const early = ends !== undefined && activeEnd !== undefined && ends < activeEnd;
        r.state = b.state === 'released' || (b.state === 'free' && early) ? 'released' : 'expired';
        r.endAt = ends;
        return r;
      }
      default:
        return undefined; // abandoned, backup, reset: no device holds it
    }
  }
}

function count(s: string, ch: string): number {
  // braces inside quoted strings (uid, hostnames) do not count
  let n = 0;
  let q = false;
  for (let i = 0; i < s.length; i++) {
    const c = s[i];
    if (c === '\\') i++;
    else if (c === '"') q = !q;
    else if (!q && c === ch) n++;
  }
  return n;
}
