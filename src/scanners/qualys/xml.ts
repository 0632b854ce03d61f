/**
 * XML parsing for Qualys answers. Values stay strings (IDs and `scan/1736361211.27337` must not
 * become numbers), list elements are always arrays (one record is not an object), the DOCTYPE is
 * never fetched, and a malformed body is an error value, never a crash.
 */
import { XMLParser, XMLValidator } from 'fast-xml-parser';

const LIST_ELEMENTS = new Set([
  'SCAN', 'APPLIANCE', 'HOST', 'ITEM', 'VALUE', 'DETECTION', 'ASSET_GROUP_TITLE', 'ASSET_GROUP',
  'ASSET_TAG', 'TAG', 'PARAM', 'WARNING', 'IP', 'IP_RANGE',
]);

const parser = new XMLParser({
  ignoreAttributes: false,
  parseTagValue: false,
  parseAttributeValue: false,
  trimValues: true,
  processEntities: true,
  isArray: (name, jpath) => LIST_ELEMENTS.has(name) && !isScalarIp(name, String(jpath)),
});

/** HOST/IP is a scalar, IP_SET/IP is a list. */
function isScalarIp(name: string, jpath: string): boolean {
  return name === 'IP' && !jpath.endsWith('IP_SET.IP');
}

export type XmlNode = Record<string, unknown>;

export type ParseResult = { ok: true; root: string; doc: XmlNode } | { ok: false; reason: string };

export function parseXml(text: string): ParseResult {
  if (text.trim() === '') return { ok: false, reason: 'empty body' };
  const valid = XMLValidator.validate(text);
  if (valid !== true) return { ok: false, reason: `${valid.err.code} at line ${valid.err.line}: ${valid.err.msg}` };
  let parsed: XmlNode;
  try {
    parsed = parser.parse(text) as XmlNode;
  } catch (err) {
    return { ok: false, reason: (err as Error).message };
  }
  const root = Object.keys(parsed).find((k) => !k.startsWith('?') && !k.startsWith('!'));
  if (!root) return { ok: false, reason: 'no root element' };
  const doc = parsed[root];
  return { ok: true, root, doc: typeof doc === 'object' && doc !== null ? (doc as XmlNode) : {} };
}

/** Text content of an element that may carry attributes ({ '#text': ... }). */
export function text(v: unknown): string | undefined {
  if (v === undefined || v === null) return undefined;
  if (typeof v === 'string') return v;
  if (typeof v === 'number' || typeof v === 'boolean') return String(v);
  if (Array.isArray(v)) return text(v[0]);
  if (typeof v === 'object' && '#text' in (v as XmlNode)) return text((v as XmlNode)['#text']);
  if (typeof v === 'object') return '';
  return undefined;
}

export function int(v: unknown): number | undefined {
  const t = text(v);
  if (t === undefined || t === '') return undefined;
  const n = Number(t);
  return Number.isFinite(n) ? n : undefined;
}

export function node(v: unknown): XmlNode | undefined {
  if (Array.isArray(v)) return node(v[0]);
  return typeof v === 'object' && v !== null ? (v as XmlNode) : undefined;
}

export function list(v: unknown): XmlNode[] {
  if (v === undefined || v === null) return [];
  const arr = Array.isArray(v) ? v : [v];
  return arr.filter((x): x is XmlNode => typeof x === 'object' && x !== null);
}

/** SIMPLE_RETURN RESPONSE parts: CODE, TEXT and ITEM_LIST as a key → values map. */
export interface SimpleReturn {
  code?: number;
  text?: string;
  items: Map<string, string[]>;
}

export function simpleReturn(doc: XmlNode): SimpleReturn {
  const resp = node(doc.RESPONSE) ?? {};
  const items = new Map<string, string[]>();
  for (const item of list(node(resp.ITEM_LIST)?.ITEM)) {
    const key = text(item.KEY);
    if (key === undefined) continue;
    const values = Array.isArray(item.VALUE) ? item.VALUE.map((x) => text(x) ?? '') : item.VALUE === undefined ? [] : [text(item.VALUE) ?? ''];
    items.set(key, values);
  }
  return { code: int(resp.CODE), text: text(resp.TEXT), items };
}

/** The truncation WARNING (CODE 1980) of a list answer: the URL of the next page. */
export function nextPageUrl(doc: XmlNode): string | undefined {
  const resp = node(doc.RESPONSE) ?? {};
  for (const w of list(resp.WARNING)) {
    const url = text(w.URL);
    if (int(w.CODE) === 1980 && url) return url.trim();
    if (url && int(w.CODE) === undefined) return url.trim();
  }
  return undefined;
}
