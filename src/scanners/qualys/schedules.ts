/**
 * Keeps onsight's Qualys scheduled scans (`/api/2.0/fo/schedule/scan/`) equal to what the
 * scheduler wants: one list call, then a create, update or delete per schedule that differs.
 * Ours are the schedules whose title starts with the prefix; nobody else's is ever touched.
 * Every want is checked before the first call: a target outside the scope refuses the whole sync.
 */
import { OnsightError } from '../../errors.js';
import { ScheduleSyncIncomplete } from '../failure.js';
import type { Logger } from '../../log.js';
import type { RangeSchedule, ScheduleStatus } from '../types.js';
import { QualysApiError, QualysError, QualysRateLimitError, QualysXmlError, ScopeViolationError } from './errors.js';
import type { OptionProfileRef } from './options.js';
import { qualysFailureOutcome } from './outcome.js';
import { parseScheduleList, type QualysSchedule } from './schedule-xml.js';
import { rangeSet, rangeSetAddresses, rangeSetSize, rangeSetText, sameRangeSet, type RangeSet } from './targets.js';
import type { QualysTransport } from './transport.js';
import { simpleReturn } from './xml.js';

/** Addresses checked one by one against the scope per sync (a /12); larger wants are refused, not waved through. */
export const MAX_CHECKED_ADDRESSES = 1 << 20;
const MAX_TITLE = 2000;
const TIME = /^([01]\d|2[0-3]):([0-5]\d)$/;
/** end_after is 1 to 119 hours [U: the UI's pause takes 1–120 h; the page on cancel is cut off where it gives the range] */
const MAX_END_AFTER_MIN = 119 * 60;

export interface ScheduleSyncDeps {
  transport: QualysTransport;
  log: Logger;
  /** the policy's scope-and-exclusion test (the one launches pass) */
  allowTarget?: (ip: string) => boolean;
  /** the client's default option profile, for wants without one */
  optionProfile?: OptionProfileRef;
  /** time_zone_code of a GMT+0000 zone (sent with observe_dst=no) */
  timeZoneCode: string;
  now: () => number;
}

interface Wanted {
  want: RangeSchedule;
  ranges: RangeSet;
  hour: number;
  minute: number;
  profile?: OptionProfileRef;
}

type Change =
  | { kind: 'create'; w: Wanted }
  | { kind: 'update'; w: Wanted; have: QualysSchedule; retime: boolean; recur: boolean }
  | { kind: 'delete'; have: QualysSchedule };

export async function syncSchedules(d: ScheduleSyncDeps, want: RangeSchedule[], titlePrefix: string, exact = false): Promise<ScheduleStatus[]> {
  const wanted = checkWants(want, titlePrefix, d.allowTarget, d.optionProfile);
  // (exact: the one title; a prefix would also take another region's whose title begins with it)
  if (exact && want.some((w) => w.title !== titlePrefix)) throw new OnsightError('ONSIGHT_SCANNER', `a sync of the schedule "${titlePrefix}" alone wants another`);
  const r = await d.transport.call({ endpoint: 'schedule', method: 'GET', params: { action: 'list' }, idempotent: true, expect: ['SCHEDULE_SCAN_LIST_OUTPUT'] });
  const ours = parseScheduleList(r.doc).filter((s) => (exact ? s.title === titlePrefix : s.title.startsWith(titlePrefix))).sort((a, b) => Number(a.id) - Number(b.id) || a.id.localeCompare(b.id));
  const { changes, kept } = plan(wanted, ours, d.timeZoneCode);
  const done: ScheduleStatus[] = kept.map(({ w, have }) => status(w, have.id, 'kept'));
  let firstError: unknown;
  const unsure: string[] = [];
  let calls = 0;
  for (const c of changes) {
    try {
      calls++;
      done.push(await apply(d, c));
    } catch (err) {
      const title = c.kind === 'delete' ? c.have.title : c.w.want.title;
      if (mayHaveChanged(err)) unsure.push(title);
      // a problem of the whole API (rate limit, account, shutdown) ends the sync; one schedule's (a bad appliance name) does not hold up the others
      if (qualysFailureOutcome(err, 'syncSchedules').next !== 'retry') throw new ScheduleSyncIncomplete(err, done, unsure, calls);
      d.log.warn({ change: c.kind, title, err: { code: (err as OnsightError).code, message: (err as Error).message } }, 'qualys schedule change failed');
      firstError ??= err;
    }
  }
  // what was made is said with the failure: the scheduler holds the regions of the runs that will come
  if (firstError !== undefined) throw new ScheduleSyncIncomplete(firstError, done, unsure, calls);
  // in the order wanted, then those deleted
  const order = new Map(want.map((w, i) => [w.title, i]));
  const rank = (x: ScheduleStatus) => (x.action === 'deleted' ? want.length : order.get(x.title) ?? want.length);
  return done.sort((a, b) => rank(a) - rank(b));
}

