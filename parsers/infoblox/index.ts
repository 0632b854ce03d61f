/**
 * Infoblox NIOS DHCP (an ISC-derived dhcpd, via syslog). See README.md.
 * The message grammar is shared with isc-dhcpd (parsers/isc-dhcpd/dhcpd-core.ts), so a line either
 * plug-in could claim gives the same sighting; this plug-in only decides which lines are NIOS's.
 */
import type { LineInput, ParserPlugin } from '../../src/parsers/plugin.js';
import { DhcpdCore, looksInfoblox, VERB_PHRASES } from '../isc-dhcpd/dhcpd-core.js';

const plugin: ParserPlugin = {
  id: 'infoblox',
  description: 'Infoblox NIOS DHCP syslog (dhcpd / dhcpdv6 with TransID, uid, lease-duration, (RENEW))',
  claims: { tags: ['dhcpd', 'dhcpdv6'], anchors: VERB_PHRASES },
  detect(input: LineInput): boolean {
    return looksInfoblox(input);
  },
  create: () => new DhcpdCore(),
};

export default plugin;
