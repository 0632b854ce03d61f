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
 * victim's sessions already. In memory only: a restart or a new cluster term starts afresh.
 */
export const ADDRESS_DEVICES = 3;
export const ADDRESS_WINDOW_MS = 3_600_000;

export class AddressChurn {
  /** per place, each device's latest launch there within the window */
  private readonly launches = new Map<string, Map<number, number>>();

  /** A scan was launched at `at` for device `identityId` at `place`. */
  launched(place: string, identityId: number, at: number): void {
    if (this.launches.size > 100_000) this.forgetOld(at);
    let byDevice = this.launches.get(place);
    if (!byDevice) this.launches.set(place, (byDevice = new Map()));
    byDevice.set(identityId, at);
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
      if (at <= now - ADDRESS_WINDOW_MS) byDevice.delete(id);
      else if (id !== identityId) others.push(at);
    }
    if (byDevice.size === 0) this.launches.delete(place);
    if (others.length < ADDRESS_DEVICES) return undefined;
    others.sort((a, b) => a - b);
    return { until: others[others.length - ADDRESS_DEVICES] + ADDRESS_WINDOW_MS, devices: others.length };
  }

  private forgetOld(now: number): void {
    for (const [place, byDevice] of this.launches) {
      for (const [id, at] of byDevice) if (at <= now - ADDRESS_WINDOW_MS) byDevice.delete(id);
      if (byDevice.size === 0) this.launches.delete(place);
    }
  }
}
