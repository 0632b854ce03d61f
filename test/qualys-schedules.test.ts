/**
 * Qualys scheduled scans: the client's syncSchedules against the real emulator over loopback HTTP
 * (create, keep with a single list call, update, delete, never touch another's schedule, refuse a
 * target outside the scope before any call, typed errors), the emulator running a schedule on its
 * scan clock at no API call, the emulator's schedule endpoints spoken to with plain HTTP, and the
 * list parser on the guide's own sample.
 */
import { join } from 'node:path';
import { request } from 'undici';
import { afterEach, describe, expect, it } from 'vitest';
import { loadEmulatorConfig, startQualysEmulator, type EmulatorOptions, type QualysEmulator } from '../src/emulator/qualys/index.js';
import { REPO } from './helpers/paths.js';
import { parseXml } from '../src/scanners/qualys/xml.js';
import {
  parseScheduleList, QualysApiError, QualysClient, ScopeViolationError, type QualysClientOptions,
} from '../src/scanners/qualys/index.js';
import { DryRunScanner } from '../src/scanners/dry-run/index.js';
import { ScheduleSyncIncomplete } from '../src/scanners/failure.js';
import type { RangeSchedule } from '../src/scanners/types.js';

const open: { close(): Promise<void> }[] = [];
afterEach(async () => {
  while (open.length) await open.pop()!.close();
});

const PREFIX = 'onsight-range ';
/** the policy's test: 10.0.0.0/8 in scope, 10.66.0.0/16 excluded */
const allowTarget = (ip: string) => ip.startsWith('10.') && !ip.startsWith('10.66.');
const T0 = Date.parse('2026-12-02T01:00:00Z');

async function setup(emu: EmulatorOptions = {}, client: Partial<QualysClientOptions> = {}) {
  const clock = { t: T0 };
  const e = await startQualysEmulator({
    now: () => clock.t,
    appliances: [{ name: 'sa-1', capacity: 4 }, { name: 'sa-2', capacity: 4 }],
    scanTiming: { submitDelaySec: 5, hostSecMin: 60, hostSecMax: 120, loadingSec: 10 },
    ...emu,
  });
  open.push(e);
  const c = new QualysClient({
    baseUrl: e.url, username: e.username, password: e.password, optionProfile: 'Initial Options', allowTarget,
    retry: { maxAttempts: 2, baseDelayMs: 5, maxDelayMs: 20 }, now: () => clock.t, ...client,
  });
  open.push(c);
  const calls = () => e.state.requests.filter((r) => r.api === 'schedule').map((r) => `${r.method} ${r.action}`);
  return { e, c, clock, calls };
}

const dc1: RangeSchedule = { title: `${PREFIX}dc1 02:00`, targets: ['10.20.0.0/29'], appliance: 'sa-1', timeUtc: '02:00' };
const dc2: RangeSchedule = { title: `${PREFIX}dc2 14:30`, targets: ['10.30.0.1', '10.30.0.8-10.30.0.9'], appliance: 'sa-2', timeUtc: '14:30' };

