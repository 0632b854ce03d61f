/**
 * Names in the state come from log lines, so from anyone who can send one: escape what a terminal
 * would act on (C0/C1 controls, DEL, bidirectional overrides) before printing. `\x1b[2J` stays
 * readable as text instead of clearing the screen; CR and LF cannot forge table rows.
 */
// eslint-disable-next-line no-control-regex
const UNSAFE = /[\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]/g;

const NAMED: Record<string, string> = { '\n': '\\n', '\r': '\\r', '\t': '\\t' };

/** For tables and plain text: `\x1b`, `\r`, `\n`, `\u202e`. */
export function printable(s: string): string {
  return s.replace(UNSAFE, (c) => NAMED[c] ?? (c.charCodeAt(0) <= 0xff ? `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}` : `\\u${c.charCodeAt(0).toString(16)}`));
}

/** JSON.stringify leaves C1 controls and bidi overrides raw: escape them too (still the same JSON value). */
export function safeJson(v: unknown): string {
  return JSON.stringify(v, null, 2).replace(/[\x7f-\x9f\u202a-\u202e\u2066-\u2069]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}
