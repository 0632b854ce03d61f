/**
 * Host keys: the device name a sighting carries, reduced to what DHCP and VPN logs agree on, so
 * the DHCP identity (`mac:..`) and the VPN identity (`user:..|host`) of one laptop can share their
 * last-scanned credit. `LT-0042`, `lt-0042.corp.example` and ` Lt-0042 ` all give `lt-0042`.
 */

/**
 * Names that many unrelated devices carry (OS and vendor defaults, placeholders some DHCP servers
 * and VPN gateways log when the client sent none). Linking on them would let one scanned phone or
 * fresh install vouch for every other device of the same name, so they never link. Names with a
 * per-device suffix (`DESKTOP-7Q2K9LM`, `Johns-iPhone`, `android-1a2b3c4d`) are specific enough.
 */
const GENERIC = new Set([
  'localhost', 'localdomain', 'unknown', 'none', 'null', 'undefined', '(none)', 'n/a', 'default', 'empty',
  'android', 'iphone', 'ipad', 'ipod', 'mac', 'imac', 'macbook', 'macbook-pro', 'macbook-air', 'mbp',
  'desktop', 'laptop', 'notebook', 'computer', 'workstation', 'pc', 'host', 'client', 'user', 'admin', 'dhcp',
  'ubuntu', 'debian', 'fedora', 'raspberrypi', 'kali', 'windows', 'linux', 'galaxy', 'samsung', 'chromebook',
  'espressif', 'printer', 'chromecast',
]);

/** Lowercase, the part before the first '.', trimmed; undefined when nothing is left. */
export function hostKey(hostname: string | null | undefined): string | undefined {
  if (hostname == null) return undefined;
  const s = hostname.trim().toLowerCase();
  const dot = s.indexOf('.');
  const key = (dot >= 0 ? s.slice(0, dot) : s).trim();
  return key || undefined;
}

/**
 * May identities sharing this host key share their last scan? Not for generic names (above),
 * names shorter than 3 characters, all-digit names (an IPv4 address's first octet, a serial
 * counter) or anything with a ':' (an IPv6 literal or a MAC logged as the name).
 */
export function isLinkableHostKey(key: string | null | undefined): key is string {
  if (!key || key.length < 3) return false;
  if (/^\d+$/.test(key) || key.includes(':')) return false;
  return !GENERIC.has(key);
}
