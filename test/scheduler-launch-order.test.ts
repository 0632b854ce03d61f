/**
 * Which region launches first when regions share an appliance (launch.ts launchReady): the fewest
 * appliances with room now first, then the one whose ready devices have waited longest in all.
 * Where other tools' scans held every slot but one, a small region reachable only by that
 * appliance took it scan after scan while a large region's devices waited for hours.
 */
import { describe, expect, it } from 'vitest';
import { mac, setup } from './helpers/scheduler.js';

const MIN = 60_000;
// 'big' reaches a shared appliance and one of its own; 'small' only the shared one
const regions = [
  { name: 'big', cidrs: ['10.40.0.0/16'], appliances: [{ name: 'shared', maxScans: 1 }, { name: 'big-own', maxScans: 1 }], maxConcurrentScans: 1 },
  { name: 'small', cidrs: ['10.50.0.0/16'], appliances: [{ name: 'shared', maxScans: 1 }], maxConcurrentScans: 1 },
];

async function twoRegions(ownOffline: boolean) {
  const s = await setup({ maxTargetsPerScan: 10 }, { regions });
  // other tools' scan leaves the shared appliance one slot (the one onsight probes for past what it
  // has seen run: appliances.ts capacity); big's own appliance is offline (or idle)
  s.scanner.appliancesState = [{ name: 'shared', online: true, runningScans: 1 }, { name: 'big-own', online: !ownOffline, runningScans: 0 }];
  return s;
}

const regionOf = (targets: string[]) => (targets[0].startsWith('10.40.') ? 'big' : 'small');

describe('launch order between regions that share an appliance', () => {
  it('the one free slot goes to the region whose devices have waited longest in all, not to the one with fewer appliances', async () => {
    const { scanner, sched, see, clock } = await twoRegions(true);
    for (let n = 1; n <= 4; n++) await see({ ip: `10.40.0.${n}`, mac: mac(n) }); // four devices in big
    clock.t += 20 * MIN;
    await see({ ip: '10.50.0.1', mac: mac(20) }); // one in small, now
    clock.t += MIN;
    await sched.tick();
    expect(scanner.launches.map((l) => [l.appliance, regionOf(l.targets)])).toEqual([['shared', 'big']]);
    expect(scanner.launches[0].targets).toHaveLength(4);
  });

  it('a small region\'s few devices that have waited long go before many that just came', async () => {
    const { scanner, sched, see, clock } = await twoRegions(true);
    await see({ ip: '10.50.0.1', mac: mac(20), durationS: 43_200 });
    await see({ ip: '10.50.0.2', mac: mac(21), durationS: 43_200 });
    clock.t += 3 * 60 * MIN; // two in small for three hours (360 device-minutes)
    for (let n = 1; n <= 5; n++) await see({ ip: `10.40.0.${n}`, mac: mac(n) }); // five in big, just now
    clock.t += 10 * MIN; // (50 device-minutes)
    await sched.tick();
    expect(scanner.launches.map((l) => [l.appliance, regionOf(l.targets)])).toEqual([['shared', 'small']]);
  });

  it('a region whose oldest device has waited four hours goes first, however many devices another has waiting (no region starves)', async () => {
    const { scanner, sched, see, clock } = await twoRegions(true);
    await see({ ip: '10.50.0.1', mac: mac(20), durationS: 43_200 }); // one in small, for five hours (capped at 240 min in a sum)
    clock.t += 2 * 60 * MIN;
    for (let n = 1; n <= 6; n++) await see({ ip: `10.40.0.${n}`, mac: mac(n), durationS: 43_200 }); // six in big, for three hours (1,080)
    clock.t += 3 * 60 * MIN;
    await sched.tick();
    expect(scanner.launches.map((l) => [l.appliance, regionOf(l.targets)])).toEqual([['shared', 'small']]);
  });

  it('with room on its own appliance too, the flexible region leaves the shared one to the region that has no other', async () => {
    const { scanner, sched, see, clock } = await twoRegions(false);
    for (let n = 1; n <= 4; n++) await see({ ip: `10.40.0.${n}`, mac: mac(n) });
    clock.t += 20 * MIN;
    await see({ ip: '10.50.0.1', mac: mac(20) });
    clock.t += MIN;
    await sched.tick();
    expect(scanner.launches.map((l) => [l.appliance, regionOf(l.targets)]).sort()).toEqual([['big-own', 'big'], ['shared', 'small']]);
  });
});
