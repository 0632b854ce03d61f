/**
 * ISC dhcpd (also as shipped in pfSense / OPNsense). See README.md for which lines make which sighting.
 */
import type { LineInput, ParserPlugin } from '../../src/parsers/plugin.js';
import { DhcpdCore, looksInfoblox, startsWithDhcpdVerb, VERB_PHRASES } from './dhcpd-core.js';

const TAGS = new Set(['dhcpd', 'dhcpd6']);

const plugin: ParserPlugin = {
  id: 'isc-dhcpd',
  description: 'ISC dhcpd v4/v6 syslog (also pfSense / OPNsense): DHCPACK, DHCPRELEASE, DHCPEXPIRE, BOOTREPLY, Reply NA',
  claims: { tags: [...TAGS], anchors: VERB_PHRASES },
  detect(input: LineInput): boolean {
    // lines with Infoblox NIOS marks belong to the infoblox parser (which reads them the same way)
    // a message without a tag counts when it opens with dhcpd's own verb phrase (no header at all)
    const app = input.syslog.appName;
    const ours = app === undefined ? startsWithDhcpdVerb(input.syslog.msg) : TAGS.has(app);
    return ours && !looksInfoblox(input);
  },
  create: () => new DhcpdCore(),
};

export default plugin;
