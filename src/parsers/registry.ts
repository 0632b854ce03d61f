/**
 * Finds parser plug-ins: the built-in ones (one folder each under `parsers/`) and a user's
 * directory of modules implementing the same interface. Loaded once at start, validated.
 */
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { OnsightError } from '../errors.js';
import { isParserPlugin, type ParserPlugin } from './plugin.js';

/** `parsers/` next to `src/` in the source tree, `dist/parsers/` next to `dist/src/` when built */
const BUILTIN_DIR = fileURLToPath(new URL('../../parsers/', import.meta.url));

/** The order `auto` tries formats in: more specific detectors first. */
const AUTO_ORDER = ['cisco-asa', 'fortigate', 'globalprotect', 'windows-dhcp', 'infoblox', 'kea-dhcp4', 'dnsmasq', 'openvpn', 'strongswan', 'isc-dhcpd'];

export class ParserRegistry {
  private readonly byId = new Map<string, ParserPlugin>();
  private readonly userIds = new Set<string>();

  add(p: ParserPlugin, fromUser = false): void {
    if (this.byId.has(p.id)) throw new OnsightError('ONSIGHT_PLUGIN_INVALID', `parser id "${p.id}" is defined twice`);
    this.byId.set(p.id, p);
    if (fromUser) this.userIds.add(p.id);
  }

  get(id: string): ParserPlugin | undefined {
    return this.byId.get(id);
  }

  isUser(id: string): boolean {
    return this.userIds.has(id);
  }

  /** all plug-ins in auto-detection order: user plug-ins first (they are the most specific), then built-ins */
  list(): ParserPlugin[] {
    const rank = (p: ParserPlugin) => (this.userIds.has(p.id) ? -1 : AUTO_ORDER.indexOf(p.id) === -1 ? AUTO_ORDER.length : AUTO_ORDER.indexOf(p.id));
    return [...this.byId.values()].sort((a, b) => rank(a) - rank(b) || a.id.localeCompare(b.id));
  }

  ids(): string[] {
    return this.list().map((p) => p.id);
  }
}

function moduleIn(dir: string): string | undefined {
  for (const name of ['index.js', 'index.mjs', 'index.ts']) {
    const f = join(dir, name);
    if (existsSync(f)) return f;
  }
  return undefined;
}

async function importPlugin(file: string): Promise<ParserPlugin> {
  let mod: { default?: unknown; plugin?: unknown };
  try {
    mod = (await import(pathToFileURL(file).href)) as typeof mod;
  } catch (err) {
    throw new OnsightError('ONSIGHT_PLUGIN_INVALID', `cannot load parser plug-in ${file}: ${(err as Error).message}`, { cause: err });
  }
  const p = mod.default ?? mod.plugin;
  if (!isParserPlugin(p)) {
    throw new OnsightError('ONSIGHT_PLUGIN_INVALID',
      `${file}: the default export is not a parser plug-in (needs id matching [a-z0-9-], description, detect(), create())`);
  }
  return p;
}

/** The built-in parsers: every folder of `parsers/` that has an index module. */
export async function builtinPlugins(): Promise<ParserPlugin[]> {
  const out: ParserPlugin[] = [];
  for (const name of readdirSync(BUILTIN_DIR).sort()) {
    const dir = join(BUILTIN_DIR, name);
    if (!statSync(dir).isDirectory()) continue;
    const file = moduleIn(dir);
    if (file) out.push(await importPlugin(file));
  }
  return out;
}

/** User plug-ins: each `.js`/`.mjs` file, or each folder with an index module, in `dir`. */
export async function userPlugins(dir: string): Promise<ParserPlugin[]> {
  const root = resolve(dir);
  if (!existsSync(root)) throw new OnsightError('ONSIGHT_PLUGIN_INVALID', `parser plug-in directory ${root} does not exist`);
  const out: ParserPlugin[] = [];
  for (const name of readdirSync(root).sort()) {
    const full = join(root, name);
    const st = statSync(full);
    const file = st.isDirectory() ? moduleIn(full) : /\.(m?js)$/.test(name) ? full : undefined;
    if (file) out.push(await importPlugin(file));
  }
  return out;
}

let cached: Promise<ParserRegistry> | undefined;

/** Built-ins plus (optionally) the user's plug-in directory. */
export async function loadRegistry(userDir?: string): Promise<ParserRegistry> {
  if (!userDir) {
    cached ??= (async () => {
      const r = new ParserRegistry();
      for (const p of await builtinPlugins()) r.add(p);
      return r;
    })();
    return cached;
  }
  const r = new ParserRegistry();
  for (const p of await builtinPlugins()) r.add(p);
  for (const p of await userPlugins(userDir)) r.add(p, true);
  return r;
}
