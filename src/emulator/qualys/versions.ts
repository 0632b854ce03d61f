/**
 * Which API version serves which action today, as the Qualys API (VM, PC) User Guide 10.39.1
 * (July 2026) lists them: the scan list at 3.0 (2.0 reached End of Support in December 2025 and
 * End of Life six months later), launch and cancel at 2.0 only, the host list at 5.0 (2.0-4.0
 * retired), the appliance, IP and scheduled-scan calls at 2.0. Anything else gets the
 * retired-version answer.
 */
import type { EmulatedApi } from './config.js';

export const SERVED: Record<EmulatedApi | 'session', Record<string, readonly string[]>> = {
  scan: { '2.0': ['launch', 'cancel'], '3.0': ['list'] },
  appliance: { '2.0': ['list'] },
  host: { '5.0': ['list'] },
  ip: { '2.0': ['list', 'add'] },
  // the guide documents the scheduled-scan calls at 2.0 only
  schedule: { '2.0': ['list', 'create', 'update', 'delete'] },
  optionProfile: { '2.0': ['list'] },
  session: { '2.0': ['login', 'logout'] },
};

/** Is `action` served on this version of `api`? (A missing action is left to the handler: 1903.) */
export function served(api: EmulatedApi | 'session', version: string, action: string | undefined): boolean {
  const byVersion = SERVED[api][version];
  if (!byVersion) return false;
  return action === undefined || action === '' || byVersion.includes(action) || !Object.values(SERVED[api]).some((a) => a.includes(action));
}

/** The version that serves `action` of `api` today, for messages. */
export function servingVersion(api: EmulatedApi | 'session', action: string | undefined): string | undefined {
  return Object.entries(SERVED[api]).find(([, actions]) => action !== undefined && actions.includes(action))?.[0];
}
