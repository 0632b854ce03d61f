/**
 * strongSwan charon (IKEv2/IKEv1 road-warrior gateway) log lines. See README.md.
 */
import type { LineInput, LineParser, ParserPlugin } from '../../src/parsers/plugin.js';
import type { SightingDraft } from '../../src/sighting.js';
import { BoundedMap } from '../../src/parsers/text.js';
import { canonicalIp } from '../../src/util/ip.js';

/** The inner address used when a session end names no address and no earlier line told us one. */
export const UNKNOWN_IP = '0.0.0.0';

const TAGS = new Set(['charon', 'charon-systemd', 'charon-cmd', 'ipsec', 'strongswan', 'swanctl']);

function isDigit(c: number): boolean {
  return c >= 48 && c <= 57;
}
function isUpper(c: number): boolean {
  return c >= 65 && c <= 90;
}

/**
 * The charon message after its `NN[GRP] ` (thread and log group, `[IKE1]` with a level digit) and
 * an optional `<conn|N> ` prefix. Undefined when the text does not start that way.
 */
export function charonBody(text: string): { thread: string; group: string; msg: string } | undefined {
  let i = 0;
  while (i < text.length && i < 3 && isDigit(text.charCodeAt(i))) i++;
  if (i === 0 || text[i] !== '[') return undefined;
  const thread = text.slice(0, i);
  const g = i + 1;
  let j = g;
  while (j < text.length && j - g < 3 && isUpper(text.charCodeAt(j))) j++;
  if (j - g !== 3) return undefined;
  const group = text.slice(g, j);
  if (isDigit(text.charCodeAt(j))) j++;
  if (text[j] !== ']' || text[j + 1] !== ' ') return undefined;
  let k = j + 2;
  if (text[k] === '<') {
    const e = text.indexOf('> ', k);
    if (e > 0 && e - k < 256) k = e + 2;
  }
  return { thread, group, msg: text.slice(k) };
}

/** The text a parser reads: syslog msg, without a leading `charon: ` tag on header-less lines. */
function messageText(input: LineInput): string {
  let t = input.syslog.msg.trimStart();
  if (input.syslog.appName === undefined) {
    const c = t.indexOf(': ');
    if (c > 0 && c < 20 && TAGS.has(t.slice(0, c))) t = t.slice(c + 2);
  }
  return t;
}

/** `addr[identity]` → parts (identity may contain anything but `]` at the end). */
function endpoint(text: string): { addr: string; id: string } | undefined {
  const b = text.indexOf('[');
  if (b <= 0 || !text.endsWith(']')) return undefined;
  return { addr: text.slice(0, b), id: text.slice(b + 1, -1) };
}

function addr(text: string | undefined): string | undefined {
  const ip = canonicalIp(text);
  return ip && ip !== '0.0.0.0' && ip !== '::' ? ip : undefined;
}

/** `'identity'` → identity */
function quoted(text: string, from: number): { value: string; end: number } | undefined {
  if (text[from] !== "'") return undefined;
  const e = text.indexOf("'", from + 1);
  if (e < 0) return undefined;
  return { value: text.slice(from + 1, e), end: e + 1 };
}

class StrongSwanParser implements LineParser {
  /** peer identity → virtual IPs assigned to it (for the `deleting IKE_SA` line) */
  private readonly vips = new BoundedMap<string, string[]>(10_000);
  /** worker thread → remote address of the IKE_SA it is authenticating (from `looking for peer configs`) */
  private readonly threadPeer = new BoundedMap<string, { addr: string; id: string }>(256);
  /** virtual IPs already reported down by `deleting IKE_SA`, so `went offline` does not repeat it */
  private readonly reportedDown = new BoundedMap<string, string>(10_000);

  parse(input: LineInput): SightingDraft[] {
    return this.lines(input);
  }

  private lines(input: LineInput): SightingDraft[] {
    const c = charonBody(messageText(input));
    if (!c) return [];
    const m = c.msg;
    if (m.startsWith('assigning virtual IP ')) return this.assign(c.thread, m.slice(21));
    if (m.startsWith('deleting IKE_SA ')) return this.deleting(m.slice(16));
    if (m.startsWith('lease ')) return this.offline(m.slice(6));
    if (m.startsWith('releasing virtual IP ')) return this.releasing(m.slice(21));
    if (m.startsWith('looking for peer configs matching ')) this.looking(c.thread, m.slice(34));
    return [];
  }

