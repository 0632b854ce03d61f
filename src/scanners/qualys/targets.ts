/**
 * Target lists as Qualys writes them (`10.0.0.1,10.0.0.5-10.0.0.9`, host names, asset UUIDs) ↔ the
 * canonical addresses we launch. Linear in the text; ranges expand only up to a bound.
 */
import { canonicalIp } from '../../util/ip.js';

const MAX_EXPANDED = 65_536;
/** an address or a range of them inside free text; validated afterwards */
const TOKEN = /[0-9A-Fa-f:.]{3,45}(?:-[0-9A-Fa-f:.]{3,45})?/g;

interface Item {
  /** the IPv4 range as integers, or one IPv6 address */
  v4?: [number, number];
  v6?: string;
}

function v4int(ip: string): number {
  return ip.split('.').reduce((n, o) => n * 256 + Number(o), 0);
}

function v4text(n: number): string {
  return [n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].join('.');
}

function item(token: string): Item | undefined {
  const dash = token.indexOf('-');
  const a = canonicalIp(dash < 0 ? token : token.slice(0, dash));
  const b = dash < 0 ? a : canonicalIp(token.slice(dash + 1));
  if (!a || !b) return undefined;
  if (!a.includes(':') && !b.includes(':')) {
    const lo = v4int(a);
    const hi = v4int(b);
    return lo <= hi ? { v4: [lo, hi] } : undefined;
  }
  return a === b ? { v6: a } : undefined; // IPv6 ranges: not seen in Qualys answers, not guessed at
}

/**
 * A scan's TARGET as canonical addresses (ranges expanded, up to 65 536 in all); items that are not
 * addresses (host names, EC2/Azure ids) are kept as written.
 */
export function expandTargets(text: string): string[] {
  const out: string[] = [];
  for (const raw of text.split(',')) {
    const t = raw.trim();
    if (!t) continue;
    const it = item(t);
    if (it?.v6) out.push(it.v6);
    else if (it?.v4 && it.v4[1] - it.v4[0] < MAX_EXPANDED - out.length) for (let n = it.v4[0]; n <= it.v4[1]; n++) out.push(v4text(n));
    else out.push(t);
  }
  return out;
}

/** Of the addresses we sent, those a Qualys message names (singly or inside a range). */
export function addressesNamed(message: string, sent: string[]): string[] {
  const items: Item[] = [];
  for (const m of message.matchAll(TOKEN)) {
    const it = item(m[0]);
    if (it) items.push(it);
  }
  if (items.length === 0) return [];
  return sent.filter((ip) => {
    if (ip.includes(':')) return items.some((i) => i.v6 === ip);
    const n = v4int(ip);
    return items.some((i) => i.v4 !== undefined && i.v4[0] <= n && n <= i.v4[1]);
  });
}