/**
 * Might a failed change have been made? Not when the platform answered no (a CODE, a 4xx, the
 * credentials, the rate limit) or nothing was sent (the scope check); otherwise (an answer lost, a
 * 5xx, a create answered without its ID, a shutdown mid-call) perhaps, updates included: they are
 * sent as idempotent, so a lost answer is not marked ambiguous; nor is a refusal of the retry that
 * followed it (the transport marks that `earlierAttemptMayHaveRun`).
 */
function mayHaveChanged(err: unknown): boolean {
  if (err instanceof QualysError && err.earlierAttemptMayHaveRun) return true;
  if (err instanceof ScopeViolationError || err instanceof QualysRateLimitError) return false;
  if (err instanceof QualysApiError && err.qualysCode !== undefined && !err.ambiguous) return false;
  if (err instanceof QualysError && !err.ambiguous && err.status !== undefined && err.status >= 400 && err.status < 500) return false;
  return true;
}

/** Every want checked before any call: titles, times, and each target address against the scope. */
function checkWants(want: RangeSchedule[], prefix: string, allow: ((ip: string) => boolean) | undefined, defaultProfile: OptionProfileRef | undefined): Wanted[] {
  if (!prefix.trim()) throw new OnsightError('ONSIGHT_SCANNER', 'schedule sync without a title prefix would claim every schedule of the subscription');
  const titles = new Set<string>();
  const out: Wanted[] = [];
  let checked = 0;
  const refused: string[] = [];
  for (const w of want) {
    if (!w.title.startsWith(prefix)) throw new OnsightError('ONSIGHT_SCANNER', `schedule "${w.title}" does not start with the prefix "${prefix}"`);
    if (w.title.length > MAX_TITLE || w.title.trim() !== w.title || /\s{2,}|[\r\n]/.test(w.title)) {
      throw new OnsightError('ONSIGHT_SCANNER', `schedule title "${w.title.slice(0, 80)}" must be one line, without leading, trailing or doubled spaces, at most ${MAX_TITLE} characters`);
    }
    if (titles.has(w.title)) throw new OnsightError('ONSIGHT_SCANNER', `two wanted schedules share the title "${w.title}"`);
    titles.add(w.title);
    const time = TIME.exec(w.timeUtc);
    if (!time) throw new OnsightError('ONSIGHT_SCANNER', `schedule "${w.title}": time ${JSON.stringify(w.timeUtc)} is not HH:MM`);
    if (!w.appliance.trim()) throw new OnsightError('ONSIGHT_SCANNER', `schedule "${w.title}" names no appliance`);
    if (w.endAfterMin !== undefined && !(Number.isInteger(w.endAfterMin) && w.endAfterMin >= 60 && w.endAfterMin <= MAX_END_AFTER_MIN)) {
      throw new OnsightError('ONSIGHT_SCANNER', `schedule "${w.title}": a cut-off of ${w.endAfterMin} min is not a whole number of minutes from 60 to ${MAX_END_AFTER_MIN}`);
    }
    const ranges = rangeSet(w.targets);
    if (rangeSetSize(ranges) === 0 && ranges.bad.length === 0) throw new OnsightError('ONSIGHT_SCANNER', `schedule "${w.title}" has no targets`);
    checked += rangeSetSize(ranges);
    if (checked > MAX_CHECKED_ADDRESSES) {
      throw new OnsightError('ONSIGHT_SCANNER', `schedules name more than ${MAX_CHECKED_ADDRESSES} addresses: too many to check one by one against the scope`);
    }
    refused.push(...refusedRanges(w.targets, allow).map((t) => `${t} (in "${w.title}")`));
    out.push({ want: w, ranges, hour: Number(time[1]), minute: Number(time[2]), profile: w.optionProfile ?? defaultProfile });
  }
  // an unreadable item (an IPv6 range, a host name) cannot be checked: refused like an address outside the scope
  if (refused.length > 0) throw new ScopeViolationError(refused);
  return out;
}

