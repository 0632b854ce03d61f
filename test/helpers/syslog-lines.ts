/** Syslog lines stamped now, as a DHCP server sends them (an old stamp would be a lease that already ran out). */

/** An RFC 3164 timestamp of `at` in UTC: `Dec  6 10:00:00`. */
export function rfc3164Stamp(at = new Date()): string {
  return `${at.toLocaleString('en-US', { month: 'short', timeZone: 'UTC' })} ${String(at.getUTCDate()).padStart(2, ' ')} ${at.toISOString().slice(11, 19)}`;
}

/** An ISC dhcpd DHCPACK over syslog (PRI 30), stamped now. */
export function dhcpAck(ip: string, mac: string, host = 'laptop'): string {
  return `<30>${rfc3164Stamp()} gw dhcpd[1]: DHCPACK on ${ip} to ${mac} (${host}) via eth0`;
}