describe('qualys syncSchedules against the emulator', () => {
  it('creates the wanted schedules on an empty subscription: one list call, one create each, daily at the UTC time', async () => {
    const { e, c, calls } = await setup();
    const out = await c.syncSchedules([dc1, dc2], PREFIX);
    expect(out.map((s) => [s.title, s.action, s.active])).toEqual([[dc1.title, 'created', true], [dc2.title, 'created', true]]);
    expect(calls()).toEqual(['GET list', 'POST create', 'POST create']);
    const [a, b] = e.state.model.schedules;
    expect(out.map((s) => s.id)).toEqual([String(a.id), String(b.id)]);
    expect(a).toMatchObject({ title: dc1.title, active: true, targets: ['10.20.0.0-10.20.0.7'], appliances: ['sa-1'], optionTitle: 'Initial Options', frequencyDays: 1, startHour: 2, startMinute: 0, timeZoneCode: 'GB', observeDst: false });
    expect(b).toMatchObject({ targets: ['10.30.0.1', '10.30.0.8-10.30.0.9'], appliances: ['sa-2'], startHour: 14, startMinute: 30 });
    // the first runs: today at 02:00 and 14:30 UTC (the clock reads 01:00)
    expect(new Date(a.nextLaunch!).toISOString()).toBe('2026-12-02T02:00:00.000Z');
    expect(new Date(b.nextLaunch!).toISOString()).toBe('2026-12-02T14:30:00.000Z');
    expect(c.allowance('schedule').remaining).toBeDefined(); // the schedule API's own budget, fed by the headers
  });

  it('a second sync with the same want makes only the list call and keeps them', async () => {
    const { c, calls } = await setup();
    const first = await c.syncSchedules([dc1, dc2], PREFIX);
    const before = calls().length;
    const again = await c.syncSchedules([dc2, dc1], PREFIX);
    expect(calls().slice(before)).toEqual(['GET list']);
    expect(again.map((s) => s.action)).toEqual(['kept', 'kept']);
    expect(new Set(again.map((s) => s.id))).toEqual(new Set(first.map((s) => s.id)));
    // the same addresses written another way are the same targets
    const same = await c.syncSchedules([{ ...dc1, targets: ['10.20.0.0-10.20.0.3', '10.20.0.4/30'] }, dc2], PREFIX);
    expect(same.map((s) => s.action)).toEqual(['kept', 'kept']);
    // Qualys's internet scanners are listed as "External Scanner": still the same appliance
    const ext = { ...dc1, title: `${PREFIX}edge 04:00`, appliance: 'External', timeUtc: '04:00' };
    expect((await c.syncSchedules([dc1, dc2, ext], PREFIX)).map((s) => s.action)).toEqual(['kept', 'kept', 'created']);
    expect((await c.syncSchedules([dc1, dc2, ext], PREFIX)).map((s) => s.action)).toEqual(['kept', 'kept', 'kept']);
  });

  it('updates a schedule whose time or targets changed (the time with set_start_time), and keeps the other', async () => {
    const { e, c, calls } = await setup();
    const [made1, made2] = await c.syncSchedules([dc1, dc2], PREFIX);
    const before = e.state.requests.length;
    const out = await c.syncSchedules([{ ...dc1, timeUtc: '03:15' }, { ...dc2, targets: ['10.30.0.1', '10.30.0.20'] }], PREFIX);
    expect(out.map((s) => [s.id, s.action])).toEqual([[made1.id, 'updated'], [made2.id, 'updated']]);
    const sent = e.state.requests.slice(before).filter((r) => r.action === 'update');
    const retimed = sent.find((r) => r.params.id === made1.id)!;
    expect(retimed.params).toMatchObject({ set_start_time: '1', start_hour: '3', start_minute: '15', time_zone_code: 'GB', observe_dst: 'no', start_date: '12/02/2026' });
    const retargeted = sent.find((r) => r.params.id === made2.id)!;
    expect(retargeted.params.ip).toBe('10.30.0.1,10.30.0.20');
    expect(retargeted.params.set_start_time).toBeUndefined(); // its time did not change: its runs are not moved
    const [a, b] = e.state.model.schedules;
    expect(a).toMatchObject({ startHour: 3, startMinute: 15, targets: ['10.20.0.0-10.20.0.7'] });
    expect(new Date(a.nextLaunch!).toISOString()).toBe('2026-12-02T03:15:00.000Z');
    expect(b).toMatchObject({ startHour: 14, startMinute: 30, targets: ['10.30.0.1', '10.30.0.20'] });
    // only the one that changed is updated
    const n = calls().length;
    const third = await c.syncSchedules([{ ...dc1, timeUtc: '03:15' }, { ...dc2, targets: ['10.30.0.1', '10.30.0.20'], appliance: 'sa-1' }], PREFIX);
    expect(third.map((s) => s.action)).toEqual(['kept', 'updated']);
    expect(calls().slice(n)).toEqual(['GET list', 'POST update']);
    expect(e.state.model.schedules[1].appliances).toEqual(['sa-1']);
  });

  it('deletes a schedule of ours no longer wanted, never touches another\'s (title without the prefix), and reactivates ours', async () => {
    const theirs = { title: 'Weekly DMZ sweep', targets: ['10.20.0.0/24'], appliance: 'sa-1', startHour: 2, startMinute: 0, userLogin: 'secops_ab' };
    const oursInactive = { title: dc2.title, targets: ['10.30.0.1', '10.30.0.8-10.30.0.9'], appliance: 'sa-2', optionTitle: 'Initial Options', startHour: 14, startMinute: 30, active: false };
    const { e, c } = await setup({ schedules: [theirs, oursInactive] });
    const other = e.state.model.schedules[0];
    const snapshot = JSON.stringify(other);
    const made = await c.syncSchedules([dc1, dc2], PREFIX);
    expect(made.map((s) => s.action)).toEqual(['created', 'updated']); // ours was inactive: made active again
    expect(e.state.model.schedules.find((s) => s.title === dc2.title)!.active).toBe(true);
    const before = e.state.requests.length;
    const out = await c.syncSchedules([dc1], PREFIX);
    expect(out.map((s) => [s.title, s.action])).toEqual([[dc1.title, 'kept'], [dc2.title, 'deleted']]);
    expect(e.state.model.schedules.map((s) => s.title)).toEqual([theirs.title, dc1.title]);
    // nothing we sent named the other schedule, and it is as it was
    expect(e.state.requests.slice(before).filter((r) => r.params.id === String(other.id))).toHaveLength(0);
    expect(JSON.stringify(e.state.model.schedules[0])).toBe(snapshot);
    // an empty want deletes all of ours, still not theirs
    await c.syncSchedules([], PREFIX);
    expect(e.state.model.schedules.map((s) => s.title)).toEqual([theirs.title]);
  });

  it('mends what it finds: a copy of ours (a create whose answer was lost) is deleted, a schedule in another time zone is moved to UTC', async () => {
    const copy = { title: dc1.title, targets: ['10.20.0.0/29'], appliance: 'sa-1', optionTitle: 'Initial Options', startHour: 2 };
    const zoned = { title: dc2.title, targets: ['10.30.0.1', '10.30.0.8-10.30.0.9'], appliance: 'sa-2', optionTitle: 'Initial Options', startHour: 14, startMinute: 30, timeZoneCode: 'US-CA' };
    const { e, c } = await setup({ schedules: [copy, copy, zoned] });
    const [first, second, third] = e.state.model.schedules;
    const out = await c.syncSchedules([dc1, dc2], PREFIX);
    expect(out.map((s) => [s.id, s.action])).toEqual([[String(first.id), 'kept'], [String(third.id), 'updated'], [String(second.id), 'deleted']]);
    expect(e.state.model.schedules.map((s) => s.id)).toEqual([first.id, third.id]);
    expect(third).toMatchObject({ timeZoneCode: 'GB', startHour: 14, startMinute: 30 });
  });

  it('refuses a target outside the scope or inside an exclusion before any call, and a malformed want too', async () => {
    const { e, c } = await setup();
    for (const targets of [['192.168.5.0/30'], ['10.66.0.9'], ['10.65.255.250-10.66.0.2'], ['laptop.corp.example'], ['2001:db8::/64']]) {
      const err = await c.syncSchedules([dc1, { ...dc2, targets }], PREFIX).catch((x: unknown) => x);
      expect(err, targets[0]).toBeInstanceOf(ScopeViolationError);
      expect((err as ScopeViolationError).code).toBe('ONSIGHT_SCOPE_VIOLATION');
      expect(c.failureOutcome(err, 'syncSchedules')).toMatchObject({ launched: 'no', code: 'ONSIGHT_SCOPE_VIOLATION' });
      expect((err as ScopeViolationError).targets).toEqual([`${targets[0]} (in "${dc2.title}")`]); // named by the item, not address by address
    }
    for (const [want, prefix] of [[{ ...dc1, title: 'someone else 02:00' }, PREFIX], [{ ...dc1, timeUtc: '2:00' }, PREFIX], [{ ...dc1, timeUtc: '24:00' }, PREFIX], [dc1, '']] as const) {
      const err = await c.syncSchedules([want], prefix).catch((x: unknown) => x);
      expect((err as { code?: string }).code, JSON.stringify(want)).toBe('ONSIGHT_SCANNER');
    }
    const dup = await c.syncSchedules([dc1, dc1], PREFIX).catch((x: unknown) => x);
    expect((dup as { code?: string }).code).toBe('ONSIGHT_SCANNER');
    expect(e.state.requests).toHaveLength(0);
    expect(e.state.model.schedules).toHaveLength(0);
  });

  it('a bad appliance name is a typed error with a stable code and launched "no"; the other schedules are still made, and said with the failure', async () => {
    const { e, c } = await setup();
    const err = await c.syncSchedules([{ ...dc1, appliance: 'no-such-appliance' }, dc2], PREFIX).catch((x: unknown) => x);
    // the sync had begun: what it made goes with the failure that stopped it
    expect(err).toBeInstanceOf(ScheduleSyncIncomplete);
    const partial = err as ScheduleSyncIncomplete;
    expect(partial.failure).toBeInstanceOf(QualysApiError);
    expect(partial.failure).toMatchObject({ code: 'ONSIGHT_QUALYS_API', qualysCode: 1905, status: 400 });
    expect(partial.done.map((x) => [x.title, x.action, x.id === String(e.state.model.schedules[0]?.id)])).toEqual([[dc2.title, 'created', true]]);
    expect(partial.unsure).toEqual([]);
    expect(c.failureOutcome(err, 'syncSchedules')).toMatchObject({ launched: 'no', next: 'retry', code: 'ONSIGHT_QUALYS_API' });
    expect(e.state.model.schedules.map((s) => s.title)).toEqual([dc2.title]);
    // a time zone code the platform does not know: the same class of answer
    const { c: c2 } = await setup({}, { scheduleTimeZoneCode: 'UTC' });
    const tz = await c2.syncSchedules([dc1], PREFIX).catch((x: unknown) => x);
    expect((tz as ScheduleSyncIncomplete).failure).toMatchObject({ code: 'ONSIGHT_QUALYS_API', qualysCode: 1905 });
    expect((tz as Error).message).toContain('time_zone_code');
  });

  it('a change whose answer was lost is said unsure (it may have been made), an update too; one refused is not', async () => {
    const { e, c } = await setup();
    await c.syncSchedules([{ ...dc1, active: false }], PREFIX);
    // the reactivation is made and its answer dropped (an update is sent as idempotent, so retried, and dropped again); dc2's create refused (an unknown appliance)
    Object.assign(e.state.config.faults, { dropAfterShare: 1, apis: ['schedule'], actions: ['update'] });
    const err = await c.syncSchedules([dc1, { ...dc2, appliance: 'no-such-appliance' }], PREFIX).catch((x: unknown) => x) as ScheduleSyncIncomplete;
    expect(err).toBeInstanceOf(ScheduleSyncIncomplete);
    expect(e.state.model.schedules.find((x) => x.title === dc1.title)?.active).toBe(true);
    expect(err.unsure).toEqual([dc1.title]);
    expect(err.changeCalls).toBe(2);
    // a create answered without its ID (a cut answer): perhaps made
    const { e: e2, c: c2 } = await setup();
    Object.assign(e2.state.config.faults, { truncatedShare: 1, apis: ['schedule'], actions: ['create'] });
    const cut = await c2.syncSchedules([dc1], PREFIX).catch((x: unknown) => x) as ScheduleSyncIncomplete;
    expect(cut).toBeInstanceOf(ScheduleSyncIncomplete);
    expect(cut.unsure).toEqual([dc1.title]);
  });

  it('an update that may have been made (its answer lost, unreadable, a 500, a 202/1981), and the retry refused (throttled for long): still said unsure, not refused', async () => {
    // processed: whether the emulator made the change before its faulty answer (a 500 here comes before processing:
    // the client cannot tell, so it is still unsure)
    for (const [share, fault, processed] of [
      ['dropAfterShare', 'drop-after', true], ['malformedShare', 'malformed', true],
      ['serverErrorShare', 'server-500', false], ['processingShare', 'processing-1981', true],
    ] as const) {
      const { e, c } = await setup({}, { retry: { maxAttempts: 3, baseDelayMs: 5, maxDelayMs: 20 }, throttle: { maxRetries: 0, maxWaitSec: 1 } as QualysClientOptions['throttle'] });
      await c.syncSchedules([{ ...dc1, active: false }], PREFIX);
      // the first update is made and its answer dropped (or garbled); every call after that is throttled (409, a day's wait)
      const f = e.state.config.faults as unknown as Record<string, unknown>;
      const faulted = () => e.state.requests.some((r) => (r as { fault?: string }).fault === fault);
      Object.defineProperty(f, share, { get: () => (faulted() ? 0 : 1), configurable: true });
      Object.defineProperty(f, 'conflictShare', { get: () => (faulted() ? 1 : 0), configurable: true });
      Object.assign(f, { conflictToWaitSec: 100_000, apis: ['schedule'], actions: ['update'] });
      const err = await c.syncSchedules([dc1], PREFIX).catch((x: unknown) => x) as ScheduleSyncIncomplete;
      expect(err, fault).toBeInstanceOf(ScheduleSyncIncomplete);
      expect(faulted(), fault).toBe(true);
      expect(err.failure, fault).toMatchObject({ code: 'ONSIGHT_QUALYS_RATE_LIMIT', earlierAttemptMayHaveRun: true });
      expect(e.state.model.schedules.find((x) => x.title === dc1.title)?.active, fault).toBe(processed);
      // (without the mark: the rate limit said no, so it was taken as not made)
      expect(err.unsure, fault).toEqual([dc1.title]);
    }
  });

  it('problems of the whole API end the sync at once: wrong credentials stop, a spent budget waits', async () => {
    const { e } = await setup();
    const bad = new QualysClient({ baseUrl: e.url, username: e.username, password: 'wrong', optionProfile: 'Initial Options', allowTarget });
    open.push(bad);
    const auth = await bad.syncSchedules([dc1], PREFIX).catch((x: unknown) => x);
    expect(bad.failureOutcome(auth, 'syncSchedules')).toMatchObject({ launched: 'no', next: 'stop', code: 'ONSIGHT_QUALYS_AUTH' });
    const { c: limited, e: e2 } = await setup({ limits: { default: { limit: 300, windowSec: 3600, concurrency: 2 }, schedule: { limit: 2, windowSec: 3600, concurrency: 2 } } }, { throttle: { maxWaitSec: 0 } });
    const spent = await limited.syncSchedules([dc1, dc2], PREFIX).catch((x: unknown) => x); // list + create, then blocked
    const o = limited.failureOutcome(spent, 'syncSchedules');
    expect(o).toMatchObject({ launched: 'no', next: 'wait', code: 'ONSIGHT_QUALYS_RATE_LIMIT' });
    expect(o.untilMs).toBeGreaterThan(Date.now());
    expect(e2.state.model.schedules).toHaveLength(1);
    expect((spent as ScheduleSyncIncomplete).done.map((x) => x.action)).toEqual(['created']);
    expect(auth).not.toBeInstanceOf(ScheduleSyncIncomplete); // (refused at the list: nothing changed)
    expect(e2.state.stats('scan').accepted).toBe(0); // the schedule API has its own budget
  });
});

