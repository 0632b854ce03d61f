import { parserSuite } from '../../test/helpers/parser-suite.js';

parserSuite('windows-dhcp', ['windows-dhcp', 'windows-dhcpv6']);
