/**
 * One place for the scheduler's options: the config's `scheduler:` section and the options the
 * scheduler runs with share their defaults, and the scanner's traits (not its name) shape them.
 */
import { describe, expect, it } from 'vitest';
import { validateConfig } from '../src/config/load.js';
import { buildSchedulerOptions } from '../src/scheduler/options.js';

const base = { policy: { scope: ['10.0.0.0/8'] }, regions: [{ name: 'emea', cidrs: ['10.20.0.0/16'], appliances: ['a-1'] }] };

describe('scheduler options', () => {
  it('the defaults of an absent scheduler section are the options the scheduler runs with (verifyResults true in both)', () => {
    const config = validateConfig(base).config;
    const o = buildSchedulerOptions({ regions: config.regions, maxTargetsPerScan: 50, scheduler: config.scheduler, scanner: { kind: 'real' } });
    const direct = buildSchedulerOptions({ regions: config.regions, maxTargetsPerScan: 50, scanner: { kind: 'real' } });
    expect(o).toEqual(direct);
    expect(o).toMatchObject({ verifyResults: true, secondLook: true, pollIntervalS: 60, reconcileGraceS: 180, maxScanAgeS: 86400, reserveCalls: 5, adaptivePolling: true, scannedVia: 'onsight' });
    expect(config.scheduler.verifyResults).toBe(true);
  });

  it('a pretend scanner has nothing to confirm and is credited under its kind; a paced one is followed at its pace', () => {
    const config = validateConfig({ ...base, scheduler: { pollIntervalS: 60, idlePollS: 3600 } }).config;
    const o = buildSchedulerOptions({ regions: config.regions, maxTargetsPerScan: 50, scheduler: config.scheduler, scanner: { kind: 'dry-run', pretend: true, pollPaceS: 5 } });
    expect(o).toMatchObject({ verifyResults: false, secondLook: false, scannedVia: 'dry-run', pollIntervalS: 5, idlePollS: 5 });
  });

  it('refuses an unknown scheduler key, as the config does', () => {
    expect(() => buildSchedulerOptions({ regions: [], maxTargetsPerScan: 1, scheduler: { pollIntervalSeconds: 5 } as never })).toThrow(/pollIntervalSeconds/);
    expect(() => validateConfig({ ...base, scheduler: { pollIntervalSeconds: 5 } })).toThrow(/pollIntervalSeconds/);
  });
});
