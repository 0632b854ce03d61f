/**
 * A last scan dated ahead of our clock (a skewed platform, a bad date) must not hold a device for
 * good: the policy does not trust a date over a day ahead, both stores replace it with the next real
 * scan, and a scanner's date ahead of now is recorded as now (the scheduler's read of the host list).
 */
import { describe, expect, it as itAll } from 'vitest';
import { Policy } from '../src/policy/policy.js';
import type { Sighting } from '../src/sighting.js';
import { STORE_KINDS } from './helpers/stores.js';
import { mac, setup, T0 } from './helpers/scheduler.js';

const policy = new Policy({
  scope: ['10.0.0.0/8'], exclude: [], rescanAfter: 30 * 86400, rules: [], timezone: 'UTC',
  regions: [{ name: 'r', cidrs: ['10.0.0.0/8'], appliances: [{ name: 'a', maxScans: 1 }], maxConcurrentScans: 1 }],
});

describe.each(STORE_KINDS)('a last scan dated ahead, on $name', (kind) => {
  if (kind.skip) console.log(`skip future scan dates on ${kind.name}: ${kind.skip}`);
  const it = kind.skip ? itAll.skip : itAll;

  it('is not trusted by the policy, and the next real scan replaces it', async () => {
    const { inventory: inv } = await kind.open({ defaultLeaseS: 3600, maxSessionS: 86400, retentionS: 86400 });
    const now = T0;
    const [r] = await inv.commitBatch([{ kind: 'lease', ip: '10.1.0.5', mac: mac(5), at: new Date(now).toISOString(), durationS: 86400, format: 'isc-dhcpd', source: 't' } as Sighting]);
    await inv.markScanned([r.identityId!], Date.parse('2099-01-01T00:00:00Z'), 'scanner:vm-scan');
    const b = (await inv.binding(r.bindingId!))!;
    expect(b.lastScannedAt).toBe(Date.parse('2099-01-01T00:00:00Z'));
    expect(policy.evaluate(b, now)).toMatchObject({ due: true });
    // a date a few hours ahead (clock skew) still counts
    await inv.markScanned([r.identityId!], now + 3 * 3600_000, 'onsight');
    expect((await inv.binding(r.bindingId!))!.lastScannedAt).toBe(now + 3 * 3600_000);
    expect(policy.evaluate((await inv.binding(r.bindingId!))!, now)).toMatchObject({ due: false, reason: 'scanned-recently' });
  });
});

describe('the scheduler reads a scanner date ahead of its clock as now', () => {
  itAll('lastScannedFromScanner: the device is recorded scanned now, not in 2099', async () => {
    const { scanner, sched, see, inv, clock } = await setup({ lastScannedFromScanner: true });
    scanner.lastScannedDates.set('10.20.1.7', '2099-01-01T00:00:00Z');
    const r = await see({ ip: '10.20.1.7', mac: mac(7), durationS: 86400 });
    await sched.tick();
    expect((await inv.binding(r.bindingId!))!.lastScannedAt).toBe(clock.t);
  });
});
