/**
 * Lease times learned from renewals (src/inventory/lease-times.ts) when DHCP lines state none:
 * a pool whose clients renew every 6 h has 12-h leases, so a new device there is present 12 h
 * after its line, not `defaultLeaseS` (1 h). Both stores.
 */
import { describe, expect, it } from 'vitest';
import type { Sighting } from '../src/sighting.js';
import type { InventoryOptions } from '../src/store/types.js';
import { STORE_KINDS } from './helpers/stores.js';

const H = 3_600_000;
const T0 = Date.parse('2026-11-23T08:00:00Z');
const OPTS: InventoryOptions = { defaultLeaseS: 3600, maxSessionS: 86400, retentionS: 30 * 86400 };
const mac = (n: number) => `52:54:00:00:01:${n.toString(16).padStart(2, '0')}`;
const line = (kind: 'lease' | 'renew', ip: string, n: number, t: number): Sighting => ({ kind, ip, mac: mac(n), at: new Date(t).toISOString(), format: 'isc-dhcpd', source: 't' });

for (const kind of STORE_KINDS) {
  describe.skipIf(kind.skip)(`lease times learned from renewals (${kind.name})`, () => {
    it('three renewals 6 h after their leases teach the pool 12-h leases: a new device there is present 12 h, another pool still 1 h', async () => {
      const st = await kind.open(OPTS);
      const inv = st.inventory;
      for (let n = 1; n <= 3; n++) {
        await inv.commitBatch([line('lease', `10.1.2.${n}`, n, T0)]);
        await inv.commitBatch([line('renew', `10.1.2.${n}`, n, T0 + 6 * H)]);
      }
      const [fresh] = await inv.commitBatch([line('lease', '10.1.2.50', 50, T0 + 7 * H)]);
      expect((await inv.binding(fresh.bindingId!))!.expiresAt).toBe(T0 + 7 * H + 12 * H);
      const [other] = await inv.commitBatch([line('lease', '10.1.3.50', 51, T0 + 7 * H)]);
      expect((await inv.binding(other.bindingId!))!.expiresAt).toBe(T0 + 8 * H);
      // a line that states its lease time keeps it
      const [stated] = await inv.commitBatch([{ ...line('lease', '10.1.2.60', 60, T0 + 7 * H), durationS: 600 }]);
      expect((await inv.binding(stated.bindingId!))!.expiresAt).toBe(T0 + 7 * H + 600_000);
    });

    it('a device back after an absence (a new lease, not a renewal) teaches nothing; nor do fewer than three renewals, nor repeats within a minute', async () => {
      const st = await kind.open(OPTS);
      const inv = st.inventory;
      for (let n = 1; n <= 4; n++) {
        await inv.commitBatch([line('lease', `10.1.2.${n}`, n, T0)]);
        await inv.commitBatch([line('lease', `10.1.2.${n}`, n, T0 + 20 * H)]); // back the next day
      }
      await inv.commitBatch([line('lease', '10.1.2.9', 9, T0)]);
      await inv.commitBatch([line('renew', '10.1.2.9', 9, T0 + 30_000)]); // a repeat
      for (let n = 10; n <= 11; n++) {
        await inv.commitBatch([line('lease', `10.1.2.${n}`, n, T0)]);
        await inv.commitBatch([line('renew', `10.1.2.${n}`, n, T0 + 6 * H)]);
      }
      const [fresh] = await inv.commitBatch([line('lease', '10.1.2.50', 50, T0 + 21 * H)]);
      expect((await inv.binding(fresh.bindingId!))!.expiresAt).toBe(T0 + 22 * H);
    });

    it('laptops back in the morning (an INIT-REBOOT, logged as a renewal after the night) do not stretch the lease: the renewals that agree win', async () => {
      const st = await kind.open(OPTS);
      const inv = st.inventory;
      // three laptops renew at 6 h; five come back after nights of 15-20 h, each logged as a renewal
      for (let n = 1; n <= 3; n++) {
        await inv.commitBatch([line('lease', `10.1.2.${n}`, n, T0)]);
        await inv.commitBatch([line('renew', `10.1.2.${n}`, n, T0 + 6 * H + n * 60_000)]); // (minutes of log delay apart)
      }
      for (let n = 4; n <= 8; n++) {
        await inv.commitBatch([line('lease', `10.1.2.${n}`, n, T0)]);
        await inv.commitBatch([line('renew', `10.1.2.${n}`, n, T0 + (14 + n) * H)]);
      }
      const [fresh] = await inv.commitBatch([line('lease', '10.1.2.50', 50, T0 + 23 * H)]);
      const lease = (await inv.binding(fresh.bindingId!))!.expiresAt! - (T0 + 23 * H);
      expect(Math.abs(lease - 12 * H)).toBeLessThanOrEqual(5 * 60_000);
    });

    it('one client renewing every minute does not teach its pool a 5-min lease (identity probe: the devices queued there were dropped as gone); nor do two clients against more that agree', async () => {
      const st = await kind.open(OPTS);
      const inv = st.inventory;
      // six devices renew at 6 h: 12-h leases
      for (let n = 1; n <= 6; n++) {
        await inv.commitBatch([line('lease', `10.1.2.${n}`, n, T0)]);
        await inv.commitBatch([line('renew', `10.1.2.${n}`, n, T0 + 6 * H + n * 60_000)]);
      }
      // then one client renews its own address every 61 s for 40 min, and a second joins it for 10
      let t = T0 + 7 * H;
      for (let k = 0; k < 40; k++, t += 61_000) {
        await inv.commitBatch([line(k ? 'renew' : 'lease', '10.1.2.66', 66, t)]);
        if (k >= 30) await inv.commitBatch([line(k > 30 ? 'renew' : 'lease', '10.1.2.67', 67, t + 1000)]);
      }
      const [victim] = await inv.commitBatch([line('lease', '10.1.2.50', 50, t)]);
      expect(Math.abs((await inv.binding(victim.bindingId!))!.expiresAt! - t - 12 * H)).toBeLessThanOrEqual(10 * 60_000);
      // alone in a pool of its own, one client teaches nothing (the default hour holds), nor with a
      // second device that disagrees (a median of two devices is no vote: one back after a week set a
      // steady pool's lease to 14 days); with a third, the median of the devices (the lower of two
      // middles), not of the samples (3 of 300 s, 2 of 4 h, 1 of 2 h)
      let u = t + H;
      for (let k = 0; k < 10; k++, u += 61_000) await inv.commitBatch([line(k ? 'renew' : 'lease', '10.1.9.66', 90, u)]);
      const [alone] = await inv.commitBatch([line('lease', '10.1.9.50', 80, u)]);
      expect((await inv.binding(alone.bindingId!))!.expiresAt).toBe(u + H);
      for (let k = 0; k < 3; k++) await inv.commitBatch([line(k ? 'renew' : 'lease', '10.1.9.67', 91, u + k * 2 * H)]);
      const [two] = await inv.commitBatch([line('lease', '10.1.9.51', 81, u + 5 * H)]);
      expect((await inv.binding(two.bindingId!))!.expiresAt! - (u + 5 * H)).toBe(H);
      await inv.commitBatch([line('lease', '10.1.9.68', 92, u + 5 * H)]);
      await inv.commitBatch([line('renew', '10.1.9.68', 92, u + 6 * H)]);
      const [three] = await inv.commitBatch([line('lease', '10.1.9.52', 82, u + 7 * H)]);
      expect((await inv.binding(three.bindingId!))!.expiresAt! - (u + 7 * H)).toBe(2 * H);
    });

    it('inventory.learnLeaseTimes: false keeps defaultLeaseS', async () => {
      const st = await kind.open({ ...OPTS, learnLeaseTimes: false });
      const inv = st.inventory;
      for (let n = 1; n <= 3; n++) {
        await inv.commitBatch([line('lease', `10.1.2.${n}`, n, T0)]);
        await inv.commitBatch([line('renew', `10.1.2.${n}`, n, T0 + 6 * H)]);
      }
      const [fresh] = await inv.commitBatch([line('lease', '10.1.2.50', 50, T0 + 7 * H)]);
      expect((await inv.binding(fresh.bindingId!))!.expiresAt).toBe(T0 + 8 * H);
    });
  });
}
