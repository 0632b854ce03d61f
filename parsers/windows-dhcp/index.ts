/**
 * Microsoft Windows DHCP Server audit logs, IPv4 (DhcpSrvLog-*.log) and IPv6 (DhcpV6SrvLog-*.log).
 * One CSV record per line; the event ID decides the meaning. See README.md for the full ID table.
 * csvFields (text.ts) is a linear scan; nothing here throws.
 */
import type { LineInput, LineParser, ParserPlugin } from '../../src/parsers/plugin.js';
import type { SightingDraft, SightingKind } from '../../src/sighting.js';
import { csvFields } from '../../src/parsers/text.js';
import { wallToUtc } from '../../src/util/time.js';

/** v4 event IDs (Microsoft's audit-log table) that change a binding; every other ID makes no sighting. */
const V4: Record<number, SightingKind> = {
  10: 'lease', // a new IP address was leased to a client
  11: 'renew', // a lease was renewed by a client
  12: 'release', // a lease was released by a client
  16: 'expire', // a lease was deleted
  17: 'expire', // a lease was expired and DNS records for it were not deleted
  18: 'expire', // a lease was expired and DNS records were deleted
  20: 'lease', // a BOOTP address was leased to a client
  21: 'lease', // a dynamic BOOTP address was leased to a client
  23: 'expire', // a BOOTP address was deleted after checking it was not in use
};

/** v6 event IDs (11000 series). 11002 Request is the grant (the log has no Reply row; corpus judgment). */
const V6: Record<number, SightingKind> = {
  11002: 'lease', // DHCPv6 Request
  11003: 'renew', // DHCPv6 Confirm: the client still holds its addresses
  11004: 'renew', // DHCPv6 Renew
  11005: 'renew', // DHCPv6 Rebind
  11007: 'release', // DHCPv6 Release
  11016: 'expire', // DHCPv6 Client deleted
  11017: 'expire', // DHCPv6 DNS record not deleted (after expiry, like v4 17)
  11018: 'expire', // DHCPv6 Expired
  11019: 'expire', // DHCPv6 Leases Expired and Leases Deleted
};

/** Longest record split into fields (real records are under 1 KiB: 19 columns, host names of at most 255). */
const MAX_RECORD = 4096;

/** `NN,MM/DD/YY,HH:MM:SS,` at the start: an audit-log record (not the preamble or the column header). */
function recordStart(t: string): boolean {
  let i = 0;
  while (i < t.length && i < 6 && t.charCodeAt(i) >= 48 && t.charCodeAt(i) <= 57) i++;
  if (i === 0 || t.charCodeAt(i) !== 44) return false;
  const d = i + 1;
  // MM/DD/YY or MM/DD/YYYY
  if (t[d + 2] !== '/' || t[d + 5] !== '/') return false;
  const yEnd = t[d + 8] === ',' ? d + 8 : t[d + 10] === ',' ? d + 10 : -1;
  if (yEnd < 0) return false;
  return t[yEnd + 3] === ':' && t[yEnd + 6] === ':';
}

/** The preamble and header lines of a real DhcpSrvLog / DhcpV6SrvLog file: claimed, no sighting. */
const PREAMBLES = ['Microsoft DHCP Service Activity Log', 'Microsoft DHCPv6 Service Activity Log', 'ID,Date,Time,Description,',
  'Event ID  Meaning', 'QResult: 0: NoQuarantine'];
function preamble(t: string): boolean {
  const s = t.trimStart();
  return PREAMBLES.some((p) => s.startsWith(p));
}

/** The CSV text: the raw line, or the message after a syslog header (logs shipped by an agent). */
function body(input: LineInput): string {
  const m = input.syslog.msg; // the whole line when it had no header
  return m.charCodeAt(0) === 0xfeff ? m.slice(1) : m; // BOM of a file's first line
}

function num(s: string, a: number, b: number): number {
  let v = 0;
  for (let i = a; i < b; i++) {
    const c = s.charCodeAt(i) - 48;
    if (c < 0 || c > 9) return -1;
    v = v * 10 + c;
  }
  return v;
}

/** `MM/DD/YY` + `HH:MM:SS`, server local time (read in the configured zone) → ISO, or undefined. */
function when(date: string, time: string, zone: string, receivedAt: Date): string | undefined {
  if ((date.length !== 8 && date.length !== 10) || time.length < 8) return undefined;
  const mo = num(date, 0, 2), d = num(date, 3, 5);
  let y = num(date, 6, date.length);
  const h = num(time, 0, 2), mi = num(time, 3, 5), s = num(time, 6, 8);
  if (mo < 1 || mo > 12 || d < 1 || d > 31 || y < 0 || h < 0 || h > 23 || mi < 0 || mi > 59 || s < 0 || s > 60) return undefined;
  if (date.length === 8) y += 2000;
  // (the fall-back hour's repeated times by when the line was read: util/time.ts)
  const ms = wallToUtc(y, mo, d, h, mi, s, 0, zone, receivedAt.getTime());
  return Number.isFinite(ms) ? new Date(ms).toISOString() : undefined;
}

class WindowsDhcpParser implements LineParser {
  parse(input: LineInput): SightingDraft[] {
    const t = body(input);
    if (!recordStart(t)) return [];
    // the columns read are in the first few hundred characters; a record of megabytes is not split whole
    const f = csvFields(t.length > MAX_RECORD ? t.slice(0, MAX_RECORD) : t, 24);
    const id = Number(f[0]);
    const v6 = id >= 11000;
    const kind = v6 ? V6[id] : V4[id];
    if (!kind) return [];
    const ip = f[4]?.trim();
    if (!ip) return [];
    const d: SightingDraft = { kind, ip };
    const at = when(f[1], f[2], input.zone, input.receivedAt);
    if (at) d.at = at;
    const host = f[5]?.trim();
    if (host) d.hostname = host;
    if (v6) {
      // ID, Date, Time, Description, IPv6 Address, Host Name, Error Code, Duid Length, Duid Bytes(Hex), ...
      const duid = f[8]?.trim();
      if (duid) d.duid = duid;
    } else {
      // ID, Date, Time, Description, IP Address, Host Name, MAC Address, User Name, TransactionID, ...
      const mac = f[6]?.trim();
      if (mac) d.mac = mac;
    }
    return [d];
  }
}

const plugin: ParserPlugin = {
  id: 'windows-dhcp',
  description: 'Microsoft DHCP Server audit log CSV, IPv4 (DhcpSrvLog) and IPv6 (DhcpV6SrvLog), by event ID',
  claims: { anchors: ['/', ...PREAMBLES] } /* a record has MM/DD/YY */,
  detect(input: LineInput): boolean {
    const t = body(input);
    return recordStart(t) || preamble(t);
  },
  create: () => new WindowsDhcpParser(),
};

export default plugin;