describe('qualys emulator: scheduled scans run on the scan clock', () => {
  it('runs a schedule at its time as a Scheduled scan with the schedule\'s title, at no API call; it ends and dates its hosts; again the next day', async () => {
    const { e, c, clock } = await setup();
    await c.syncSchedules([dc1], PREFIX);
    clock.t = Date.parse('2026-12-02T01:59:59Z');
    expect((await c.listScans({})).filter((s) => s.title === dc1.title)).toHaveLength(0);
    clock.t = Date.parse('2026-12-02T02:00:01Z');
    const [run, ...more] = await c.listScans({});
    expect(more).toHaveLength(0);
    expect(run).toMatchObject({ title: dc1.title, type: 'Scheduled', scheduled: true, launchedAt: '2026-12-02T02:00:00Z', targets: ['10.20.0.0', '10.20.0.1', '10.20.0.2', '10.20.0.3', '10.20.0.4', '10.20.0.5', '10.20.0.6', '10.20.0.7'] });
    expect(['submitted', 'queued', 'running']).toContain(run.state);
    expect(e.state.model.findScan(run.scanRef)!.appliances).toEqual(['sa-1']);
    // the run came from the platform: no launch was asked for, and the scan API counted only our two list calls
    expect(e.state.requests.filter((r) => r.action === 'launch')).toHaveLength(0);
    expect(e.state.stats('scan').accepted).toBe(2);
    expect((await c.lastScanned(['10.20.0.3']))[0].lastScannedAt).toBeUndefined();
    // 8 hosts of 60-120 s, 4 at a time, after 5 s: over within about 4 minutes
    clock.t = Date.parse('2026-12-02T02:30:00Z');
    const [done] = await c.listScans({ scanRefs: [run.scanRef] });
    expect(done).toMatchObject({ state: 'finished', processed: true });
    const dated = await c.lastScanned(['10.20.0.3', '10.20.0.7', '10.20.0.9']);
    for (const d of dated.slice(0, 2)) expect(Date.parse(d.lastScannedAt!)).toBeGreaterThan(Date.parse('2026-12-02T02:00:00Z'));
    expect(dated[2].lastScannedAt).toBeUndefined(); // not a target of the schedule
    // a day later it runs again; the API-launched list (type=API) never shows the runs
    clock.t = Date.parse('2026-12-03T02:00:30Z');
    const runs = (await c.listScans({})).filter((s) => s.title === dc1.title);
    expect(runs.map((s) => s.launchedAt)).toEqual(['2026-12-02T02:00:00Z', '2026-12-03T02:00:00Z']);
    expect(await c.findScansForIntent('dc1')).toHaveLength(0);
    expect(e.state.requests.filter((r) => r.action === 'launch')).toHaveLength(0);
  });

  it('launchRanges: a range scan by API (one call), titled exactly as asked, listed back with its addresses; a target outside the scope refused before any call', async () => {
    const { e, c, clock } = await setup();
    for (const targets of [['192.168.5.0/30'], ['10.66.0.9'], ['10.65.255.250-10.66.0.2'], ['laptop.corp.example']]) {
      const err = await c.launchRanges({ title: dc2.title, targets: ['10.30.0.1', ...targets], appliance: 'sa-2' }).catch((x: unknown) => x);
      expect(err, targets[0]).toBeInstanceOf(ScopeViolationError);
      expect((err as ScopeViolationError).targets).toEqual([targets[0]]);
      expect(c.failureOutcome(err, 'launch')).toMatchObject({ launched: 'no', code: 'ONSIGHT_SCOPE_VIOLATION' });
    }
    expect(e.state.requests).toHaveLength(0);
    const { scanRef } = await c.launchRanges({ title: dc2.title, targets: dc2.targets, appliance: 'sa-2' });
    expect(e.state.requests.filter((r) => r.action === 'launch')).toHaveLength(1);
    clock.t += 10_000;
    const [scan] = await c.listScans({ launchedAfter: new Date(T0 - 60_000) });
    // the title as given (no intent id appended): the scheduler finds it by the schedule's title
    expect(scan).toMatchObject({ scanRef, title: dc2.title, type: 'API', scheduled: false, targets: ['10.30.0.1', '10.30.0.8', '10.30.0.9'] });
    expect(e.state.model.findScan(scanRef)!.appliances).toEqual(['sa-2']);
    clock.t += 30 * 60_000;
    expect((await c.listScans({ scanRefs: [scanRef] }))[0]).toMatchObject({ state: 'finished', processed: true });
    expect(Date.parse((await c.lastScanned(['10.30.0.8']))[0].lastScannedAt!)).toBeGreaterThanOrEqual(T0);
    // a bad appliance: the vendor's refusal, mapped to a typed error that launched nothing
    const bad = await c.launchRanges({ title: dc2.title, targets: dc2.targets, appliance: 'no-such' }).catch((x: unknown) => x);
    expect(c.failureOutcome(bad, 'launch')).toMatchObject({ launched: 'no' });
  });

  it('a run that finds its appliance busy queues like any scan, and starts when the appliance frees', async () => {
    const { e, c, clock } = await setup({ appliances: [{ name: 'sa-q', capacity: 1, maxScans: 1 }], scanTiming: { submitDelaySec: 5, hostSecMin: 600, hostSecMax: 600, loadingSec: 10 } });
    await c.syncSchedules([{ title: `${PREFIX}q 02:00`, targets: ['10.20.1.1'], appliance: 'sa-q', timeUtc: '02:00' }], PREFIX);
    clock.t = Date.parse('2026-12-02T01:55:00Z');
    const { scanRef: busy } = await c.launch({ intentId: 'busy-1', title: 'onsight busy-1', targets: ['10.20.1.2'], appliance: 'sa-q' });
    clock.t = Date.parse('2026-12-02T02:01:00Z');
    const run = (await c.listScans({})).find((s) => s.title === `${PREFIX}q 02:00`)!;
    expect(run.state).toBe('queued');
    expect((await c.listScans({ scanRefs: [busy] }))[0].state).toBe('running');
    clock.t = Date.parse('2026-12-02T02:05:30Z'); // the first scan's host ended at 02:05:05
    expect((await c.listScans({ scanRefs: [run.scanRef] }))[0].state).toBe('running');
    expect(e.state.model.findScan(run.scanRef)!.jobs[0].startAt).toBe(Date.parse('2026-12-02T02:05:05Z'));
  });

  it('a cut-off (end_after + end_after_mins) cancels a run still going, which dates none of its hosts; kept as listed', async () => {
    const { e, c, clock, calls } = await setup({ scanTiming: { submitDelaySec: 5, hostSecMin: 3000, hostSecMax: 3000, loadingSec: 10 } });
    const cut: RangeSchedule = { ...dc1, targets: ['10.20.0.0/28'], endAfterMin: 65 }; // 16 hosts of 50 min, 4 at a time: 3 h 20 min
    const [made] = await c.syncSchedules([cut], PREFIX);
    expect(made).toMatchObject({ action: 'created', endAfterMin: 65 });
    const createReq = e.state.requests.find((r) => r.api === 'schedule' && r.action === 'create')!;
    expect([createReq.params.end_after, createReq.params.end_after_mins]).toEqual(['1', '5']);
    expect(e.state.model.schedules[0].endAfterMin).toBe(65);
    // listed back as END_AFTER / END_AFTER_MINS: the same cut-off, kept with the list call alone
    const before = calls().length;
    expect((await c.syncSchedules([cut], PREFIX)).map((s) => s.action)).toEqual(['kept']);
    expect(calls().slice(before)).toEqual(['GET list']);
    clock.t = Date.parse('2026-12-02T03:06:00Z');
    const [run] = (await c.listScans({})).filter((s) => s.title === cut.title);
    expect(run).toMatchObject({ state: 'canceled', endedAt: '2026-12-02T03:05:00Z' });
    // the first four hosts ended at 02:50:05, but a canceled scan is not processed here (whether Qualys processes one is not known: the simulator's scan.canceledProcessed)
    const dated = await c.lastScanned(['10.20.0.0', '10.20.0.9']);
    expect(dated.map((d) => d.lastScannedAt)).toEqual([undefined, undefined]);
    expect(e.state.model.findScan(run.scanRef)!.jobs.filter((j) => j.endAt !== undefined && j.endAt <= Date.parse('2026-12-02T03:05:00Z'))).toHaveLength(4);
    // a cut-off changed is an update; one removed is a delete and a create (the parameters cannot clear it)
    expect((await c.syncSchedules([{ ...cut, endAfterMin: 125 }], PREFIX)).map((s) => s.action)).toEqual(['updated']);
    expect(e.state.model.schedules[0].endAfterMin).toBe(125);
    const n = calls().length;
    expect((await c.syncSchedules([{ ...cut, endAfterMin: undefined }], PREFIX)).map((s) => s.action)).toEqual(['created', 'deleted']); // listed in the order wanted, the deleted last
    expect(calls().slice(n)).toEqual(['GET list', 'POST delete', 'POST create']);
    expect(e.state.model.schedules.map((x) => x.endAfterMin)).toEqual([undefined]);
    // a cut-off Qualys would not take is refused before any call
    await expect(c.syncSchedules([{ ...cut, endAfterMin: 30 }], PREFIX)).rejects.toThrow(/cut-off of 30 min/);
  });

  it('a schedule deactivated by the sync (active=0) skips its runs until activated again', async () => {
    const { e, c, clock } = await setup();
    await c.syncSchedules([dc1], PREFIX);
    const [off] = await c.syncSchedules([{ ...dc1, active: false }], PREFIX);
    expect(off).toMatchObject({ action: 'updated', active: false });
    expect(e.state.requests.filter((r) => r.action === 'update').map((r) => r.params.active)).toEqual(['0']);
    expect((await c.syncSchedules([{ ...dc1, active: false }], PREFIX)).map((s) => s.action)).toEqual(['kept']);
    clock.t = Date.parse('2026-12-02T02:30:00Z');
    expect((await c.listScans({})).filter((s) => s.title === dc1.title)).toHaveLength(0);
    const [on] = await c.syncSchedules([dc1], PREFIX);
    expect(on).toMatchObject({ action: 'updated', active: true });
    clock.t = Date.parse('2026-12-03T02:00:30Z');
    expect((await c.listScans({})).filter((s) => s.title === dc1.title).map((s) => s.launchedAt)).toEqual(['2026-12-03T02:00:00Z']);
  });

  it('an inactive schedule does not run; a deleted one runs no more', async () => {
    const { e, c, clock } = await setup({ schedules: [{ title: 'paused by someone', targets: ['10.20.2.1'], appliance: 'sa-1', startHour: 1, startMinute: 30, active: false }] });
    await c.syncSchedules([{ ...dc1, timeUtc: '01:10' }], PREFIX);
    clock.t = Date.parse('2026-12-02T01:20:00Z');
    e.state.model.advance();
    expect(e.state.model.scans.map((s) => s.title)).toEqual([dc1.title]);
    await c.syncSchedules([], PREFIX);
    clock.t = Date.parse('2026-12-04T03:00:00Z');
    e.state.model.advance();
    expect(e.state.model.scans.map((s) => s.title)).toEqual([dc1.title]);
  });
});

