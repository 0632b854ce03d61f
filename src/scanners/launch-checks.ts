/**
 * What every REST backend checks before a launch leaves onsight (defence in depth behind the
 * policy), and how it recognises its own scans by the intent id in their names.
 */
import { OnsightError } from '../errors.js';
import { canonicalIp } from '../util/ip.js';

/** Canonical, deduplicated targets; refuses the whole launch if one is outside the scope or excluded. */
export function checkTargets(targets: string[], allow: ((ip: string) => boolean) | undefined, max: number): string[] {
  if (targets.length === 0) throw new OnsightError('ONSIGHT_SCANNER', 'launch without targets');
  const out: string[] = [];
  const refused: string[] = [];
  for (const t of targets) {
    const ip = canonicalIp(t);
    if (!ip || (allow && !allow(ip))) refused.push(t);
    else if (!out.includes(ip)) out.push(ip);
  }
  if (refused.length > 0) throw new OnsightError('ONSIGHT_SCOPE_VIOLATION', `refused to launch: ${refused.length} target(s) outside the scope or excluded (${refused.slice(0, 5).join(', ')})`);
  if (out.length > max) throw new OnsightError('ONSIGHT_SCANNER', `launch with ${out.length} targets exceeds maxTargetsPerScan (${max})`);
  return out;
}

/** The intent id as a whole token of a scan name. */
export function hasIntent(name: string, intentId: string): boolean {
  let at = name.indexOf(intentId);
  while (at >= 0) {
    const before = at === 0 ? '' : name[at - 1];
    const after = name[at + intentId.length] ?? '';
    if (!/[\w-]/.test(before) && !/[\w-]/.test(after)) return true;
    at = name.indexOf(intentId, at + 1);
  }
  return false;
}

/** The scan name a backend stores: our title, with the intent id added when it lacks it. */
export function nameFor(title: string, intentId: string): string {
  return hasIntent(title, intentId) ? title : `${title} [${intentId}]`;
}
