const HEX = '0123456789abcdef';

/** `t` is min..max hex digits (lower-case) */
function hexRun(t: string, min: number, max: number): boolean {
  if (t.length < min || t.length > max) return false;
  for (const c of t) if (!HEX.includes(c)) return false;
  return true;
}

/**
 * Normalise a 6-octet hardware address to lower-case colon form, in the groupings logs write:
 * six groups of two hex digits with `:` or `-` (`aa:bb:..`, `AA-BB-..`), or of one where a printer
 * drops the leading zero (old ISC dhcpd's `%x`: `0:c:29:5b:2f:1`); three groups of four with `.`
 * (Cisco `aabb.ccdd.eeff`) or `-` (HPE Comware `aabb-ccdd-eeff`); twelve bare digits (Windows
 * audit log). Anything else is undefined: another grouping (`1:aa:bb:cc:dd:ee:f`) would move the
 * octets' digits, and an address of another length (20-octet InfiniBand) is no MAC. Linear, no regex.
 */
export function normalizeMac(text: string | undefined): string | undefined {
  if (!text || text.length > 17) return undefined;
  const t = text.toLowerCase();
  if (t.length === 12) return hexRun(t, 12, 12) ? [0, 2, 4, 6, 8, 10].map((i) => t.slice(i, i + 2)).join(':') : undefined;
  let sep = '';
  for (const c of t) {
    if (!HEX.includes(c)) {
      sep = c;
      break;
    }
  }
  if (sep !== ':' && sep !== '-' && sep !== '.') return undefined;
  const groups = t.split(sep);
  if (groups.length === 6 && sep !== '.' && groups.every((g) => hexRun(g, 1, 2))) return groups.map((g) => g.padStart(2, '0')).join(':');
  if (groups.length === 3 && sep !== ':' && groups.every((g) => hexRun(g, 4, 4))) return groups.map((g) => `${g.slice(0, 2)}:${g.slice(2)}`).join(':');
  return undefined;
}
