/**
 * `/api/2.0/fo/schedule/scan/`: list, create, update and delete scheduled scans, as the guide's
 * "Scan Schedules" pages describe them (create answers "New scan scheduled successfully", update
 * "Edit scheduled Scan Completed successfully", both with ITEM ID; the list is
 * SCHEDULE_SCAN_LIST_OUTPUT). What the pages do not say is marked [U] and kept small: only daily
 * schedules on `ip` targets, no daylight saving, the delete answer's text, and the cut-off's
 * ranges (`end_after` 1–119 hours, `end_after_mins` 0–59, listed as END_AFTER and END_AFTER_MINS
 * inside SCHEDULE, as a public client reads them; a run still going then is canceled).
 */
import { isoSec } from './clock.js';
import type { EmulatorConfig } from './config.js';
import type { Answer, Ctx, Handlers } from './handlers.js';
import { normalisedList } from './ipset.js';
import { EXTERNAL, type EmSchedule, type EmulatorModel, type ScheduleTiming } from './model.js';
import { cdata, doc, el } from './xml.js';

const START_PARAMS = ['start_date', 'start_hour', 'start_minute', 'time_zone_code', 'observe_dst'];

export function scheduleCall(h: Handlers, c: EmulatorConfig, m: EmulatorModel, ctx: Ctx): Answer {
  const action = ctx.params.get('action');
  switch (action) {
    case 'list': return list(h, m, ctx);
    case 'create': return h.requirePost(ctx) ?? create(h, c, m, ctx);
    case 'update': return h.requirePost(ctx) ?? update(h, c, m, ctx);
    case 'delete': return h.requirePost(ctx) ?? remove(h, m, ctx);
    case undefined: return h.fail(ctx, 400, 1903, 'Missing required parameter(s): action');
    default: return h.fail(ctx, 400, 1905, `parameter action has invalid value: ${action}`);
  }
}

function intIn(ctx: Ctx, h: Handlers, name: string, lo: number, hi: number): number | Answer | undefined {
  const v = ctx.params.get(name);
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!/^\d+$/.test(v) || n < lo || n > hi) return h.fail(ctx, 400, 1905, `parameter ${name} has invalid value: ${v}`);
  return n;
}

const isAnswer = (x: unknown): x is Answer => typeof x === 'object' && x !== null && 'status' in x && 'body' in x;

/** occurrence with frequency_days ("must be specified together"); the emulator keeps daily schedules only. */
function recurrence(h: Handlers, ctx: Ctx, required: boolean): number | Answer | undefined {
  const p = ctx.params;
  const occ = p.get('occurrence');
  if (occ === undefined) {
    if (p.has('frequency_days')) return h.fail(ctx, 400, 1903, 'Missing required parameter(s): occurrence');
    return required ? h.fail(ctx, 400, 1903, 'Missing required parameter(s): occurrence') : undefined;
  }
  if (occ === 'weekly' || occ === 'monthly') return h.fail(ctx, 400, 1905, `the emulator schedules occurrence=daily only, not ${occ}`);
  if (occ !== 'daily') return h.fail(ctx, 400, 1905, `parameter occurrence has invalid value: ${occ}`);
  if (!p.has('frequency_days')) return h.fail(ctx, 400, 1903, 'Missing required parameter(s): frequency_days');
  return intIn(ctx, h, 'frequency_days', 1, 365);
}

/** start_hour (required), start_minute, time_zone_code (required, a known zone), observe_dst, start_date. */
function startTime(h: Handlers, c: EmulatorConfig, ctx: Ctx): Omit<ScheduleTiming, 'frequencyDays'> & { code: string; dst: boolean } | Answer {
  const p = ctx.params;
  const missing = ['start_hour', 'time_zone_code'].filter((k) => !p.has(k));
  if (missing.length) return h.fail(ctx, 400, 1903, `Missing required parameter(s): ${missing.join(', ')}`);
  const hour = intIn(ctx, h, 'start_hour', 0, 23);
  if (isAnswer(hour)) return hour;
  const minute = intIn(ctx, h, 'start_minute', 0, 59); // [U] optional, 0 when absent
  if (isAnswer(minute)) return minute;
  const code = p.get('time_zone_code')!;
  const zone = c.timeZones[code];
  if (!zone) return h.fail(ctx, 400, 1905, `parameter time_zone_code has invalid value: ${code}`);
  const dst = p.get('observe_dst') ?? 'no';
  if (dst !== 'yes' && dst !== 'no') return h.fail(ctx, 400, 1905, `parameter observe_dst has invalid value: ${dst}`);
  let startDate: ScheduleTiming['startDate'];
  if (p.has('start_date')) {
    const d = /^(\d{2})\/(\d{2})\/(\d{4})$/.exec(p.get('start_date')!);
    if (!d || Number(d[1]) < 1 || Number(d[1]) > 12 || Number(d[2]) < 1 || Number(d[2]) > 31) return h.fail(ctx, 400, 1905, `parameter start_date has invalid value: ${p.get('start_date')}`);
    startDate = { y: Number(d[3]), m: Number(d[1]), d: Number(d[2]) };
  }
  return { startHour: hour!, startMinute: minute ?? 0, offsetMin: zone.offsetMin, startDate, code, dst: dst === 'yes' };
}