/**
 * The items of `targets` that may not be scanned: unreadable (an IPv6 range, a host name: they
 * cannot be checked) or holding an address the scope test refuses. Named by the item that holds
 * them (a /16 outside the scope is one refusal, not 65 536).
 */
export function refusedRanges(targets: string[], allow: ((ip: string) => boolean) | undefined): string[] {
  const refused: string[] = [];
  for (const t of targets) {
    const one = rangeSet([t]);
    if (one.bad.length > 0 || (allow && !every(rangeSetAddresses(one), allow))) refused.push(t.trim());
  }
  return refused;
}

function every(items: Iterable<string>, test: (ip: string) => boolean): boolean {
  for (const x of items) if (!test(x)) return false;
  return true;
}

/** Qualys lists the `External` scanners as "External Scanner" (the guide's samples). */
function applianceName(name: string): string {
  const n = name.replace(/\s+/g, ' ').trim();
  return n === 'External Scanner' ? 'External' : n;
}

function plan(wanted: Wanted[], ours: QualysSchedule[], zone: string): { changes: Change[]; kept: { w: Wanted; have: QualysSchedule }[] } {
  const byTitle = new Map<string, QualysSchedule[]>();
  for (const s of ours) byTitle.set(s.title, [...(byTitle.get(s.title) ?? []), s]);
  const changes: Change[] = [];
  const kept: { w: Wanted; have: QualysSchedule }[] = [];
  const wantedTitles = new Set(wanted.map((w) => w.want.title));
  // deletions first: ours no longer wanted, and copies of a wanted one (a create whose answer was lost, then made again)
  for (const [title, list] of byTitle) {
    const extra = wantedTitles.has(title) ? list.slice(1) : list;
    for (const have of extra) changes.push({ kind: 'delete', have });
  }
  for (const w of wanted) {
    const have = byTitle.get(w.want.title)?.[0];
    // a cut-off to be removed: the parameters set one but say nothing of clearing it [U], so the schedule is made again
    if (have && have.endAfterMin !== undefined && w.want.endAfterMin === undefined) changes.push({ kind: 'delete', have });
    if (!have || (have.endAfterMin !== undefined && w.want.endAfterMin === undefined)) {
      changes.push({ kind: 'create', w });
      continue;
    }
    const retime = have.startHour !== w.hour || have.startMinute !== w.minute || have.timeZoneCode !== zone || have.dstSelected;
    const recur = have.occurrence !== 'daily' || have.frequencyDays !== 1;
    const differs = retime || recur || have.active !== (w.want.active !== false) || have.endAfterMin !== w.want.endAfterMin || applianceName(have.appliance) !== applianceName(w.want.appliance) ||
      !sameRangeSet(rangeSet([have.targetText]), w.ranges) || !sameProfile(have, w.profile);
    if (differs) changes.push({ kind: 'update', w, have, retime, recur });
    else kept.push({ w, have });
  }
  return { changes, kept };
}

/** A profile given by id cannot be compared with the listed title: only titles are compared. */
function sameProfile(have: QualysSchedule, p: OptionProfileRef | undefined): boolean {
  const title = typeof p === 'string' ? p : p && 'title' in p ? p.title : undefined;
  return title === undefined || have.optionTitle === title.trim();
}

function profileParams(p: OptionProfileRef | undefined): Record<string, string> {
  if (p === undefined) return {};
  if (typeof p === 'string') return { option_title: p };
  return 'id' in p ? { option_id: String(p.id) } : { option_title: p.title };
}

