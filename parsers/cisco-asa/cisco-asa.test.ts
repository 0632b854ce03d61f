import { parserSuite } from '../../test/helpers/parser-suite.js';
import { fallBackSuite } from '../../test/helpers/fall-back.js';
import plugin from './index.js';

parserSuite('cisco-asa');

// the header parser finds no time in `<166>STAMP: %ASA-...`, so the parser reads the stamp itself, as local time
fallBackSuite('cisco-asa: an offset-less ISO stamp before the marker in the fall-back hour', plugin, '<166>2026-11-01T01:10:00: %ASA-6-737026: IPAA: Session=0x00b1, Client assigned 10.50.0.40 from local pool RA-POOL');
