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

export function simpleReturn(host: string, datetime: string, o: { code?: number; text: string; items?: [string, string][]; declaration?: boolean }): string {
  const items = o.items?.length
    ? `<ITEM_LIST>${o.items.map(([k, v]) => `<ITEM>${el('KEY', k)}${el('VALUE', v)}</ITEM>`).join('')}</ITEM_LIST>`
    : '';
  const text = doc('SIMPLE_RETURN', '/api/2.0/simple_return.dtd', host,
    `  <RESPONSE>\n    ${el('DATETIME', datetime)}\n    ${el('CODE', o.code)}\n    ${el('TEXT', o.text)}\n    ${items}\n  </RESPONSE>`);
  // the real 400 answer (CODE 1905, 2020) starts at its DOCTYPE, without <?xml ?>
  return o.declaration === false ? text.replace(/^<\?xml[^>]*\?>\n/, '') : text;
}

/**
 * A 409 (or account) answer as the API-limits documentation prints it: no declaration, no DOCTYPE,
 * a blank first line and indentation, TEXT with a leading space, ITEM_LIST of KEY/VALUE.
 */
export function conflictReturn(datetime: string, code: number, text: string, items: [string, string][] = []): string {
  const list = items.length
    ? `\n      <ITEM_LIST>${items.map(([k, v]) => `\n      <ITEM>\n      ${el('KEY', k)}\n      ${el('VALUE', v)}\n      </ITEM>`).join('')}\n      </ITEM_LIST>`
    : '';
  return `\n    <SIMPLE_RETURN>\n      <RESPONSE>\n      <DATETIME>${esc(datetime)} </DATETIME>\n      ${el('CODE', code)}\n      <TEXT> ${esc(text)}</TEXT>${list}\n      </RESPONSE>\n    </SIMPLE_RETURN>`;
}

/** What an evaluation subscription adds around the root element (real host list, 2022). */
export function withEvaluationComments(body: string, year: number): string {
  const m = /<[A-Za-z_]/.exec(body);
  if (!m) return body;
  const note = '<!-- This report was generated with an evaluation version of Qualys //--> \n';
  const legal = `<!-- CONFIDENTIAL AND PROPRIETARY INFORMATION. Qualys provides the QualysGuard Service "As Is," without any warranty of any kind. Qualys makes no warranty that the information contained in this report is complete or error-free. Copyright ${year}, Qualys, Inc. //--> \n`;
  const end = body.endsWith('\n') ? body : `${body}\n`;
  return `${body.slice(0, m.index)}${note}${end.slice(m.index)}${note}${legal}`;
}
