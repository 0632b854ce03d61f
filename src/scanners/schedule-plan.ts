/**
 * What a `syncSchedules` has to do, for a scanner that keeps its schedules as plain
 * `RangeSchedule`s (the simulator's, the scripted test scanner): ours are those whose title starts
 * with the prefix; each is kept, updated or deleted, in the platform's order, then the wanted ones
 * it lacks are created; one whose cut-off is to be removed is deleted and created again, as on
 * Qualys. (Qualys compares address sets and zones of its own: qualys/schedules.ts.)
 */
import type { RangeSchedule } from './types.js';

export type ScheduleStep<T> =
  | { action: 'kept'; have: T }
  | { action: 'updated'; have: T; want: RangeSchedule }
  | { action: 'deleted'; have: T }
  | { action: 'created'; want: RangeSchedule };

/** Same targets, appliance, profile, time, cut-off and activity. */
export function sameSchedule(a: RangeSchedule, b: RangeSchedule): boolean {
  return (a.active !== false) === (b.active !== false) && a.appliance === b.appliance && a.timeUtc === b.timeUtc && a.optionProfile === b.optionProfile && a.endAfterMin === b.endAfterMin && a.targets.join(',') === b.targets.join(',');
}

export function planScheduleSync<T extends RangeSchedule>(have: readonly T[], want: RangeSchedule[], prefix: string): ScheduleStep<T>[] {
  const wanted = new Map(want.map((w) => [w.title, w]));
  const steps: ScheduleStep<T>[] = [];
  for (const h of have) {
    if (!h.title.startsWith(prefix)) continue;
    const w = wanted.get(h.title);
    wanted.delete(h.title);
    if (!w) steps.push({ action: 'deleted', have: h });
    else if (h.endAfterMin !== undefined && w.endAfterMin === undefined) {
      // as on Qualys, whose parameters set a cut-off but cannot clear one: made again
      steps.push({ action: 'deleted', have: h });
      wanted.set(w.title, w);
    } else if (sameSchedule(h, w)) steps.push({ action: 'kept', have: h });
    else steps.push({ action: 'updated', have: h, want: w });
  }
  for (const w of wanted.values()) steps.push({ action: 'created', want: w });
  return steps;
}

/** A schedule's own fields, without what a scanner keeps beside them. */
export function plainSchedule(s: RangeSchedule): RangeSchedule {
  return {
    title: s.title, targets: s.targets, appliance: s.appliance, timeUtc: s.timeUtc,
    ...(s.optionProfile !== undefined ? { optionProfile: s.optionProfile } : {}),
    ...(s.endAfterMin !== undefined ? { endAfterMin: s.endAfterMin } : {}),
    ...(s.active === false ? { active: false } : {}),
  };
}