  /** `assigning virtual IP <vip> to peer '<identity>'` */
  private assign(thread: string, rest: string): SightingDraft[] {
    const sp = rest.indexOf(' to peer ');
    if (sp < 0) return [];
    const ip = addr(rest.slice(0, sp));
    const id = quoted(rest, sp + 9);
    if (!ip || !id) return [];
    const d: SightingDraft = { kind: 'tunnel-up', ip, user: id.value };
    const peer = this.threadPeer.get(thread);
    if (peer && peer.id === id.value) {
      const r = canonicalIp(peer.addr);
      if (r) d.remoteIp = r;
    }
    const list = this.vips.get(id.value) ?? [];
    if (!list.includes(ip)) list.push(ip);
    this.vips.set(id.value, list.slice(-4));
    this.reportedDown.delete(ip);
    return [d];
  }

  /** `looking for peer configs matching <local>[<id>]...<remote>[<id>]` */
  private looking(thread: string, rest: string): void {
    const dots = rest.indexOf('...');
    if (dots < 0) return;
    const remote = endpoint(rest.slice(dots + 3).trim());
    if (remote) this.threadPeer.set(thread, remote);
  }

  /** `deleting IKE_SA <name>[<n>] between <local>[<id>]...<remote>[<id>]` */
  private deleting(rest: string): SightingDraft[] {
    const b = rest.indexOf(' between ');
    if (b < 0) return [];
    const span = rest.slice(b + 9).trim();
    const dots = span.indexOf('...');
    if (dots < 0) return [];
    const remote = endpoint(span.slice(dots + 3));
    if (!remote) return [];
    const list = this.vips.get(remote.id) ?? [];
    this.vips.delete(remote.id);
    const v4 = list.find((ip) => !ip.includes(':'));
    const v6 = list.find((ip) => ip.includes(':'));
    const d: SightingDraft = { kind: 'tunnel-down', ip: v4 ?? v6 ?? UNKNOWN_IP };
    if (v4 && v6) d.ip6 = v6;
    const r = canonicalIp(remote.addr);
    if (r) d.remoteIp = r;
    if (remote.id && remote.id !== remote.addr && remote.id !== r && remote.id !== '%any') d.user = remote.id;
    for (const ip of list) this.reportedDown.set(ip, remote.id);
    return [d];
  }

  /** `lease <vip> by '<identity>' went offline` (the pool takes the address back) */
  private offline(rest: string): SightingDraft[] {
    const by = rest.indexOf(' by ');
    if (by < 0) return [];
    const ip = addr(rest.slice(0, by));
    const id = quoted(rest, by + 4);
    if (!ip || !id || !rest.slice(id.end).trimStart().startsWith('went offline')) return [];
    if (this.reportedDown.get(ip) === id.value) {
      this.reportedDown.delete(ip);
      return [];
    }
    this.dropVip(id.value, ip);
    return [{ kind: 'tunnel-down', ip, user: id.value }];
  }

  /** `releasing virtual IP <vip>` (optionally ` of '<identity>'` / ` of peer '<identity>'`) */
  private releasing(rest: string): SightingDraft[] {
    const sp = rest.indexOf(' ');
    const ip = addr(sp < 0 ? rest : rest.slice(0, sp));
    if (!ip) return [];
    const d: SightingDraft = { kind: 'tunnel-down', ip };
    const q = rest.indexOf("'");
    const id = q > 0 ? quoted(rest, q) : undefined;
    if (id) {
      d.user = id.value;
      this.dropVip(id.value, ip);
    }
    if (this.reportedDown.has(ip)) {
      this.reportedDown.delete(ip);
      return [];
    }
    return [d];
  }

  private dropVip(id: string, ip: string): void {
    const list = this.vips.get(id);
    if (!list) return;
    const rest = list.filter((x) => x !== ip);
    if (rest.length) this.vips.set(id, rest);
    else this.vips.delete(id);
  }
}

const plugin: ParserPlugin = {
  id: 'strongswan',
  description: 'strongSwan charon log (charon, charon-systemd, ipsec tags or bare NN[IKE] lines): assigning virtual IP → tunnel-up, deleting IKE_SA / lease went offline → tunnel-down',
  claims: { tags: [...TAGS], anchors: ['['] } /* charonBody needs `NN[GRP]` */,
  detect(input: LineInput): boolean {
    const app = input.syslog.appName;
    if (app !== undefined && TAGS.has(app)) return true;
    if (app !== undefined) return false;
    return charonBody(messageText(input)) !== undefined;
  },
  create: () => new StrongSwanParser(),
};

export default plugin;
