/**
 * A skip's end (`onsight skip --until`, `until` of POST /api/skip): a date already past or a zero
 * duration would silently lift a skip, and a bare number has no unit (it was taken as seconds):
 * both are refused with an error naming the option; `now` is the one way to lift a skip.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { validateConfig } from '../src/config/load.js';
import { Daemon } from '../src/daemon/daemon.js';
import { silentLogger } from '../src/log.js';
import { freePort } from './helpers/daemon.js';
import { udpSend } from './helpers/net.js';
import { CLI } from './helpers/paths.js';
import { until } from './helpers/wait.js';
import { dhcpAck } from './helpers/syslog-lines.js';

const dir = mkdtempSync(join(tmpdir(), 'onsight-skip-until-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('onsight skip --until (the CLI)', () => {
  const cfg = join(dir, 'onsight.yaml');
  beforeAll(() => writeFileSync(cfg, `state: ${join(dir, 'cli.db')}\npolicy: { scope: ["10.0.0.0/8"] }\nregions: [{ name: a, cidrs: ["10.0.0.0/8"], appliances: [x] }]\n`));
  const skip = (when: string) => spawnSync(process.execPath, [CLI, 'skip', '10.20.1.7', '--until', when, '--config', cfg], { encoding: 'utf8', timeout: 30_000 });

  it('refuses a date in the past, a zero duration and a bare number (exit 2), naming --until', () => {
    const past = skip('2020-01-01T00:00Z');
    expect(past.stderr).toMatch(/--until: 2020-01-01T00:00Z is not in the future \(2020-01-01T00:00:00\.000Z\); to lift a skip, say "now"/);
    expect(past.status).toBe(2);
    const zero = skip('0h');
    expect(zero.stderr).toMatch(/--until: 0h is not in the future/);
    expect(zero.status).toBe(2);
    const bare = skip('30');
    expect(bare.stderr).toMatch(/--until: "30" has no unit: a duration says it \(30m, 30h, 30d\), or give a date/);
    expect(bare.status).toBe(2);
  });

  it('reads a date whole and strictly: junk after it, a day no calendar has, a duration past any date are refused (exit 2), naming --until', () => {
    // Date.parse read "2027-01-01 junk" as June 1st ("jun"), "decade" as December, 2027-02-30 as March 2nd
    for (const when of ['2027-01-01 junk', '2027-01-01 decade', '2027-02-30', '2027-01-01T25:00', '99999999999999d']) {
      const r = skip(when);
      expect(r.stderr, when).toMatch(/^onsight: --until: /m);
      expect(r.status, when).toBe(2);
    }
  });
});

describe('POST /api/skip until', () => {
  const TOKEN = 'skip-until-token-4e1a';
  let daemon: Daemon;
  const post = (body: unknown) => new Promise<{ status: number; body: Record<string, unknown> }>((resolve, reject) => {
    const url = new URL(`${daemon.http!.url}/api/skip`);
    const req = request({ host: url.hostname, port: url.port, path: url.pathname, method: 'POST', headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' } }, (res) => {
      let b = '';
      res.setEncoding('utf8').on('data', (d: string) => (b += d)).on('end', () => resolve({ status: res.statusCode!, body: JSON.parse(b) as Record<string, unknown> }));
    });
    req.on('error', reject);
    req.end(JSON.stringify(body));
  });

  beforeAll(async () => {
    writeFileSync(join(dir, 'token'), `${TOKEN}\n`);
    const port = await freePort();
    const { config } = validateConfig({
      state: join(dir, 'api.db'), timezone: 'UTC',
      inputs: [{ type: 'syslog', listen: `udp://127.0.0.1:${port}`, format: 'auto' }],
      policy: { scope: ['10.0.0.0/8'], exclude: ['10.20.9.0/24'] }, // present, never launched
      regions: [{ name: 'emea', cidrs: ['10.20.0.0/16'], appliances: ['emea-sa-1'] }],
      scanner: { type: 'dry-run' },
      http: { listen: '127.0.0.1:0', tokens: [{ name: 'ops', file: join(dir, 'token') }] },
    });
    daemon = new Daemon({ config, log: silentLogger() });
    await daemon.start();
    await udpSend(port, dhcpAck('10.20.9.9', '52:54:00:ff:00:09', 'desk'));
    await until(() => daemon.ingest.counters.sightings >= 1, 10_000, 'the sighting committed', 50);
  });
  afterAll(async () => {
    await daemon?.stop();
  });

  it('400 for a past date, a zero duration or a bare number, naming "until"; a duration, and now, are taken', async () => {
    for (const [when, why] of [['2020-01-01T00:00Z', /^until: 2020-01-01T00:00Z is not in the future/], ['0s', /^until: 0s is not in the future/], ['3600', /^until: "3600" has no unit/]] as const) {
      const r = await post({ target: '10.20.9.9', until: when });
      expect(r.status, when).toBe(400);
      expect(String(r.body.error)).toMatch(why);
    }
    const later = await post({ target: '10.20.9.9', until: '2h' });
    expect(later.status).toBe(200);
    expect(Date.parse(String(later.body.until)) - Date.now()).toBeGreaterThan(7_000_000);
    const lifted = await post({ target: '10.20.9.9', until: 'now' });
    expect(lifted.status).toBe(200);
    expect(Date.parse(String(lifted.body.until))).toBeLessThanOrEqual(Date.now());
    expect(lifted.body.lifted).toBe(true);
  });

  it('a key it does not read is refused, not ignored ({"Until": "2h"} skipped for ever); a skip without an end says so, not "lifted"', async () => {
    const typo = await post({ target: '10.20.9.9', Until: '2h' });
    expect([typo.status, typo.body.error]).toEqual([400, 'unknown key "Until": /api/skip takes "target" and "until"']);
    const junk = await post({ target: '10.20.9.9', until: '2027-01-01 junk' });
    expect([junk.status, String(junk.body.error)]).toEqual([400, expect.stringMatching(/^until: expected a duration/)]);
    const forever = await post({ target: '10.20.9.9' });
    expect(forever.status).toBe(200);
    expect(forever.body).toMatchObject({ action: 'skip', untilLifted: true });
    expect(forever.body.until).toBeUndefined();
    expect((await post({ target: '10.20.9.9', until: 'now' })).body.lifted).toBe(true);
  });
});
