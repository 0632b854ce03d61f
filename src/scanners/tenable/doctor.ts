/**
 * `onsight doctor`'s Tenable checks that need no call: are the API keys readable and well formed
 * (never shown), and how each region's appliance reaches a scan definition. Reachability, scanners
 * and the region mapping against the live scanner list are doctor's checks for every backend.
 */
import type { DoctorLine } from '../types.js';
import { loadApiKeys } from './credentials.js';
import { keyed, sourceText } from '../qualys/credentials.js';
import { MASTER_PREFIX } from './client.js';
import type { TenableScannerOptions } from './schema.js';

export function tenableDoctor(sc: TenableScannerOptions, ctx: { env: NodeJS.ProcessEnv }): DoctorLine[] {
  const source = sourceText({ credential: sc.credential, env: sc.apiKeysEnv, file: sc.apiKeysFile }, 'API keys file');
  const lines: DoctorLine[] = [];
  try {
    loadApiKeys(sc, ctx.env);
    lines.push({ mark: 'ok', what: 'credentials', text: `${source} readable, accessKey and secretKey present (not shown)` });
  } catch (err) {
    lines.push({ mark: 'fail', what: 'credentials', text: keyed({ credential: sc.credential, passwordEnv: sc.apiKeysEnv }, (err as Error).message, { file: 'apiKeysFile', env: 'apiKeysEnv' }) });
  }
  const named = Object.entries(sc.definitions);
  const how = named.map(([a, d]) => `${a} → ${typeof d === 'number' ? `scan ${d}` : `"${d}"`}`);
  lines.push({
    mark: 'ok', what: 'scan definitions',
    text: `${how.length ? `${how.join(', ')}; ` : ''}other appliances use "${MASTER_PREFIX}<appliance>"${sc.template ? `, created from template "${sc.template}" when missing` : ' (no scanner.template: it must exist)'}; a region naming a scanner group leaves the choice of scanner to Tenable (the group member with the fewest active scans)`,
  });
  return lines;
}
