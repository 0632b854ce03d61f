/**
 * `--format auto` over every corpus folder: each line is claimed either by that folder's own parser or by
 * nobody (windows-dhcpv6 belongs to windows-dhcp). Folders whose parser does not exist yet are skipped
 * with a printed reason, so the test holds at every commit while parsers are being added.
 */
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadRegistry } from '../src/parsers/registry.js';
import { LineDecoder } from '../src/parsers/decoder.js';
import { CORPUS_RECEIVED_AT, readLines } from './helpers/corpus.js';
import { CORPUS, REPO } from './helpers/paths.js';

/** corpus folder → the parser id that answers for it (the folder name unless listed) */
const OWNER: Record<string, string> = { 'windows-dhcpv6': 'windows-dhcp' };

const KNOWN_FOLDERS = ['isc-dhcpd', 'kea-dhcp4', 'dnsmasq', 'windows-dhcp', 'windows-dhcpv6', 'infoblox', 'cisco-asa', 'openvpn',
  'globalprotect', 'fortigate', 'strongswan'];

/**
 * Each corpus folder's lines.log, read from ../shared/corpus (public material is never copied into
 * the repository), and each parser's own cases, parsers/<id>/testdata/extra.log.
 */
function folders(): { folder: string; owner: string; file: string | undefined }[] {
  const names = existsSync(CORPUS)
    ? readdirSync(CORPUS).filter((d) => existsSync(join(CORPUS, d, 'lines.log'))).sort()
    : KNOWN_FOLDERS;
  const corpus = names.map((folder) => {
    const shared = join(CORPUS, folder, 'lines.log');
    return { folder, owner: OWNER[folder] ?? folder, file: existsSync(shared) ? shared : undefined };
  });
  const own = readdirSync(join(REPO, 'parsers')).sort().map((id) => {
    const extra = join(REPO, 'parsers', id, 'testdata', 'extra.log');
    return { folder: `parsers/${id}/testdata/extra.log`, owner: id, file: existsSync(extra) ? extra : undefined };
  }).filter((x) => x.file);
  return [...corpus, ...own];
}

describe('--format auto claims each corpus line for its own parser or for nobody', async () => {
  const registry = await loadRegistry();
  for (const { folder, owner, file } of folders()) {
    const reason = !registry.get(owner) ? `parser "${owner}" is not in the registry yet` : !file ? `no ${join(CORPUS, folder, 'lines.log')} (../shared is absent)` : undefined;
    if (reason) {
      console.log(`auto-detect: skipping corpus folder ${folder}: ${reason}`);
      it.skip(`${folder} (skipped: ${reason})`, () => {});
      continue;
    }
    it(`${folder}: every line is claimed by ${owner} or by nobody`, () => {
      const decoder = new LineDecoder(registry, 'auto', 'UTC');
      const wrong: string[] = [];
      let claimed = 0;
      const lines = readLines(file!);
      lines.forEach((text, i) => {
        const r = decoder.decode(text, { receivedAt: CORPUS_RECEIVED_AT, source: `corpus:${folder}`, line: i + 1 });
        if (r.format === owner) claimed++;
        else if (r.format !== undefined) wrong.push(`line ${i + 1} claimed by ${r.format}: ${text.slice(0, 160)}`);
      });
      console.log(`auto-detect: ${folder}: ${claimed}/${lines.length} lines claimed by ${owner}, ${wrong.length} by another parser`);
      expect(wrong).toEqual([]);
      expect(claimed).toBeGreaterThan(0);
    });
  }
});
