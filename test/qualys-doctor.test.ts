/**
 * `onsight doctor` against the Qualys emulator's account problems: each says what is wrong in
 * words, and a retired endpoint configured by hand is named as such.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { parseConfigText } from '../src/config/load.js';
import { runDoctor } from '../src/cli/doctor.js';
import { silentLogger } from '../src/log.js';
import { startQualysEmulator, type EmulatorOptions } from '../src/emulator/qualys/index.js';

const dir = mkdtempSync(join(tmpdir(), 'onsight-qdoctor-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

async function doctor(emu: EmulatorOptions, scannerExtra = ''): Promise<{ code: number; text: string }> {
  const e = await startQualysEmulator({ appliances: [{ name: 'emea-sa-1' }], ...emu });
  try {
    const text = `state: ${join(dir, `${Math.random().toString(36).slice(2)}.db`)}
inputs: []
policy: { scope: ["10.0.0.0/8"] }
http: { enabled: false }
regions: [{ name: emea, cidrs: ["10.20.0.0/16"], appliances: [emea-sa-1] }]
scanner: { type: qualys, url: "${e.url}", username: ${e.username}, passwordEnv: QDOCTOR_PW, optionProfile: "Initial Options"${scannerExtra} }
`;
    let out = '';
    process.env.QDOCTOR_PW = e.password; // the Qualys client reads process.env
    try {
      const code = await runDoctor(parseConfigText(text, 'q.yaml'), silentLogger(), { write: (s: string) => { out += s; return true; } });
      return { code, text: out };
    } finally {
      delete process.env.QDOCTOR_PW;
    }
  } finally {
    await e.close();
  }
}

describe('doctor says what is wrong with the Qualys account', () => {
  it('expired (HTTP 200, CODE 2001), registration not completed (409, 2003), SecureID (409, 2011)', async () => {
    for (const [account, words] of [
      ['expired', 'the Qualys account has expired'], ['registration', 'has not completed its registration'], ['securid', 'requires SecureID, which blocks API access'],
    ] as const) {
      const r = await doctor({ account });
      expect(r.code, account).toBe(1);
      expect(r.text, account).toMatch(new RegExp(`^✗ scanner API \\(qualys\\): not reachable or refused: .*${words}.*\\(ONSIGHT_QUALYS_AUTH\\)$`, 'm'));
    }
  });

  it('a scan list configured on the retired 2.0 version is refused by name', async () => {
    const r = await doctor({}, ', endpoints: { scanList: /api/2.0/fo/scan/ }');
    expect(r.text).toMatch(/^✗ scans: cannot list scans: .*\/api\/2\.0\/fo\/scan\/ does not serve action=list; it is served at \/api\/3\.0\//m);
  });
});