/** What a schedule runs: its targets, appliance and profile; whether active; its cut-off, if any. */
function scanParams(w: Wanted): Record<string, string> {
  const end = w.want.endAfterMin;
  return {
    active: w.want.active === false ? '0' : '1', ip: rangeSetText(w.ranges), iscanner_name: w.want.appliance.trim(), ...profileParams(w.profile),
    // hours plus minutes, as the list gives them back (END_AFTER, END_AFTER_MINS) [P]
    ...(end !== undefined ? { end_after: String(Math.floor(end / 60)), end_after_mins: String(end % 60) } : {}),
  };
}

function startParams(w: Wanted, zone: string): Record<string, string> {
  return { start_hour: String(w.hour), start_minute: String(w.minute), time_zone_code: zone, observe_dst: 'no' };
}

const DAILY = { occurrence: 'daily', frequency_days: '1' };

/** mm/dd/yyyy, the start_date form of the schedule parameters. */
function startDate(ms: number): string {
  const d = new Date(ms);
  const p = (n: number) => String(n).padStart(2, '0');
  return `${p(d.getUTCMonth() + 1)}/${p(d.getUTCDate())}/${d.getUTCFullYear()}`;
}

async function apply(d: ScheduleSyncDeps, c: Change): Promise<ScheduleStatus> {
  const post = (params: Record<string, string>, idempotent: boolean) =>
    d.transport.call({ endpoint: 'schedule', method: 'POST', params, idempotent, expect: ['SIMPLE_RETURN'] });
  if (c.kind === 'delete') {
    // not repeated blindly: a lost answer leaves it to the next sync's list
    await post({ action: 'delete', id: c.have.id }, false);
    d.log.info({ id: c.have.id, title: c.have.title }, 'qualys schedule deleted');
    return {
      title: c.have.title, targets: c.have.targetText ? c.have.targetText.split(',').map((t) => t.trim()) : [], appliance: c.have.appliance,
      optionProfile: c.have.optionTitle, timeUtc: timeOf(c.have), ...(c.have.endAfterMin !== undefined ? { endAfterMin: c.have.endAfterMin } : {}),
      id: c.have.id, active: false, action: 'deleted',
    };
  }
  if (c.kind === 'create') {
    // a create repeated after a lost answer would make a second schedule: never retried here (the next sync deletes a copy)
    const r = await post({ action: 'create', scan_title: c.w.want.title, ...scanParams(c.w), ...DAILY, ...startParams(c.w, d.timeZoneCode) }, false);
    const id = simpleReturn(r.doc).items.get('ID')?.[0];
    if (!id) throw new QualysXmlError(`qualys schedule create "${c.w.want.title}": answer without ID (the next sync finds it by its title)`, { retryable: true });
    d.log.info({ id, title: c.w.want.title, targets: rangeSetSize(c.w.ranges), appliance: c.w.want.appliance, timeUtc: c.w.want.timeUtc, endAfterMin: c.w.want.endAfterMin }, 'qualys schedule created');
    return status(c.w, id, 'created');
  }
  const params: Record<string, string> = { action: 'update', id: c.have.id, ...scanParams(c.w) };
  if (c.recur) Object.assign(params, DAILY);
  // the start time changes only with set_start_time=1 (and start_date with it)
  if (c.retime) Object.assign(params, { set_start_time: '1', start_date: startDate(d.now()), ...startParams(c.w, d.timeZoneCode) });
  await post(params, true);
  d.log.info({ id: c.have.id, title: c.w.want.title, retimed: c.retime, targets: rangeSetSize(c.w.ranges), appliance: c.w.want.appliance, timeUtc: c.w.want.timeUtc }, 'qualys schedule updated');
  return status(c.w, c.have.id, 'updated');
}

function status(w: Wanted, id: string, action: ScheduleStatus['action']): ScheduleStatus {
  const profile = typeof w.profile === 'string' ? w.profile : w.profile && 'title' in w.profile ? w.profile.title : undefined;
  return { ...w.want, optionProfile: w.want.optionProfile ?? profile, id, active: w.want.active !== false, action };
}

/** A listed schedule's UTC time of day: from its next launch, else its start time (local to its zone). */
function timeOf(s: QualysSchedule): string {
  const next = /T(\d{2}:\d{2})/.exec(s.nextLaunchUtc ?? '')?.[1];
  if (next) return next;
  const p = (n: number | undefined) => String(n ?? 0).padStart(2, '0');
  return `${p(s.startHour)}:${p(s.startMinute)}`;
}
