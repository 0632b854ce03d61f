/** String builders for the Qualys documents the emulator answers with. */
export function esc(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

export function cdata(s: string): string {
  return `<![CDATA[${s.split(']]>').join(']]]]><![CDATA[>')}]]>`;
}

/** `<NAME>value</NAME>`, or nothing when value is undefined. Strings are escaped. */
export function el(name: string, value: string | number | undefined, raw = false): string {
  if (value === undefined) return '';
  return `<${name}>${raw ? String(value) : esc(String(value))}</${name}>`;
}

export function doc(root: string, dtdPath: string | undefined, host: string, body: string): string {
  const dtd = dtdPath === undefined ? '' : `<!DOCTYPE ${root} SYSTEM "https://${host}${dtdPath}">\n`;
  return `<?xml version="1.0" encoding="UTF-8" ?>\n${dtd}<${root}>\n${body}\n</${root}>\n`;
}

export function simpleReturn(host: string, datetime: string, o: { code?: number; text: string; items?: [string, string][] }): string {
  const items = o.items?.length
    ? `<ITEM_LIST>${o.items.map(([k, v]) => `<ITEM>${el('KEY', k)}${el('VALUE', v)}</ITEM>`).join('')}</ITEM_LIST>`
    : '';
  return doc('SIMPLE_RETURN', '/api/2.0/simple_return.dtd', host,
    `  <RESPONSE>\n    ${el('DATETIME', datetime)}\n    ${el('CODE', o.code)}\n    ${el('TEXT', o.text)}\n    ${items}\n  </RESPONSE>`);
}
