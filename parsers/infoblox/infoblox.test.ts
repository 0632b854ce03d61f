import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parserSuite } from '../../test/helpers/parser-suite.js';
import { CORPUS_RECEIVED_AT, readLines } from '../../test/helpers/corpus.js';
import { REPO } from '../../test/helpers/paths.js';
import { loadRegistry } from '../../src/parsers/registry.js';
import { LineDecoder } from '../../src/parsers/decoder.js';

parserSuite('infoblox');

describe('infoblox and isc-dhcpd read a shared line the same way', () => {
  const files = [
    join(REPO, 'parsers/infoblox/testdata/infoblox.log'),
    join(REPO, 'parsers/infoblox/testdata/extra.log'),
    join(REPO, 'parsers/isc-dhcpd/testdata/isc-dhcpd.log'),
    join(REPO, 'parsers/isc-dhcpd/testdata/extra.log'),
  ];
  for (const file of files) {
    it(`same sightings from both parsers on ${file.slice(REPO.length)}`, async () => {
      const registry = await loadRegistry();
      const a = new LineDecoder(registry, 'infoblox', 'UTC');
      const b = new LineDecoder(registry, 'isc-dhcpd', 'UTC');
      readLines(file).forEach((text, i) => {
        const meta = { receivedAt: CORPUS_RECEIVED_AT, source: 'test', line: i + 1 };
        const sa = a.decode(text, meta).sightings.map((s) => ({ ...s, format: '' }));
        const sb = b.decode(text, meta).sightings.map((s) => ({ ...s, format: '' }));
        expect(sa, `line ${i + 1}: ${text}`).toEqual(sb);
      });
    });
  }
});
