/**
 * Results judged on the scanner's clock: a scheduler whose clock runs 15 min ahead of the
 * scanner's compared the scanner's host dates with its own launch time, so every host of a scan
 * shorter than 15 min looked "not found" and was scanned again (found by the review of session 42).
 * The skew is learned from the launch times the scanner lists for our scans (skew.ts).
 */
import { describe, expect, it } from 'vitest';
import { mac, setup } from './helpers/scheduler.js';

const AHEAD_MS = 15 * 60_000;

describe('a scheduler whose clock runs ahead of the scanner\'s', () => {
  it('credits a host its 10-min scan found: the host date is compared with the launch on the scanner\'s clock', async () => {
    const { scanner, sched, see, clock, inv } = await setup({ verifyResults: true, verifyDelayS: 60, idlePollS: 60, pickupS: 60 });
    const theirs = () => new Date(clock.t - AHEAD_MS).toISOString();
    const launch = scanner.launch.bind(scanner);
    scanner.launch = async (req) => {
      const r = await launch(req);
      scanner.times.set(r.scanRef, { launchedAt: theirs() });
      return r;
    };
    const r = await see({ ip: '10.20.1.1', mac: mac(1), durationS: 86400 });
    await sched.tick();
    expect(scanner.launches).toHaveLength(1);
    clock.t += 120_000;
    await sched.tick(); // a poll: the scan is listed running, launched 15 min before our clock said
    clock.t += 8 * 60_000;
    scanner.finish(scanner.launches[0].ref);
    scanner.lastScannedDates.set('10.20.1.1', theirs()); // the host, dated by the scanner as it finished
    for (let k = 0; k < 5; k++) {
      clock.t += 60_000;
      await sched.tick();
    }
    expect(sched.counters.noHost).toBe(0);
    expect((await inv.binding(r.bindingId!))?.lastScannedAt).toBeDefined();
  });
});