/** end_after (hours, 1–119) plus end_after_mins (0–59, only with end_after [U]): minutes, or undefined when neither is given. */
function endAfter(h: Handlers, ctx: Ctx): number | Answer | undefined {
  const hours = intIn(ctx, h, 'end_after', 1, 119);
  if (isAnswer(hours)) return hours;
  const mins = intIn(ctx, h, 'end_after_mins', 0, 59);
  if (isAnswer(mins)) return mins;
  if (hours === undefined && mins !== undefined) return h.fail(ctx, 400, 1903, 'Missing required parameter(s): end_after');
  return hours === undefined ? undefined : hours * 60 + (mins ?? 0);
}

/** 0 or 1. */
function flag(h: Handlers, ctx: Ctx, name: string): boolean | Answer | undefined {
  const v = ctx.params.get(name);
  if (v === undefined) return undefined;
  if (v !== '0' && v !== '1') return h.fail(ctx, 400, 1905, `parameter ${name} has invalid value: ${v}`);
  return v === '1';
}

function create(h: Handlers, c: EmulatorConfig, m: EmulatorModel, ctx: Ctx): Answer {
  const p = ctx.params;
  const title = p.get('scan_title');
  if (!title) return h.fail(ctx, 400, 1903, 'Missing required parameter(s): scan_title'); // [U] the UI requires a title
  if (title.length > 2000) return h.fail(ctx, 400, 1905, 'parameter scan_title is longer than 2000 characters');
  if (!p.has('active')) return h.fail(ctx, 400, 1903, 'Missing required parameter(s): active');
  const active = flag(h, ctx, 'active');
  if (isAnswer(active)) return active;
  const option = h.optionProfile(ctx);
  if (isAnswer(option)) return option;
  if (p.has('iscanner_name') && p.has('iscanner_id')) return h.fail(ctx, 400, 1904, 'Specify only one of iscanner_id or iscanner_name');
  const targets = h.ipTargets(ctx);
  if (isAnswer(targets)) return targets;
  const names = h.scanners(ctx, false);
  if (isAnswer(names)) return names;
  const kept = h.inSubscription(ctx, targets);
  if (isAnswer(kept)) return kept;
  const freq = recurrence(h, ctx, true);
  if (isAnswer(freq)) return freq;
  const start = startTime(h, c, ctx);
  if (isAnswer(start)) return start;
  const end = endAfter(h, ctx);
  if (isAnswer(end)) return end;
  const sc = m.addSchedule(
    { title, active: active!, targets: normalisedList(kept), appliances: names, optionTitle: option.title, userLogin: ctx.userLogin, timeZoneCode: start.code, observeDst: start.dst },
    { ...start, frequencyDays: freq! },
  );
  if (end !== undefined) sc.endAfterMin = end;
  return h.ok(ctx, 'New scan scheduled successfully', [['ID', String(sc.id)]]);
}

function update(h: Handlers, c: EmulatorConfig, m: EmulatorModel, ctx: Ctx): Answer {
  const p = ctx.params;
  const id = p.get('id');
  if (!id) return h.fail(ctx, 400, 1903, 'Missing required parameter(s): id');
  const sc = m.findSchedule(id);
  if (!sc) return h.fail(ctx, 400, 1905, `parameter id has invalid value: ${id}`); // [U] the real text is not published
  // validate everything before changing anything
  const title = p.get('scan_title');
  if (title !== undefined && (title === '' || title.length > 2000)) return h.fail(ctx, 400, 1905, 'parameter scan_title has invalid value');
  const active = flag(h, ctx, 'active');
  if (isAnswer(active)) return active;
  const option = p.has('option_id') || p.has('option_title') ? h.optionProfile(ctx) : undefined;
  if (isAnswer(option)) return option;
  if (p.has('iscanner_name') && p.has('iscanner_id')) return h.fail(ctx, 400, 1904, 'Specify only one of iscanner_id or iscanner_name');
  const names = p.has('iscanner_name') || p.has('iscanner_id') ? h.scanners(ctx, false) : undefined;
  if (isAnswer(names)) return names;
  let kept: string[] | undefined;
  if (p.has('ip')) {
    const targets = h.ipTargets(ctx);
    if (isAnswer(targets)) return targets;
    const k = h.inSubscription(ctx, targets);
    if (isAnswer(k)) return k;
    kept = k;
  }
  const freq = recurrence(h, ctx, false);
  if (isAnswer(freq)) return freq;
  const setStart = flag(h, ctx, 'set_start_time');
  if (isAnswer(setStart)) return setStart;
  const startGiven = START_PARAMS.filter((k) => p.has(k));
  // [U] the start time changes only with set_start_time=1 (clients send it so; the page does not say what happens without it)
  if (startGiven.length && !setStart) return h.fail(ctx, 400, 1903, `Missing required parameter(s): set_start_time (to change ${startGiven.join(', ')})`);
  const start = setStart ? startTime(h, c, ctx) : undefined;
  if (isAnswer(start)) return start;
  const end = endAfter(h, ctx);
  if (isAnswer(end)) return end;

  if (title !== undefined) sc.title = title;
  if (option) sc.optionTitle = option.title;
  if (names) sc.appliances = names;
  if (kept) sc.targets = normalisedList(kept);
  if (active !== undefined) sc.active = active;
  if (end !== undefined) sc.endAfterMin = end;
  if (start) {
    sc.timeZoneCode = start.code;
    sc.observeDst = start.dst;
    m.retime(sc, { ...start, frequencyDays: freq ?? sc.frequencyDays });
  } else if (freq !== undefined) {
    sc.frequencyDays = freq;
    m.plan(sc);
  } else m.plan(sc);
  return h.ok(ctx, 'Edit scheduled Scan Completed successfully', [['ID', String(sc.id)]]);
}

