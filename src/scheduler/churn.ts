/**
 * Scans of one address for many devices in a short time (launch.ts). A client that takes the same
 * address under a new MAC every few seconds is a new, never-scanned device each time, and each
 * got a scan of its own (the identity probe of session 41: 18 MACs on one address in 3 minutes,
 * 18 scans): anyone who can send DHCP lines turns one address into a stream of launches, calls
 * and appliance time. Once an address has had scans launched for ADDRESS_DEVICES other devices
 * within ADDRESS_WINDOW_MS, the next device there waits until the oldest of those is that old.
 * DHCP servers hand a freed address to another client rarely within the hour, and a device due
 * for a scan (not scanned within its window) at an address three others were scanned at in the
 * hour rarer still. DHCP leases only: a VPN pool hands a freed address to the next user at once
 * (lowest-free: its low addresses see a user an hour or more at the morning's logins), and each
 * VPN session is a login a forger would need credentials for. In memory only: a restart or a new
 * cluster term starts afresh.
 */
export const ADDRESS_DEVICES = 3;
export const ADDRESS_WINDOW_MS = 3_600_000;

export class AddressChurn {
  /** per address, each device's latest launch there within the window */
  private readonly launches = new Map<string, Map<number, number>>();

  /** Scans were launched at `at` for these targets. */
  launched(targets: readonly { ip: string; identityId: number }[], at: number): void {
    if (this.launches.size > 100_000) this.forgetOld(at);
    for (const t of targets) {
      let byDevice = this.launches.get(t.ip);
      if (!byDevice) this.launches.set(t.ip, (byDevice = new Map()));
      byDevice.set(t.identityId, at);
    }
  }

  /**
   * Until when a scan of `ip` for device `identityId` waits (undefined: none): the time at which
   * fewer than ADDRESS_DEVICES other devices will have had a scan there within the window.
   */
  heldUntil(ip: string, identityId: number, now: number): { until: number; devices: number } | undefined {
    const byDevice = this.launches.get(ip);
    if (!byDevice) return undefined;
    const others: number[] = [];
    for (const [id, at] of byDevice) {
      if (at <= now - ADDRESS_WINDOW_MS) byDevice.delete(id);
      else if (id !== identityId) others.push(at);
    }
    if (byDevice.size === 0) this.launches.delete(ip);
    if (others.length < ADDRESS_DEVICES) return undefined;
    others.sort((a, b) => a - b);
    return { until: others[others.length - ADDRESS_DEVICES] + ADDRESS_WINDOW_MS, devices: others.length };
  }

  private forgetOld(now: number): void {
    for (const [ip, byDevice] of this.launches) {
      for (const [id, at] of byDevice) if (at <= now - ADDRESS_WINDOW_MS) byDevice.delete(id);
      if (byDevice.size === 0) this.launches.delete(ip);
    }
  }
}
