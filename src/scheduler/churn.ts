/**
 * Scans for many devices at one place in a short time (launch.ts). A client that takes the same
 * address under a new MAC every few seconds is a new, never-scanned device each time, and each
 * got a scan of its own (the identity probe of session 41: 18 MACs on one address in 3 minutes,
 * 18 scans): anyone who can send DHCP lines turns one address into a stream of launches, calls
 * and appliance time. Once a place has had scans launched for ADDRESS_DEVICES other devices within
 * ADDRESS_WINDOW_MS, the next device there waits until the oldest of those is that old.
 * The place (launch.ts churnPlace) is a DHCP lease's address: DHCP servers hand a freed address to
 * another client rarely within the hour. For a VPN session it is its user: a lowest-free pool hands
 * its low addresses to the next user at once (three due users on one address within the morning's
 * hour is ordinary), while one login reconnecting under a new machine name each time is a new
 * identity, never scanned, each time, at whatever address the pool gives it (reviews, session 42:
 * 11 scans in 10 min). Keyed by user at address, it held a forger's sessions under a victim's name
 * no longer, but let the login through at every address it reached; a forger of VPN lines can end a
 * victim's sessions already.
 *
 * Kept across restarts and shared with a new cluster leader (memory.ts, part `address-churn`): in
 * memory only, a client rotating MACs had ADDRESS_DEVICES more scans after every restart. Only the
 * launches within the window at places with two devices or more are written, MAX_LAUNCHES at most.
 * A launch is written at the end of a pass within a minute of it (`version`: memory.ts writes a part
 * with news at the end of a pass, at most every MOVED_SAVE_MS, not only every SAVE_EVERY_MS), so a
 * kill loses at most the last minute's launches (at most ADDRESS_DEVICES more scans at a place, once).
 * (Times are the launching node's clock; a new leader's clock a few minutes off ends a hold as
 * many minutes early or late.)
 */
import { CLOCK_SKEW_MS, Refused, isInt, isNum, type Remembers } from './memory.js';

export const ADDRESS_DEVICES = 3;
export const ADDRESS_WINDOW_MS = 3_600_000;
/**
 * launches kept (within the window), in memory and in the saved state: a launch is a scan, so the
 * scanner's slots and calls bound how many an hour can hold far below this. At the cap a tenth is
 * forgotten, those at places that hold no one first, then the oldest: a place whose counted scans
 * are forgotten is held that many scans later (at most ADDRESS_DEVICES more there within the
 * hour), never held longer
 */
export const MAX_LAUNCHES = 20_000;
/** a place is an address or `user:` and a VPN user name; longer is no snapshot of ours */
const MAX_PLACE_CHARS = 1_024;

export class AddressChurn implements Remembers {
  /** per place, each device's latest launch there within the window */
  private readonly launches = new Map<string, Map<number, number>>();
  /** launches held in `launches` */
  private count = 0;
  /** grows with every launch noted (memory.ts writes the part at the end of the pass when it has) */
  private changes = 0;

  /** A scan was launched at `at` for device `identityId` at `place`. */
  launched(place: string, identityId: number, at: number): void {
    let byDevice = this.launches.get(place);
    if (!byDevice?.has(identityId) && this.count >= MAX_LAUNCHES) {
      this.forgetOld(at);
      if (this.count >= MAX_LAUNCHES) this.forgetOldest(Math.ceil(MAX_LAUNCHES / 10));
      byDevice = this.launches.get(place);
    }
    if (!byDevice) this.launches.set(place, (byDevice = new Map()));
    if (!byDevice.has(identityId)) this.count++;
    byDevice.set(identityId, Math.max(at, byDevice.get(identityId) ?? at));
    this.changes++;
  }

  /**
   * Until when a scan at `place` for device `identityId` waits (undefined: none): the time at which
   * fewer than ADDRESS_DEVICES other devices will have had a scan there within the window.
   */
  heldUntil(place: string, identityId: number, now: number): { until: number; devices: number } | undefined {
    const byDevice = this.launches.get(place);
    if (!byDevice) return undefined;
    const others: number[] = [];
    for (const [id, at] of byDevice) {
      if (at <= now - ADDRESS_WINDOW_MS) {
        byDevice.delete(id);
        this.count--;
      } else if (id !== identityId) others.push(at);
    }
    if (byDevice.size === 0) this.launches.delete(place);
    if (others.length < ADDRESS_DEVICES) return undefined;
    others.sort((a, b) => a - b);
    return { until: others[others.length - ADDRESS_DEVICES] + ADDRESS_WINDOW_MS, devices: others.length };
  }

