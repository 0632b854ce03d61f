import { parserSuite } from '../../test/helpers/parser-suite.js';

parserSuite('globalprotect');
