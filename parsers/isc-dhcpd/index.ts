/**
 * ISC dhcpd (also as shipped in pfSense / OPNsense). See README.md for which lines make which sighting.
 */
import type { LineInput, LineParser, ParserPlugin } from '../../src/parsers/plugin.js';
import type { SightingDraft } from '../../src/sighting.js';
import { words, unparen, BoundedMap } from '../../src/parsers/text.js';

const TAGS = new Set(['dhcpd', 'dhcpd6']);

/** Remembers, per MAC, whether its last DHCPREQUEST was a renewal (no server identifier). */
class IscDhcpdParser implements LineParser {
  private readonly renewing = new BoundedMap<string, boolean>(10_000);

  parse(input: LineInput): SightingDraft[] {
    const w = words(input.syslog.msg, 32);
    switch (w[0]) {
      case 'DHCPACK':
        return this.ack(w);
      case 'DHCPREQUEST':
        this.request(w);
        return [];
      case 'DHCPRELEASE':
        // DHCPRELEASE of <ip> from <mac> [(<host>)] via <if> (found)
        if (w[1] !== 'of' || w[3] !== 'from') return [];
        return [withHost({ kind: 'release', ip: w[2], mac: w[4] }, w[5])];
      case 'DHCPEXPIRE':
        // DHCPEXPIRE on <ip> to <mac>  (failover / lease-expiry logging)
        if (w[1] !== 'on' || w[3] !== 'to') return [];
        return [{ kind: 'expire', ip: w[2], mac: w[4] }];
      case 'Reply':
        return replyNa(w);
      default:
        return [];
    }
  }

  private ack(w: string[]): SightingDraft[] {
    // "DHCPACK on <ip> to <mac> [(<host>)] via <if>" binds; "DHCPACK to <ip> (<mac>) via <if>" answers a DHCPINFORM
    if (w[1] !== 'on' || w[3] !== 'to') return [];
    const renew = this.renewing.get(w[4]) === true;
    this.renewing.delete(w[4]);
    return [withHost({ kind: renew ? 'renew' : 'lease', ip: w[2], mac: w[4] }, w[5])];
  }

  private request(w: string[]): void {
    // "DHCPREQUEST for <ip> [(<server-id>)] from <mac> ..." — no server id means the client renews a lease it holds
    if (w[1] !== 'for') return;
    const from = w.indexOf('from');
    if (from < 0 || !w[from + 1]) return;
    this.renewing.set(w[from + 1], from === 3);
  }
}

function withHost(d: SightingDraft, tok: string | undefined): SightingDraft {
  const host = tok && tok.startsWith('(') ? unparen(tok) : undefined;
  if (host) d.hostname = host;
  return d;
}

/** "Reply NA: address <ip6> to client with duid <duid> iaid = N valid for S seconds" */
function replyNa(w: string[]): SightingDraft[] {
  if (w[1] !== 'NA:' || w[2] !== 'address' || w[4] !== 'to' || w[7] !== 'duid') return [];
  const d: SightingDraft = { kind: 'lease', ip: w[3], duid: w[8] };
  const valid = w.indexOf('valid');
  if (valid > 0 && w[valid + 1] === 'for') {
    const s = Number(w[valid + 2]);
    if (Number.isInteger(s) && s >= 0) d.durationS = s;
  }
  return [d];
}

const plugin: ParserPlugin = {
  id: 'isc-dhcpd',
  description: 'ISC dhcpd v4/v6 syslog (also pfSense / OPNsense): DHCPACK, DHCPRELEASE, DHCPEXPIRE, Reply NA',
  detect(input: LineInput): boolean {
    return input.syslog.appName !== undefined && TAGS.has(input.syslog.appName);
  },
  create: () => new IscDhcpdParser(),
};

export default plugin;
