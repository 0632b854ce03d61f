/**
 * The option profile's performance settings (scanProfiles): the real Qualys client against the real
 * emulator over loopback, the list parsed leniently, and a path Qualys does not serve mapped as
 * any other call's (the scheduler keeps such a failure from stopping its other calls: profile.ts).
 */
import { afterEach, describe, expect, it } from 'vitest';
import { pino } from 'pino';
import { startQualysEmulator, type EmulatorOptions } from '../src/emulator/qualys/index.js';
import { QualysClient, type QualysClientOptions } from '../src/scanners/qualys/index.js';
import { parseOptionProfiles } from '../src/scanners/qualys/option-profile-xml.js';
import { parseXml } from '../src/scanners/qualys/xml.js';
import { qualysFailureOutcome } from '../src/scanners/qualys/outcome.js';

const open: { close(): Promise<void> }[] = [];
afterEach(async () => {
  while (open.length) await open.pop()!.close();
});

async function setup(emu: EmulatorOptions, client: Partial<QualysClientOptions>) {
  const e = await startQualysEmulator({ speed: 1000, appliances: [{ name: 'sa-1', capacity: 10 }], ...emu });
  open.push(e);
  const c = new QualysClient({
    baseUrl: e.url, username: e.username, password: e.password, reconcileDelayMs: 0, retry: { maxAttempts: 2, baseDelayMs: 5, maxDelayMs: 10 }, ...client,
  }, { log: pino({ level: 'silent' }) });
  open.push(c);
  return { e, c };
}

const PROFILES: EmulatorOptions['optionProfiles'] = ['Initial Options', { title: 'Laptops - slow', hostsToScan: 10, parallelScaling: true }, { title: 'Servers', hostsToScan: 60 }];

describe('qualys option profile', () => {
  it('reads the hosts in parallel of the profiles launches name (its own by title or by id, one of a region by title), with one GET of the VM option profile list', async () => {
    const { e, c } = await setup({ optionProfiles: PROFILES }, { optionProfile: 'Laptops - slow' });
    expect(await c.scanProfiles([undefined, 'Servers', 'Nope'])).toEqual([{ title: 'Laptops - slow', hostsInParallel: 10, parallelScaling: true }, { title: 'Servers', hostsInParallel: 60, parallelScaling: false }, undefined]);
    const calls = e.state.requests.filter((r) => r.api === 'optionProfile');
    expect(calls).toEqual([expect.objectContaining({ path: '/api/2.0/fo/subscription/option_profile/vm/', method: 'GET', status: 200, params: expect.objectContaining({ action: 'list' }) })]);
    const byId = new QualysClient({ baseUrl: e.url, username: e.username, password: e.password, optionProfile: { id: 3 } }, { log: pino({ level: 'silent' }) });
    open.push(byId);
    expect(await byId.scanProfiles([undefined])).toEqual([{ title: 'Servers', hostsInParallel: 60, parallelScaling: false }]);
    // a bare title in the emulator's list: the Normal performance settings
    const plain = new QualysClient({ baseUrl: e.url, username: e.username, password: e.password, optionProfile: 'Initial Options' }, { log: pino({ level: 'silent' }) });
    open.push(plain);
    expect(await plain.scanProfiles([undefined])).toEqual([{ title: 'Initial Options', hostsInParallel: 30, parallelScaling: false }]);
  });

  it('a profile not in the list gives undefined (the scheduler keeps its configured value), as does no profile named', async () => {
    const { e, c } = await setup({ optionProfiles: PROFILES }, { optionProfile: 'Laptops' }); // a prefix of one listed: no match
    expect(await c.scanProfiles([undefined])).toEqual([undefined]);
    const none = new QualysClient({ baseUrl: e.url, username: e.username, password: e.password }, { log: pino({ level: 'silent' }) });
    open.push(none);
    const before = e.state.requests.length;
    expect(await none.scanProfiles([undefined])).toEqual([undefined]);
    expect(e.state.requests.length).toBe(before); // nothing to look for: no call
  });

  it('a path Qualys does not serve (a wrong scanner.endpoints.optionProfile) fails as a 404, whose outcome for any call is stop', async () => {
    const { c } = await setup({ optionProfiles: PROFILES }, { optionProfile: 'Servers', endpoints: { optionProfile: '/api/9.9/fo/subscription/option_profile/vm/' } });
    const err = await c.scanProfiles([undefined]).then(() => undefined, (x: unknown) => x);
    expect(err).toBeDefined();
    expect(qualysFailureOutcome(err, 'scanProfiles')).toMatchObject({ launched: 'no', next: 'stop' });
  });

  it('parses leniently: a profile without performance settings, or with a figure out of range, states none', () => {
    const xml = `<?xml version="1.0" encoding="UTF-8" ?>
<OPTION_PROFILES>
  <OPTION_PROFILE><BASIC_INFO><ID>7</ID><GROUP_NAME><![CDATA[No perf]]></GROUP_NAME><IS_DEFAULT>1</IS_DEFAULT></BASIC_INFO><SCAN><PORTS/></SCAN></OPTION_PROFILE>
  <OPTION_PROFILE><BASIC_INFO><ID>8</ID><GROUP_NAME>Odd</GROUP_NAME></BASIC_INFO><SCAN><PERFORMANCE><PARALLEL_SCALING>yes</PARALLEL_SCALING><HOSTS_TO_SCAN><SCANNER_APPLIANCES>0</SCANNER_APPLIANCES></HOSTS_TO_SCAN></PERFORMANCE></SCAN></OPTION_PROFILE>
  <OPTION_PROFILE><BASIC_INFO><ID>9</ID><GROUP_NAME>Fine</GROUP_NAME></BASIC_INFO><SCAN><PERFORMANCE><PARALLEL_SCALING>0</PARALLEL_SCALING><HOSTS_TO_SCAN><EXTERNAL_SCANNERS>15</EXTERNAL_SCANNERS><SCANNER_APPLIANCES>25</SCANNER_APPLIANCES></HOSTS_TO_SCAN></PERFORMANCE></SCAN></OPTION_PROFILE>
</OPTION_PROFILES>`;
    const r = parseXml(xml);
    if (!r.ok) throw new Error(r.reason);
    expect(parseOptionProfiles(r.doc)).toEqual([
      { id: '7', title: 'No perf', isDefault: true },
      { id: '8', title: 'Odd', isDefault: false },
      { id: '9', title: 'Fine', isDefault: false, hostsInParallel: 25, parallelScaling: false },
    ]);
    // one profile alone (no list wrapper in the parse) is still a list of one
    const one = parseXml('<OPTION_PROFILES><OPTION_PROFILE><BASIC_INFO><GROUP_NAME>A</GROUP_NAME></BASIC_INFO></OPTION_PROFILE></OPTION_PROFILES>');
    if (!one.ok) throw new Error(one.reason);
    expect(parseOptionProfiles(one.doc)).toEqual([{ title: 'A', isDefault: false }]);
  });
});
