/**
 * Field text every store can hold and every log, terminal and CSV line can show as one line.
 */

/**
 * A C0 control but TAB, DEL, a C1 control (U+0080-U+009F: CSI, NEL), a line or paragraph separator,
 * a bidi embedding, override or isolate (U+202A-U+202E, U+2066-U+2069), or half a surrogate pair
 * (checked further in storableText)
 */
const NOT_STORABLE = /[\x00-\x08\x0a-\x1f\x7f-\x9f\u2028-\u202e\u2066-\u2069\ud800-\udfff]/;

/** a UTF-16 unit storableText replaces (a surrogate only when unpaired: checked by the caller) */
function unshowable(c: number): boolean {
  return (c < 0x20 && c !== 0x09) || (c >= 0x7f && c <= 0x9f) || (c >= 0x2028 && c <= 0x202e) || (c >= 0x2066 && c <= 0x2069) || (c >= 0xd800 && c <= 0xdfff);
}

/**
 * A field value every store can hold and every log and CSV line can show: C0 control characters
 * other than TAB, DEL, C1 controls, U+2028/U+2029 and the bidi overrides become U+FFFD, as do lone
 * surrogates (String.prototype.toWellFormed, which Node 20 lacks). PostgreSQL's text and jsonb
 * refuse NUL (\u0000) and lone surrogates, and one such value made the whole batch fail for ever;
 * a C1 CSI (U+009B) drives a terminal showing the log, NEL and U+2028 end a line for some readers,
 * U+202E shows a name backwards. Replaced rather than removed: `a\0b` and `ab` stay two names, and
 * the mark shows something was there.
 */
export function storableText(s: string): string {
  if (!NOT_STORABLE.test(s)) return s;
  let out = '';
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c >= 0xd800 && c <= 0xdbff && i + 1 < s.length) {
      const d = s.charCodeAt(i + 1);
      if (d >= 0xdc00 && d <= 0xdfff) {
        out += s[i] + s[i + 1]; // a whole pair
        i++;
        continue;
      }
    }
    out += unshowable(c) ? '\ufffd' : s[i];
  }
  return out;
}