  /** launches held (within the window, or not looked at since it passed) */
  get size(): number {
    return this.count;
  }

  version(): number {
    return this.changes;
  }

  /**
   * `launches`: [place, device, launched at] of each launch within the window at a place with two
   * devices or more, the oldest first. A place with one (most addresses: one device each) is left
   * out, so the record written stays small (review: it was written whole at every launching pass):
   * after a restart such a place can take one more device before it holds.
   */
  snapshot(now: number): unknown {
    const rows: [string, number, number][] = [];
    for (const [place, byDevice] of this.launches) {
      let n = 0;
      for (const at of byDevice.values()) if (at > now - ADDRESS_WINDOW_MS) n++;
      if (n < 2) continue;
      for (const [id, at] of byDevice) if (at > now - ADDRESS_WINDOW_MS) rows.push([place, id, at]);
    }
    rows.sort((a, b) => a[2] - b[2]);
    return { launches: rows.slice(-MAX_LAUNCHES) };
  }

  /**
   * The launches of a snapshot still within the window, each device's latest per place with what
   * was noted since. Refused whole (a reason given) when any row is not one this version writes:
   * more than MAX_LAUNCHES, a place that is no string, a device id that is no positive integer, a
   * time that is no number or more than a clock's skew ahead, a device twice at a place. A time
   * ahead of now counts as now: nothing is held longer than the window from the restart.
   */
  merge(data: unknown, now: number): string | Refused | undefined {
    const rows = (data as { launches?: unknown } | null)?.launches;
    if (!Array.isArray(rows)) return undefined;
    if (rows.length > MAX_LAUNCHES) return new Refused(`${rows.length} launches, more than the ${MAX_LAUNCHES} this version keeps`);
    const seen = new Set<string>();
    const taken: [string, number, number][] = [];
    for (const [k, row] of rows.entries()) {
      if (!Array.isArray(row) || row.length !== 3) return new Refused(`launch ${k} is not [place, device, time]`);
      const [place, id, at] = row as unknown[];
      if (typeof place !== 'string' || place.length === 0 || place.length > MAX_PLACE_CHARS) return new Refused(`launch ${k}: no place (an address or a VPN user)`);
      if (!isInt(id, 1)) return new Refused(`launch ${k}: device ${JSON.stringify(id)} is no device id`);
      if (!isNum(at, 0, now + CLOCK_SKEW_MS)) return new Refused(`launch ${k}: time ${JSON.stringify(at)} is no time up to a day ahead of now`);
      const key = `${id} ${place}`;
      if (seen.has(key)) return new Refused(`launch ${k}: device ${id} at ${place} twice`);
      seen.add(key);
      if (at > now - ADDRESS_WINDOW_MS) taken.push([place, id, Math.min(at, now)]);
    }
    const places = new Set<string>();
    for (const [place, id, at] of taken) {
      let byDevice = this.launches.get(place);
      if (!byDevice) this.launches.set(place, (byDevice = new Map()));
      if (!byDevice.has(id)) this.count++;
      byDevice.set(id, Math.max(at, byDevice.get(id) ?? at));
      places.add(place);
    }
    if (this.count > MAX_LAUNCHES) this.forgetOldest(this.count - MAX_LAUNCHES);
    return `${taken.length} launch(es) within ${ADDRESS_WINDOW_MS / 60_000} min at ${places.size} address(es) and VPN user(s)`;
  }

  private forgetOld(now: number): void {
    for (const [place, byDevice] of this.launches) {
      for (const [id, at] of byDevice) {
        if (at > now - ADDRESS_WINDOW_MS) continue;
        byDevice.delete(id);
        this.count--;
      }
      if (byDevice.size === 0) this.launches.delete(place);
    }
  }

  /**
   * `n` launches forgotten (at the cap): first those of places with too few devices to hold anyone
   * (a hold is at a place with ADDRESS_DEVICES others: 20,000 single launches elsewhere ended a
   * real hold, review), the oldest first, then the oldest of the rest
   */
  private forgetOldest(n: number): void {
    if (n <= 0) return;
    const all: { place: string; id: number; at: number; holds: boolean }[] = [];
    for (const [place, byDevice] of this.launches) {
      const holds = byDevice.size >= ADDRESS_DEVICES;
      for (const [id, at] of byDevice) all.push({ place, id, at, holds });
    }
    all.sort((a, b) => Number(a.holds) - Number(b.holds) || a.at - b.at);
    for (const x of all.slice(0, n)) {
      const byDevice = this.launches.get(x.place)!;
      byDevice.delete(x.id);
      this.count--;
      if (byDevice.size === 0) this.launches.delete(x.place);
    }
  }
}
