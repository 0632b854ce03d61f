import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parserSuite } from '../../test/helpers/parser-suite.js';
import { CORPUS_RECEIVED_AT, readLines } from '../../test/helpers/corpus.js';
import { CORPUS, REPO } from '../../test/helpers/paths.js';
import { loadRegistry } from '../../src/parsers/registry.js';
import { LineDecoder } from '../../src/parsers/decoder.js';

parserSuite('infoblox');

describe('infoblox and isc-dhcpd read a shared line the same way', () => {
  const files = [
    join(CORPUS, 'infoblox/lines.log'),
    join(REPO, 'parsers/infoblox/testdata/extra.log'),
    join(CORPUS, 'isc-dhcpd/lines.log'),
    join(REPO, 'parsers/isc-dhcpd/testdata/extra.log'),
  ];
  for (const file of files) {
    if (!existsSync(file)) {
      console.log(`infoblox: SKIPPING ${file}: not found (the public corpus is read from ../shared)`);
      it.skip(`same sightings on ${file} (skipped: not found)`, () => {});
      continue;
    }
    it(`same sightings from both parsers on ${file.startsWith(REPO) ? file.slice(REPO.length) : file}`, async () => {
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