// ------------------------------------------------------------------------------------ the emulator's endpoints

const SCHED = '/api/2.0/fo/schedule/scan/';

async function call(e: QualysEmulator, params: Record<string, string>, method: 'GET' | 'POST' = 'POST', path = SCHED) {
  const qs = new URLSearchParams(params).toString();
  const headers: Record<string, string> = { authorization: `Basic ${Buffer.from(`${e.username}:${e.password}`).toString('base64')}`, 'x-requested-with': 'test' };
  if (method === 'POST') headers['content-type'] = 'application/x-www-form-urlencoded';
  const res = await request(`${e.url}${path}${method === 'GET' ? `?${qs}` : ''}`, { method, headers, body: method === 'POST' ? qs : undefined });
  return { status: res.statusCode, headers: res.headers, body: await res.body.text() };
}

const create = (over: Record<string, string> = {}) => ({
  action: 'create', scan_title: 'My Daily Scan', active: '1', option_title: 'Initial Options', ip: '10.10.10.10-10.10.10.20', iscanner_name: 'sa-1',
  occurrence: 'daily', frequency_days: '1', start_hour: '16', start_minute: '30', time_zone_code: 'US-CA', observe_dst: 'yes', ...over,
});
const codeOf = (body: string) => Number(/<CODE>(\d+)<\/CODE>/.exec(body)?.[1]);