function remove(h: Handlers, m: EmulatorModel, ctx: Ctx): Answer {
  const id = ctx.params.get('id');
  if (!id) return h.fail(ctx, 400, 1903, 'Missing required parameter(s): id');
  const sc = m.findSchedule(id);
  if (!sc) return h.fail(ctx, 400, 1905, `parameter id has invalid value: ${id}`);
  m.deleteSchedule(sc);
  return h.ok(ctx, 'Scan schedule deleted successfully', [['ID', id]]); // [U] the text is not published
}

function list(h: Handlers, m: EmulatorModel, ctx: Ctx): Answer {
  const p = ctx.params;
  const active = flag(h, ctx, 'active');
  if (isAnswer(active)) return active;
  const now = m.advance();
  const ids = p.has('id') ? new Set(p.get('id')!.split(',').map((x) => x.trim())) : undefined;
  const shown = m.schedules.filter((s) => (!ids || ids.has(String(s.id))) && (active === undefined || s.active === active));
  const body = shown.map((s) => scheduleXml(s, m)).join('\n');
  const listXml = shown.length ? `    <SCHEDULE_SCAN_LIST>\n${body}\n    </SCHEDULE_SCAN_LIST>` : '';
  return { status: 200, body: doc('SCHEDULE_SCAN_LIST_OUTPUT', '/api/2.0/fo/schedule/scan/schedule_scan_list_output.dtd', ctx.host, `  <RESPONSE>\n    ${el('DATETIME', isoSec(now))}\n${listXml}\n  </RESPONSE>`) };
}

/** One SCAN in the order of the guide's sample; NEXTLAUNCH_UTC without `Z`, as the sample writes it. */
function scheduleXml(s: EmSchedule, m: EmulatorModel): string {
  const zone = m.timeZoneDetails(s.timeZoneCode);
  const scanner = s.appliances.map((a) => (a === EXTERNAL ? 'External Scanner' : a)).join(',');
  const next = s.active && s.nextLaunch !== undefined ? el('NEXTLAUNCH_UTC', isoSec(s.nextLaunch).replace(/Z$/, '')) : '';
  return `      <SCAN>${el('ID', s.id)}${el('ACTIVE', s.active ? 1 : 0)}<TITLE>${cdata(s.title)}</TITLE>${el('USER_LOGIN', s.userLogin)}` +
    `<TARGET>${cdata(s.targets.join(','))}</TARGET><NETWORK_ID>${cdata('0')}</NETWORK_ID><ISCANNER_NAME>${cdata(scanner)}</ISCANNER_NAME>` +
    (s.optionTitle ? `<OPTION_PROFILE><TITLE>${cdata(s.optionTitle)}</TITLE>${el('DEFAULT_FLAG', 0)}</OPTION_PROFILE>` : '') +
    `${el('PROCESSING_PRIORITY', '0 - No Priority')}<SCHEDULE><DAILY frequency_days="${s.frequencyDays}" />` +
    `${el('START_DATE_UTC', isoSec(s.anchor))}${el('START_HOUR', s.startHour)}${el('START_MINUTE', s.startMinute)}${next}` +
    (s.endAfterMin !== undefined ? `${el('END_AFTER', Math.floor(s.endAfterMin / 60))}${el('END_AFTER_MINS', s.endAfterMin % 60)}` : '') +
    `<TIME_ZONE>${el('TIME_ZONE_CODE', s.timeZoneCode)}${el('TIME_ZONE_DETAILS', zone)}</TIME_ZONE>${el('DST_SELECTED', s.observeDst ? 1 : 0)}</SCHEDULE></SCAN>`;
}
