/**
 * A region that closes stops our scans going there: a blackout that begins, and scan windows that
 * close with `scanWindowEnd: stop` (the default, `finish`, lets a scan launched inside a window run
 * to its end). Targets are requeued, not launched while the region is closed, and go again when it opens.
 */
import { describe, expect, it } from 'vitest';
import { validateConfig } from '../src/config/load.js';
import { mac, setup } from './helpers/scheduler.js';

const MIN = 60_000;
// T0 is 2026-11-23 10:00 UTC

describe('a region that closes stops our scans there', () => {
  it('a blackout that begins cancels the scan going, requeues its targets, launches nothing until it ends, then scans them', async () => {
    const { scanner, sched, see, clock, store } = await setup({}, { blackouts: ['2026-11-23T10:30..2026-11-23T12:00'] });
    await see({ ip: '10.20.1.1', mac: mac(1), durationS: 86400 });
    await see({ ip: '10.30.1.1', mac: mac(2), durationS: 86400 }); // amer: no blackout
    await sched.tick();
    const emea = scanner.launches.find((l) => l.targets.includes('10.20.1.1'))!;
    const amer = scanner.launches.find((l) => l.targets.includes('10.30.1.1'))!;
    clock.t += 29 * MIN;
    await sched.tick();
    expect(scanner.states.get(emea.ref)).toBe('running');
    clock.t += 2 * MIN; // 10:31
    await sched.tick();
    expect(scanner.states.get(emea.ref)).toBe('canceled');
    expect(scanner.states.get(amer.ref)).toBe('running');
    expect(sched.counters.canceledClosed).toBe(1);
    const stopped = (await store.recentDecisions(20)).find((d) => d.ip === '10.20.1.1' && d.decision === 'canceled');
    expect(stopped?.reason).toMatch(/scan stopped: region emea is in a blackout/);
    for (let k = 0; k < 80; k++) { // to 11:51: nothing launched in emea
      clock.t += MIN;
      await sched.tick();
    }
    expect(scanner.launches).toHaveLength(2);
    for (let k = 0; k < 15 && scanner.launches.length < 3; k++) {
      clock.t += MIN;
      if (k % 5 === 0) await see({ ip: '10.20.1.1', mac: mac(1), durationS: 86400, kind: 'renew' });
      await sched.tick();
    }
    expect(scanner.launches[2].targets).toEqual(['10.20.1.1']);
    expect(clock.t).toBeGreaterThanOrEqual(Date.parse('2026-11-23T12:00:00Z'));
  });

  it('scan windows that close: with scanWindowEnd stop the scan is canceled at the close; with the default it runs to its end', async () => {
    for (const scanWindowEnd of ['stop', undefined] as const) {
      const { scanner, sched, see, clock } = await setup({}, { scanWindows: ['* 08:00-11:00'], scanWindowEnd });
      await see({ ip: '10.20.1.1', mac: mac(1), durationS: 86400 });
      await sched.tick();
      const [scan] = scanner.launches;
      clock.t += 59 * MIN;
      await sched.tick();
      expect(scanner.states.get(scan.ref)).toBe('running');
      clock.t += 2 * MIN; // 11:01
      await sched.tick();
      expect({ scanWindowEnd, state: scanner.states.get(scan.ref), stopped: sched.counters.canceledClosed })
        .toEqual({ scanWindowEnd, state: scanWindowEnd === 'stop' ? 'canceled' : 'running', stopped: scanWindowEnd === 'stop' ? 1 : 0 });
    }
  });

  it('a stop whose cancel fails is tried again a minute later, not at every pass', async () => {
    const { scanner, sched, see, clock } = await setup({}, { blackouts: ['2026-11-23T10:30..2026-11-23T12:00'] });
    await see({ ip: '10.20.1.1', mac: mac(1), durationS: 86400 });
    await sched.tick();
    scanner.failing.set('cancel', 'refused');
    clock.t += 31 * MIN;
    const cancels = () => scanner.calls.filter((c) => c === 'cancel').length;
    for (let s = 0; s < 59; s++) {
      clock.t += 1000;
      await sched.tick();
    }
    expect(cancels()).toBe(1);
    scanner.failing.delete('cancel');
    clock.t += 2000;
    await sched.tick();
    expect(cancels()).toBe(2);
    expect(sched.counters.canceledClosed).toBe(1);
  });

  it('config: scanWindowEnd is finish or stop', () => {
    const base = { policy: { scope: ['10.0.0.0/8'] }, scanner: { type: 'dry-run' } };
    const region = { name: 'emea', cidrs: ['10.20.0.0/16'], appliances: ['emea-1'], scanWindows: ['Mon-Fri 07:00-19:00'] };
    expect(() => validateConfig({ ...base, regions: [{ ...region, scanWindowEnd: 'stop' }] })).not.toThrow();
    expect(() => validateConfig({ ...base, regions: [{ ...region, scanWindowEnd: 'cancel' }] })).toThrow(/scanWindowEnd/);
    expect(() => validateConfig({ ...base, regions: [{ ...region, scanWindows: undefined, scanWindowEnd: 'stop' }] })).toThrow(/regions\[0\]\.scanWindowEnd: stop needs scanWindows/);
  });
});