describe('qualys emulator: the scheduled-scan endpoints', () => {
  it('creates, lists as SCHEDULE_SCAN_LIST_OUTPUT, updates and deletes, with the documented answers and the limit headers', async () => {
    const { e } = await setup({ optionProfiles: ['Initial Options'] }); // the clock reads 2026-12-02T01:00Z: 17:00 on 12/01 in California
    const made = await call(e, create());
    expect(made.status).toBe(200);
    expect(made.body).toContain('<TEXT>New scan scheduled successfully</TEXT>');
    expect(made.headers['x-ratelimit-limit']).toBeDefined();
    const id = /<KEY>ID<\/KEY>\s*<VALUE>(\d+)<\/VALUE>/.exec(made.body)![1];
    const list = await call(e, { action: 'list' }, 'GET');
    expect(list.body).toMatch(/<!DOCTYPE SCHEDULE_SCAN_LIST_OUTPUT SYSTEM "https:\/\/[^"]+\/api\/2.0\/fo\/schedule\/scan\/schedule_scan_list_output.dtd">/);
    // 16:30 in California (GMT-0800, daylight saving not modelled) is 00:30 UTC the next day: today's has passed
    expect(list.body).toContain(`<ID>${id}</ID><ACTIVE>1</ACTIVE><TITLE><![CDATA[My Daily Scan]]></TITLE>`);
    expect(list.body).toContain('<SCHEDULE><DAILY frequency_days="1" /><START_DATE_UTC>2026-12-02T00:30:00Z</START_DATE_UTC><START_HOUR>16</START_HOUR><START_MINUTE>30</START_MINUTE><NEXTLAUNCH_UTC>2026-12-03T00:30:00</NEXTLAUNCH_UTC>');
    expect(list.body).toContain('<TIME_ZONE><TIME_ZONE_CODE>US-CA</TIME_ZONE_CODE><TIME_ZONE_DETAILS>(GMT-0800) United States: America/Los_Angeles</TIME_ZONE_DETAILS></TIME_ZONE><DST_SELECTED>1</DST_SELECTED>');
    const parsed = parseScheduleList((parseXml(list.body) as { doc: Record<string, unknown> }).doc);
    expect(parsed).toEqual([expect.objectContaining({ id, title: 'My Daily Scan', active: true, targetText: '10.10.10.10-10.10.10.20', appliance: 'sa-1', optionTitle: 'Initial Options', occurrence: 'daily', frequencyDays: 1, startHour: 16, startMinute: 30, timeZoneCode: 'US-CA', dstSelected: true })]);
    const upd = await call(e, { action: 'update', id, active: '0' });
    expect(upd.body).toContain('<TEXT>Edit scheduled Scan Completed successfully</TEXT>');
    expect((await call(e, { action: 'list', active: '1' }, 'GET')).body).not.toContain('<SCAN>');
    expect((await call(e, { action: 'list', active: '0' }, 'GET')).body).toContain('<ACTIVE>0</ACTIVE>');
    const del = await call(e, { action: 'delete', id });
    expect(del.status).toBe(200);
    expect(e.state.model.schedules).toHaveLength(0);
    expect(codeOf((await call(e, { action: 'delete', id })).body)).toBe(1905);
  });

  it('starts with the schedules of the documented example options file, and lists them', async () => {
    const { port: _port, host: _host, ...fromFile } = loadEmulatorConfig(join(REPO, 'src/emulator/qualys/example.yaml'));
    const e = await startQualysEmulator({ ...fromFile, now: () => T0 });
    open.push(e);
    const body = (await call(e, { action: 'list' }, 'GET')).body;
    expect(body).toContain('<TITLE><![CDATA[Weekly DMZ sweep]]></TITLE><USER_LOGIN>secops_ab</USER_LOGIN><TARGET><![CDATA[10.20.0.0-10.20.0.255]]></TARGET>');
    expect(body).toContain('<DAILY frequency_days="7" />');
    expect(body).toContain('<NEXTLAUNCH_UTC>2026-12-02T02:00:00</NEXTLAUNCH_UTC>');
  });

  it('answers bad input with the vendor\'s codes: POST only, missing and invalid parameters, exclusive pairs, unknown ids', async () => {
    const { e } = await setup({ optionProfiles: ['Initial Options'] });
    const cases: [Record<string, string>, number, 'GET' | 'POST'][] = [
      [create(), 1908, 'GET'],
      [create({ scan_title: '' }), 1903, 'POST'],
      [create({ option_title: 'Nope' }), 1905, 'POST'],
      [{ ...create(), option_id: '1' }, 1904, 'POST'],
      [create({ ip: '' }), 1922, 'POST'],
      [create({ ip: '10.0.0.300' }), 1905, 'POST'],
      [create({ ip: '8.8.8.8' }), 1905, 'POST'], // not in the subscription
      [create({ iscanner_name: 'nope' }), 1905, 'POST'],
      [{ ...create(), iscanner_id: '1187' }, 1904, 'POST'],
      [create({ occurrence: 'weekly' }), 1905, 'POST'],
      [create({ occurrence: 'hourly' }), 1905, 'POST'],
      [create({ frequency_days: '0' }), 1905, 'POST'],
      [create({ frequency_days: '366' }), 1905, 'POST'],
      [create({ start_hour: '24' }), 1905, 'POST'],
      [create({ start_minute: '60' }), 1905, 'POST'],
      [create({ time_zone_code: 'Mars' }), 1905, 'POST'],
      [create({ observe_dst: 'maybe' }), 1905, 'POST'],
      [create({ active: '2' }), 1905, 'POST'],
      [create({ start_date: '2026-12-01' }), 1905, 'POST'],
      [{ action: 'update', active: '1' }, 1903, 'POST'],
      [{ action: 'update', id: '999' }, 1905, 'POST'],
      [{ action: 'delete' }, 1903, 'POST'],
      [{ action: 'launch' }, 1905, 'POST'],
    ];
    for (const [params, code, method] of cases) {
      const r = await call(e, params, method);
      expect(r.status, JSON.stringify(params)).toBe(400);
      expect(codeOf(r.body), JSON.stringify(params)).toBe(code);
    }
    const noTime = Object.fromEntries(Object.entries(create()).filter(([k]) => k !== 'start_hour'));
    expect(codeOf((await call(e, noTime)).body)).toBe(1903);
    expect(e.state.model.schedules).toHaveLength(0);
    // a start time changes only with set_start_time=1
    const id = /<VALUE>(\d+)<\/VALUE>/.exec((await call(e, create())).body)![1];
    expect(codeOf((await call(e, { action: 'update', id, start_hour: '3' })).body)).toBe(1903);
    expect((await call(e, { action: 'update', id, set_start_time: '1', start_hour: '3', time_zone_code: 'GB' })).status).toBe(200);
    expect(e.state.model.schedules[0]).toMatchObject({ startHour: 3, timeZoneCode: 'GB' });
    // a retired or never-served version gets the retired-version answer
    expect((await call(e, { action: 'list' }, 'GET', '/api/3.0/fo/schedule/scan/')).status).toBe(404);
  });
});

