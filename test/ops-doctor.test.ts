/**
 * `onsight doctor`: the checklist against the dry-run scanner, against the Qualys emulator
 * (real HTTP, real rate-limit headers, an offline and a missing appliance), with unreadable
 * credentials, and through the CLI (exit codes; the password never printed).
 */
import { execFile, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseConfigText } from '../src/config/load.js';
import { runDoctor } from '../src/cli/doctor.js';
import Database from '../src/store/sqlite.js';
import { silentLogger } from '../src/log.js';
import { startQualysEmulator, type QualysEmulator } from '../src/emulator/qualys/index.js';
import { CLI } from './helpers/paths.js';

const dir = mkdtempSync(join(tmpdir(), 'onsight-doctor-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

class Out {
  text = '';
  write(s: string) {
    this.text += s;
    return true;
  }
}

function yaml(name: string, text: string): string {
  const p = join(dir, name);
  writeFileSync(p, text.replace(/STATE/g, join(dir, `${name}.db`)));
  return p;
}

const base = `
state: STATE
inputs: [{ type: syslog, listen: "udp://127.0.0.1:0", allow: ["10.0.0.0/8"] }]
policy: { scope: ["10.0.0.0/8"] }
http: { enabled: false }
`;

describe('doctor', () => {
  it('dry-run: all good, exit 0', async () => {
    // (the region covers the whole scope: part of a scope no region covers is a warning)
    const f = yaml('dry.yaml', `${base}regions: [{ name: emea, cidrs: ["10.0.0.0/8"], appliances: [emea-sa-1] }]\nscanner: { type: dry-run }\n`);
    const out = new Out();
    const code = await runDoctor(parseConfigText(`${base}regions: [{ name: emea, cidrs: ["10.0.0.0/8"], appliances: [emea-sa-1] }]\nscanner: { type: dry-run }\n`.replace(/STATE/g, join(dir, 'dry.db')), f), silentLogger(), out);
    console.log(out.text);
    expect(code).toBe(0);
    expect(out.text).toMatch(/^✓ config: 1 input\(s\), 1 region\(s\), scanner dry-run$/m);
    expect(out.text).toMatch(/^✓ appliance emea-sa-1 \(emea\): online, 0 scan\(s\) running, capacity 1$/m);
    expect(out.text).toMatch(/^✓ rate limit: none \(dry-run\)$/m);
    expect(out.text).not.toMatch(/^[✗!]/m);
    expect(out.text).toMatch(/0 failure\(s\) — all good\n$/);
  });

  it('a state file that is no database, or from a newer onsight, fails (it was "readable and writable", and run then failed), exit 1; an older one says run upgrades it', async () => {
    const cfg = (name: string) => parseConfigText(`${base}regions: [{ name: emea, cidrs: ["10.20.0.0/16"], appliances: [emea-sa-1] }]\nscanner: { type: dry-run }\n`.replace(/STATE/g, join(dir, name)), 'd.yaml');
    writeFileSync(join(dir, 'garbage.db'), Buffer.alloc(8192, 0x5a));
    let out = new Out();
    expect(await runDoctor(cfg('garbage.db'), silentLogger(), out)).toBe(1);
    expect(out.text).toMatch(/^✗ state: cannot read the state database .*garbage\.db: file is not a database: the file is damaged or not an onsight state/m);
    // the views say which file, too (they said "onsight: file is not a database")
    const yamlPath = yaml('garbage.yaml', `state: ${join(dir, 'garbage.db')}\npolicy: { scope: ["10.0.0.0/8"] }\nregions: [{ name: emea, cidrs: ["10.20.0.0/16"], appliances: [a] }]\n`);
    const hosts = spawnSync(process.execPath, [CLI, 'hosts', '--config', yamlPath], { encoding: 'utf8' });
    expect([hosts.status, hosts.stderr]).toEqual([1, expect.stringMatching(/cannot read the state database .*garbage\.db: file is not a database/)]);
    const newer = new Database(join(dir, 'newer.db'));
    newer.pragma('user_version = 999');
    newer.close();
    out = new Out();
    expect(await runDoctor(cfg('newer.db'), silentLogger(), out)).toBe(1);
    expect(out.text).toMatch(/^✗ state: .*newer\.db: schema 999, newer than this onsight knows \(\d+\): upgrade onsight$/m);
    const older = new Database(join(dir, 'older.db'));
    older.pragma('user_version = 1');
    older.close();
    out = new Out();
    expect(await runDoctor(cfg('older.db'), silentLogger(), out)).toBe(0);
    expect(out.text).toMatch(/^✓ state: .*older\.db \(\d+ KiB\) readable and writable, schema 1 \(onsight run upgrades it to \d+\)$/m);
  });

  it('a password source that cannot be read fails (named, not shown), exit 1', async () => {
    const text = `${base}regions: [{ name: emea, cidrs: ["10.20.0.0/16"], appliances: [emea-sa-1] }]
scanner: { type: qualys, url: "http://127.0.0.1:9", username: u, passwordEnv: ONSIGHT_TEST_NO_SUCH_VAR, optionProfile: p }
`;
    const out = new Out();
    const code = await runDoctor(parseConfigText(text.replace(/STATE/g, join(dir, 'nopw.db')), 'nopw.yaml'), silentLogger(), out, { env: {} });
    expect(code).toBe(1);
    expect(out.text).toMatch(/^✗ credentials: environment variable ONSIGHT_TEST_NO_SUCH_VAR is not set or empty$/m);
  });

  it('a systemd credential outside the service: fails with how to run doctor inside one', async () => {
    const text = `${base}regions: [{ name: emea, cidrs: ["10.20.0.0/16"], appliances: [emea-sa-1] }]
scanner: { type: qualys, url: "http://127.0.0.1:9", username: u, credential: qualys, optionProfile: p }
`;
    const out = new Out();
    const code = await runDoctor(parseConfigText(text.replace(/STATE/g, join(dir, 'cred.db')), 'cred.yaml'), silentLogger(), out, { env: {} });
    expect(code).toBe(1);
    expect(out.text).toMatch(/^✗ credentials: credential qualys: CREDENTIALS_DIRECTORY is not set .*systemd-run --pipe --wait -p LoadCredential=qualys:\/etc\/onsight\/qualys\.pass /m);
  });

  describe('against the Qualys emulator', () => {
    let emu: QualysEmulator;
    beforeAll(async () => {
      emu = await startQualysEmulator({
        password: 'S3cret-for-doctor!',
        appliances: [{ name: 'emea-sa-1' }, { name: 'emea-sa-2', online: false }, { name: 'apac-sa-1', online: false }],
        limits: { default: { limit: 300, windowSec: 3600, concurrency: 2 } },
      });
    });
    afterAll(async () => {
      await emu?.close();
    });
    const scanner = () => `scanner: { type: qualys, url: "${emu.url}", username: ${emu.username}, passwordEnv: DOCTOR_PW, optionProfile: "Initial Options" }\n`;

    it('reachability, rate-limit headroom, appliances online/offline/missing, regions without an online appliance, overlapping CIDRs', async () => {
      const text = `${base}regions:
  - { name: emea, cidrs: ["10.20.0.0/16"], appliances: [emea-sa-1, emea-sa-2] }
  - { name: emea-lab, cidrs: ["10.20.5.0/24"], appliances: [emea-sa-1], optionProfile: "Light - lab" }
  - { name: amer, cidrs: ["10.30.0.0/16"], appliances: [amer-sa-9] }
  - { name: apac, cidrs: ["10.40.0.0/16"], appliances: [apac-sa-1] }
${scanner()}`;
      const out = new Out();
      process.env.DOCTOR_PW = emu.password; // the Qualys client reads process.env
      const code = await runDoctor(parseConfigText(text.replace(/STATE/g, join(dir, 'emu.db')), 'emu.yaml'), silentLogger(), out);
      delete process.env.DOCTOR_PW;
      console.log(out.text);
      expect(code).toBe(1);
      const t = out.text;
      expect(t).toMatch(/^✓ credentials: environment variable DOCTOR_PW readable \(not shown\)$/m);
      expect(t).toMatch(/^✓ scanner API \(qualys\): reachable: appliance list \(3\) in \d+ ms$/m);
      expect(t).toMatch(/^✓ rate limit: \d+ of 300 calls left per 3600 s/m);
      expect(t).toMatch(/^✓ appliance emea-sa-1 \(emea\): online, 0 scan\(s\) running, capacity 1$/m);
      expect(t).toMatch(/^! appliance emea-sa-2 \(emea\): offline$/m);
      expect(t).toMatch(/^✗ appliance amer-sa-9 \(amer\): not in the scanner's appliance list \(it has: emea-sa-1, emea-sa-2, apac-sa-1\)$/m);
      expect(t).toMatch(/^! region amer: no online appliance/m);
      expect(t).toMatch(/^! region apac: no online appliance/m);
      expect(t).not.toMatch(/^! region emea:/m);
      // the option profiles launches name: the scanner's own (the emulator lists Initial Options at 30 hosts; the config says the default 10), a region's not listed
      expect(t).toMatch(/^! option profile: Initial Options scans 30 host\(s\) at once on an appliance; scheduler\.hostsInParallel says 10: onsight uses the profile's figure/m);
      expect(t).toMatch(/^! option profile Light - lab: not in the scanner's option profile list: onsight takes its hosts in parallel as scheduler\.hostsInParallel, 10$/m);
      expect(t).toMatch(/^! config: emu\.yaml:\d+: regions\[1\]\.cidrs\[0\]: 10\.20\.5\.0\/24 \(region "emea-lab"\) overlaps 10\.20\.0\.0\/16 \(region "emea"\)/m);
      expect(t).not.toContain(emu.password);
    });

    // async: the emulator answers from this process, so the child must not block its event loop
    const cli = (args: string[], env: NodeJS.ProcessEnv) => new Promise<{ status: number; stdout: string; stderr: string }>((resolve) => {
      execFile(process.execPath, [CLI, ...args], { encoding: 'utf8', env: { ...process.env, ...env }, timeout: 60_000 }, (err, stdout, stderr) => {
        resolve({ status: err ? Number((err as { code?: number }).code ?? 1) : 0, stdout, stderr });
      });
    });

    it('the CLI: exit 0 on a healthy setup, the password never printed', async () => {
      const f = yaml('emu-ok.yaml', `${base}regions: [{ name: emea, cidrs: ["10.20.0.0/16"], appliances: [emea-sa-1] }]\n${scanner()}`);
      const r = await cli(['doctor', '--config', f], { DOCTOR_PW: emu.password });
      expect(r.stdout).toMatch(/^onsight doctor — .*emu-ok\.yaml$/m);
      expect(r.stdout).toMatch(/0 failure\(s\)/);
      expect(r.status).toBe(0);
      expect(r.stdout + r.stderr).not.toContain(emu.password);
      const bad = await cli(['doctor', '--config', f], { DOCTOR_PW: 'wrong-password' });
      expect(bad.stdout).toMatch(/^✗ scanner API \(qualys\): not reachable or refused: /m);
      expect(bad.status).toBe(1);
      expect(bad.stdout + bad.stderr).not.toContain('wrong-password');
    });
  });
});
