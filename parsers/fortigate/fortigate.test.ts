import { parserSuite } from '../../test/helpers/parser-suite.js';

parserSuite('fortigate');