// ------------------------------------------------------------------------------------ the guide's sample

/**
 * Qualys API (VM, PC) User Guide, "List Scan Schedules" sample (as reproduced in a public client's
 * tests): a TITLE in CDATA, ISCANNER_NAME line-wrapped by the PDF, an empty ACTIVE, a tag-targeted
 * schedule without TARGET addresses, NEXTLAUNCH_UTC without `Z`.
 */
const GUIDE_SAMPLE = `<?xml version="1.0" encoding="UTF-8" ?>
<!DOCTYPE SCHEDULE_SCAN_LIST_OUTPUT SYSTEM "https://qualysapi.qualys.com/api/2.0/fo/schedule/scan/schedule_scan_list_output.dtd">
<SCHEDULE_SCAN_LIST_OUTPUT>
  <RESPONSE>
    <DATETIME>2017-12-01T19:26:50Z</DATETIME>
    <SCHEDULE_SCAN_LIST>
      <SCAN>
        <ID>160642</ID>
        <ACTIVE>1</ACTIVE>
        <TITLE><![CDATA[My Daily Scan]]></TITLE>
        <USER_LOGIN>qualys_ps</USER_LOGIN>
        <TARGET><![CDATA[10.10.10.10-10.10.10.20]]></TARGET>
        <NETWORK_ID><![CDATA[0]]></NETWORK_ID>
        <ISCANNER_NAME><![CDATA[External 
Scanner]]></ISCANNER_NAME>
        <USER_ENTERED_IPS>
          <RANGE>
            <START>10.10.10.10</START>
            <END>10.10.10.20</END>
          </RANGE>
        </USER_ENTERED_IPS>
        <OPTION_PROFILE>
          <TITLE><![CDATA[Initial Options]]></TITLE>
          <DEFAULT_FLAG>1</DEFAULT_FLAG>
        </OPTION_PROFILE>
        <PROCESSING_PRIORITY>0 - No Priority</PROCESSING_PRIORITY>
        <SCHEDULE>
          <DAILY frequency_days="1" />
          <START_DATE_UTC>2017-11-30T00:30:00Z</START_DATE_UTC>
          <START_HOUR>16</START_HOUR>
          <START_MINUTE>30</START_MINUTE>
          <NEXTLAUNCH_UTC>2017-12-02T00:30:00</NEXTLAUNCH_UTC>
          <TIME_ZONE>
            <TIME_ZONE_CODE>US-CA</TIME_ZONE_CODE>
            <TIME_ZONE_DETAILS>(GMT-0800) United States: America/Los_Angeles</TIME_ZONE_DETAILS>
          </TIME_ZONE>
          <DST_SELECTED>1</DST_SELECTED>
        </SCHEDULE>
      </SCAN>
      <SCAN>
        <ID>1340788</ID>
        <ACTIVE></ACTIVE>
        <TITLE><![CDATA[My_External_Scan]]></TITLE>
        <USER_LOGIN>utwrx_mp</USER_LOGIN>
        <TARGET><![CDATA[Asset Tags Included]]></TARGET>
        <ISCANNER_NAME><![CDATA[External Scanner]]></ISCANNER_NAME>
        <OPTION_PROFILE>
          <TITLE><![CDATA[Initial Options]]></TITLE>
          <DEFAULT_FLAG>1</DEFAULT_FLAG>
        </OPTION_PROFILE>
        <SCHEDULE>
          <DAILY frequency_days="364" />
          <START_DATE_UTC>2018-04-02T05:00:00Z</START_DATE_UTC>
          <START_HOUR>10</START_HOUR>
          <START_MINUTE>30</START_MINUTE>
          <TIME_ZONE>
            <TIME_ZONE_CODE>IN</TIME_ZONE_CODE>
            <TIME_ZONE_DETAILS>(GMT+0530) India: Asia/Calcutta</TIME_ZONE_DETAILS>
          </TIME_ZONE>
          <DST_SELECTED>0</DST_SELECTED>
        </SCHEDULE>
      </SCAN>
    </SCHEDULE_SCAN_LIST>
  </RESPONSE>
</SCHEDULE_SCAN_LIST_OUTPUT>`;

