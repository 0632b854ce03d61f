/**
 * The standard test of a parser plug-in folder: the public corpus (read from ../shared/corpus, never
 * copied into the repository; skipped with a printed reason when absent) and the plug-in's own
 * cases (testdata/extra.log, written from the vendor's documented format) must agree with their
 * annotations line for line.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { runCorpus, type CorpusResult } from './corpus.js';
import { CORPUS, REPO } from './paths.js';

function report(name: string, r: CorpusResult): string {
  const lines = r.mismatches.map((m) => `  line ${m.line}: ${m.why}\n    ${m.text.slice(0, 200)}`);
  return `${name}: ${r.agree}/${r.total} agree${lines.length ? '\n' + lines.join('\n') : ''}`;
}

/**
 * @param id parser id (its folder under parsers/)
 * @param corpusFolders the ../shared/corpus folders this parser answers for
 */
export function parserSuite(id: string, corpusFolders: string[] = [id]): void {
  const dir = join(REPO, 'parsers', id, 'testdata');
  describe(`parser ${id}`, () => {
    for (const folder of corpusFolders) {
      const log = join(CORPUS, folder, 'lines.log');
      const exp = join(CORPUS, folder, 'expected.jsonl');
      if (!existsSync(log) || !existsSync(exp)) {
        const reason = `${log} not found (the public corpus is read from ../shared, never copied here)`;
        console.log(`parser ${id}: SKIPPING corpus ${folder}: ${reason}`);
        it.skip(`public corpus ${folder} (skipped: ${reason})`, () => {});
        continue;
      }
      it(`agrees with the public corpus ${folder} (format ${id})`, async () => {
        const r = await runCorpus(log, exp, id);
        console.log(report(`${id} on ${folder}`, r));
        expect(r.total).toBeGreaterThan(0);
        expect(r.mismatches.map((m) => `line ${m.line}: ${m.why}`)).toEqual([]);
      });
      it(`agrees with the public corpus ${folder} under --format auto`, async () => {
        const r = await runCorpus(log, exp, 'auto');
        console.log(report(`auto on ${folder}`, r));
        const wrong = r.formats.map((f, i) => ({ f, i })).filter((x) => x.f !== undefined && x.f !== id);
        expect(wrong.map((x) => `line ${x.i + 1} claimed by ${x.f}`)).toEqual([]);
        expect(r.mismatches.map((m) => `line ${m.line}: ${m.why}`)).toEqual([]);
      });
    }
    const extra = join(dir, 'extra.log');
    it.runIf(existsSync(extra))('agrees with its own extra cases (from the vendor documentation)', async () => {
      const r = await runCorpus(extra, join(dir, 'extra.expected.jsonl'), id);
      console.log(report(`${id} extra`, r));
      expect(r.total).toBeGreaterThan(0);
      expect(r.mismatches.map((m) => `line ${m.line}: ${m.why}`)).toEqual([]);
    });
    it.runIf(existsSync(extra))('agrees with its own extra cases under --format auto', async () => {
      const r = await runCorpus(extra, join(dir, 'extra.expected.jsonl'), 'auto');
      console.log(report(`auto on ${id} extra`, r));
      const wrong = r.formats.map((f, i) => ({ f, i })).filter((x) => x.f !== undefined && x.f !== id);
      expect(wrong.map((x) => `line ${x.i + 1} claimed by ${x.f}`)).toEqual([]);
      expect(r.mismatches.map((m) => `line ${m.line}: ${m.why}`)).toEqual([]);
    });
  });
}
