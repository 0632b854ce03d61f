/**
 * Why a device left unscanned: a decision taken while its binding held (queued, launched, failed)
 * says more than the scan window at the moment it left; the window explains a miss only when
 * nothing was decided for it during the visit.
 */
import { describe, expect, it } from 'vitest';
import { classifyMissed, DecisionIndex, type EndedBinding } from '../src/coverage/missed.js';
import type { BindingView } from '../src/store/types.js';
import type { Verdict } from '../src/policy/policy.js';

const T = Date.parse('2026-12-01T09:00:00Z');
const ended = (id: number, startAt: number, endAt: number): EndedBinding =>
  ({ view: { id, ip: `10.40.1.${id}`, identityId: id, startAt, lastSeen: endAt } as BindingView, endAt, presentElsewhere: false });
const outside: Verdict = { due: false, reason: 'outside-scan-window', detail: 'region r allows scans only Mon-Fri 07:00-19:00', region: 'r' };

describe('the reason a device was missed', () => {
  it('queued or launched during the visit: that, not the window it left outside of', () => {
    const visits = [ended(1, T, T + 10.5 * 3600_000), ended(2, T, T + 10.2 * 3600_000), ended(3, T, T + 11 * 3600_000), ended(4, T, T + 11 * 3600_000)];
    const decisions = new DecisionIndex([
      { at: T + 60_000, ip: '10.40.1.1', identityId: 1, decision: 'due', reason: 'never scanned' }, // queued all day, no slot
      { at: T + 9.9 * 3600_000, ip: '10.40.1.2', identityId: 2, decision: 'launched', reason: 'scan s/1' }, // launched at 18:55, left at 19:10
      { at: T - 3 * 86_400_000, ip: '10.40.1.3', identityId: 3, decision: 'due', reason: 'never scanned' }, // a decision of an earlier visit
    ]);
    const why = Object.fromEntries(classifyMissed(visits, decisions, () => outside).map((m) => [m.ip, m.key]));
    expect(why).toEqual({
      '10.40.1.1': 'left-while-queued',
      '10.40.1.2': 'left-during-scan',
      '10.40.1.3': 'outside-scan-window', // nothing decided during this visit: the window explains it
      '10.40.1.4': 'outside-scan-window',
    });
  });
});
