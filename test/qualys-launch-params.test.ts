/**
 * `launchParams` (extra Qualys launch parameters) may add to a launch but never say what is scanned
 * or where: asset groups, tags, FQDNs or another appliance would reach past the scope, which is
 * checked against `ip` alone. Such a key is refused when the client is made; others go with every
 * launch, after which our own target list and appliance are set. Real client against the emulator.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { startQualysEmulator } from '../src/emulator/qualys/index.js';
import { QualysClient } from '../src/scanners/qualys/index.js';

const open: { close(): Promise<void> }[] = [];
afterEach(async () => {
  while (open.length) await open.pop()!.close();
});

describe('qualys launchParams', () => {
  it('a key that names targets or an appliance is refused, naming it', () => {
    for (const key of ['asset_groups', 'ip', 'FQDN', 'tag_set_include', 'iscanner_id']) {
      expect(() => new QualysClient({ baseUrl: 'https://qualysapi.qualys.eu', username: 'u', password: 'p', launchParams: { priority: '5', [key]: 'x' } }), key)
        .toThrow(new RegExp(`launchParams: ${key} is onsight's own`));
    }
  });

  it('other keys go with the launch; the targets are ours', async () => {
    const e = await startQualysEmulator({ seed: 1, appliances: [{ name: 'sa-1', capacity: 8 }] });
    open.push(e);
    const c = new QualysClient({ baseUrl: e.url, username: e.username, password: e.password, optionProfile: 'Initial Options', reconcileDelayMs: 0, allowTarget: (ip) => ip.startsWith('10.'), launchParams: { priority: '5' } });
    open.push(c);
    await c.launch({ intentId: 'lp-1', title: 'onsight lp-1', targets: ['10.9.0.1'], appliance: 'sa-1' });
    const [scan] = e.state.model.scans.filter((s) => s.title.includes('lp-1'));
    expect(scan.target).toBe('10.9.0.1');
    expect(scan.priority).toBe(5);
  });
});
