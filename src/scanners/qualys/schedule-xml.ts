/**
 * The scheduled-scan list (`/api/2.0/fo/schedule/scan/?action=list`, SCHEDULE_SCAN_LIST_OUTPUT) as
 * records. Element names follow the guide's "List Scan Schedules" samples: SCAN holds ID, ACTIVE,
 * TITLE, USER_LOGIN, TARGET, ISCANNER_NAME, OPTION_PROFILE/TITLE and SCHEDULE, which holds DAILY
 * (attribute frequency_days) or WEEKLY / MONTHLY, START_HOUR, START_MINUTE (local to the time
 * zone), TIME_ZONE/TIME_ZONE_CODE, DST_SELECTED and NEXTLAUNCH_UTC; END_AFTER (hours) and
 * END_AFTER_MINS, the cut-off, as a public client that copies schedules reads them [P]. Missing
 * parts stay undefined.
 */
import { int, list, node, text, type XmlNode } from './xml.js';

export interface QualysSchedule {
  id: string;
  title: string;
  /** ACTIVE is 1 (one guide sample has it empty: not active) */
  active: boolean;
  /** TARGET as Qualys wrote it */
  targetText: string;
  /** ISCANNER_NAME with white space collapsed (a guide sample wraps it over two lines) */
  appliance: string;
  optionTitle?: string;
  userLogin?: string;
  occurrence?: 'daily' | 'weekly' | 'monthly';
  frequencyDays?: number;
  startHour?: number;
  startMinute?: number;
  timeZoneCode?: string;
  timeZoneDetails?: string;
  dstSelected: boolean;
  /** the cut-off in minutes (END_AFTER hours plus END_AFTER_MINS); undefined: none */
  endAfterMin?: number;
  /** next run, as Qualys writes it (the guide's sample has no `Z`; it is UTC by its name) */
  nextLaunchUtc?: string;
}

const squash = (s: string | undefined): string => (s ?? '').replace(/\s+/g, ' ').trim();

function occurrenceOf(schedule: XmlNode): QualysSchedule['occurrence'] {
  if (schedule.DAILY !== undefined) return 'daily';
  if (schedule.WEEKLY !== undefined) return 'weekly';
  if (schedule.MONTHLY !== undefined) return 'monthly';
  return undefined;
}

function endAfter(hours: number | undefined, mins: number | undefined): number | undefined {
  const total = (hours ?? 0) * 60 + (mins ?? 0);
  return total > 0 ? total : undefined;
}

export function parseScheduleList(doc: XmlNode): QualysSchedule[] {
  const resp = node(doc.RESPONSE) ?? {};
  const out: QualysSchedule[] = [];
  for (const s of list(node(resp.SCHEDULE_SCAN_LIST)?.SCAN)) {
    const id = squash(text(s.ID));
    if (!id) continue;
    const sched = node(s.SCHEDULE) ?? {};
    const daily = node(sched.DAILY);
    const zone = node(sched.TIME_ZONE);
    out.push({
      id,
      title: squash(text(s.TITLE)),
      active: squash(text(s.ACTIVE)) === '1',
      targetText: squash(text(s.TARGET)),
      appliance: squash(text(s.ISCANNER_NAME)),
      optionTitle: squash(text(node(s.OPTION_PROFILE)?.TITLE)) || undefined,
      userLogin: squash(text(s.USER_LOGIN)) || undefined,
      occurrence: occurrenceOf(sched),
      frequencyDays: daily ? int(daily['@_frequency_days']) : undefined,
      startHour: int(sched.START_HOUR),
      startMinute: int(sched.START_MINUTE),
      timeZoneCode: squash(text(zone?.TIME_ZONE_CODE)) || undefined,
      timeZoneDetails: squash(text(zone?.TIME_ZONE_DETAILS)) || undefined,
      dstSelected: squash(text(sched.DST_SELECTED)) === '1',
      endAfterMin: endAfter(int(sched.END_AFTER), int(sched.END_AFTER_MINS)),
      // inside SCHEDULE in the guide's samples, beside it in an older answer quoted by a client
      nextLaunchUtc: squash(text(sched.NEXTLAUNCH_UTC ?? s.NEXTLAUNCH_UTC)) || undefined,
    });
  }
  return out;
}