describe('the schedule list parser', () => {
  it('reads the guide\'s sample: white space in names squashed, an empty ACTIVE as inactive, the daily frequency from its attribute', () => {
    const r = parseXml(GUIDE_SAMPLE);
    expect(r.ok).toBe(true);
    const [a, b] = parseScheduleList((r as { doc: Record<string, unknown> }).doc);
    expect(a).toEqual({
      id: '160642', title: 'My Daily Scan', active: true, targetText: '10.10.10.10-10.10.10.20', appliance: 'External Scanner', optionTitle: 'Initial Options',
      userLogin: 'qualys_ps', occurrence: 'daily', frequencyDays: 1, startHour: 16, startMinute: 30, timeZoneCode: 'US-CA',
      timeZoneDetails: '(GMT-0800) United States: America/Los_Angeles', dstSelected: true, nextLaunchUtc: '2017-12-02T00:30:00',
    });
    expect(b).toMatchObject({ id: '1340788', active: false, targetText: 'Asset Tags Included', frequencyDays: 364, timeZoneCode: 'IN', dstSelected: false, nextLaunchUtc: undefined });
  });
});

describe('the dry-run scanner', () => {
  it('schedules nothing: says what it would keep, answers the want as created, launches no scan', async () => {
    const lines: string[] = [];
    const s = new DryRunScanner({ appliances: ['sa-1'], scanDurationS: 0, print: (l) => lines.push(l) });
    const out = await s.syncSchedules([dc1], PREFIX);
    expect(out).toEqual([{ ...dc1, id: 'dry-run-schedule/1', active: true, action: 'created' }]);
    expect(lines).toEqual([`DRY RUN: would create or update the daily scheduled scan "${dc1.title}" at 02:00 UTC on appliance sa-1 for 10.20.0.0/29`]);
    expect(await s.listScans({})).toEqual([]);
    await expect(s.syncSchedules([{ ...dc1, title: 'other' }], PREFIX)).rejects.toMatchObject({ code: 'ONSIGHT_SCANNER' });
  });
});
