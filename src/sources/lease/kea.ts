/**
 * Kea memfile lease files (kea-leases4.csv, kea-leases6.csv): CSV with a header row, appended on
 * every change (each row is the lease's whole new state); the Lease File Cleanup process (LFC)
 * compacts them: the live file is moved to `.2` and a new one started, then `.1` and `.2` are
 * merged into `.1` (Kea ARM, "Lease File Cleanup"). Rows, as Kea writes them (CSVLeaseFile4/6):
 *
 *   v4: address,hwaddr,client_id,valid_lifetime,expire,subnet_id,fqdn_fwd,fqdn_rev,hostname,state,user_context[,pool_id]
 *   v6: address,duid,valid_lifetime,expire,subnet_id,pref_lifetime,lease_type,iaid,prefix_len,fqdn_fwd,fqdn_rev,hostname,hwaddr,state,user_context[,...]
 *
 * `expire` is epoch seconds; a deleted lease (release, or reclaimed without keeping it) is
 * written with valid_lifetime 0; state 0 = default, 1 = declined, 2 = expired-reclaimed.
 * Commas inside values are escaped as `&#x2c`. Columns are found by the header's names, so rows
 * of newer versions (more columns) read the same.
 */
import { canonicalIp } from '../../util/ip.js';
import { normalizeMac } from '../../util/mac.js';
import type { JournalReader, LeaseRecord } from './record.js';

const V4 = 'address,hwaddr,client_id,valid_lifetime,expire,subnet_id,fqdn_fwd,fqdn_rev,hostname,state,user_context'.split(',');
const V6 = 'address,duid,valid_lifetime,expire,subnet_id,pref_lifetime,lease_type,iaid,prefix_len,fqdn_fwd,fqdn_rev,hostname,hwaddr,state,user_context'.split(',');

const unescape = (v: string) => v.replace(/&#x2c/g, ',');

export class KeaCsvReader implements JournalReader {
  private cols?: Map<string, number>;

  reset(): void {
    this.cols = undefined;
  }

  line(text: string): { records: LeaseRecord[]; boundary: boolean; error?: string } {
    const t = text.replace(/\r$/, '');
    if (t.trim() === '') return { records: [], boundary: true };
    const f = t.split(',');
    if (f[0] === 'address') {
      this.cols = new Map(f.map((c, i) => [c.trim(), i]));
      return { records: [], boundary: true };
    }
    const ip = canonicalIp(f[0]);
    if (!ip) return { records: [], boundary: true, error: `not an address in the first column: ${f[0].slice(0, 64)}` };
    const cols = this.cols ?? new Map((ip.includes(':') ? V6 : V4).map((c, i) => [c, i]));
    const get = (name: string) => {
      const i = cols.get(name);
      return i === undefined ? undefined : f[i];
    };
    if (f.length < Math.min(cols.size, 10)) return { records: [], boundary: true, error: `expected ${cols.size} columns, found ${f.length}` };
    const valid = Number(get('valid_lifetime'));
    const expire = Number(get('expire'));
    const state = Number(get('state') ?? '0');
    if (!Number.isFinite(valid) || !Number.isFinite(expire) || !Number.isInteger(state)) return { records: [], boundary: true, error: 'valid_lifetime, expire or state is not a number' };
    // delegated prefixes (lease_type 2) are not addresses a device holds
    if (ip.includes(':') && get('lease_type') === '2') return { records: [], boundary: true };
    if (state === 1) return { records: [], boundary: true }; // declined: no device holds it
    const r: LeaseRecord = { state: 'active', ip };
    const mac = normalizeMac(get('hwaddr'));
    if (mac) r.mac = mac;
    const duid = get('duid');
    if (duid) r.duid = duid;
    const cid = get('client_id');
    if (cid) r.clientId = cid;
    const host = unescape(get('hostname') ?? '').replace(/\.$/, '');
    if (host && host.length <= 255) r.hostname = host;
    const expireMs = expire * 1000;
    if (valid === 0) {
      // deleted: released by the client, or reclaimed and not kept
      r.state = 'released';
      r.endAt = expireMs;
    } else if (state === 2) {
      r.state = 'expired';
      r.endAt = expireMs;
    } else {
      r.startAt = expireMs - valid * 1000;
      r.expiresAt = expireMs;
      r.durationS = valid;
    }
    return { records: [r], boundary: true };
  }
}
