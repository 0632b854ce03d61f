/**
 * What `onsight config check` and `onsight run` both verify beyond the schema, against this host:
 * parser plug-ins load, every input's format exists, every tailed path can be a regular file. One
 * function, so that run never accepts what config check refuses, nor the reverse.
 */
import { existsSync, statSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { ConfigError, type ConfigIssue } from '../errors.js';
import { loadRegistry, type ParserRegistry } from '../parsers/registry.js';
import { globToRegExp, isGlob } from '../sources/file/input.js';
import type { LoadedConfig } from './load.js';
import { inputParserFormat } from '../daemon/inputs.js';

/** Why a tailed path can never be read as a log file, or undefined when it can (or may appear later). */
export function tailedPathProblem(path: string): string | undefined {
  const dir = isGlob(path) ? globToRegExp(path).base : dirname(path);
  const kind = (p: string) => {
    try {
      const st = statSync(p);
      return st.isFile() ? 'file' : st.isDirectory() ? 'directory' : st.isFIFO() ? 'FIFO' : st.isSocket() ? 'socket' : 'special file';
    } catch {
      return undefined;
    }
  };
  const d = kind(dir);
  if (d === undefined) return `its directory ${dir} does not exist`;
  if (d !== 'directory') return `${dir} is a ${d}, not a directory`;
  if (isGlob(path)) return undefined;
  const f = kind(path);
  if (f !== undefined && f !== 'file') return `${path} is a ${f}, not a regular file`;
  return undefined;
}

/**
 * Why a lease database's path can never be read, if it cannot: there and not a regular file. Its
 * path is a name, never a glob (`fifo[1].leases` passed as one); one not there yet is waited for.
 */
export function leasePathProblem(path: string): string | undefined {
  const st = existsSync(path) ? statSync(path) : undefined;
  const kind = !st || st.isFile() ? undefined : st.isDirectory() ? 'directory' : st.isFIFO() ? 'FIFO' : st.isSocket() ? 'socket' : 'special file';
  return kind ? `${path} is a ${kind}, not a regular file` : undefined;
}

/** a file's device and inode, or undefined when it is not there (yet) */
function fileId(path: string): string | undefined {
  try {
    const st = statSync(path);
    return `${st.dev}:${st.ino}`;
  } catch {
    return undefined;
  }
}

/** Throws a ConfigError listing every problem (with lines); returns the parser registry it loaded. */
export async function checkConfigEnvironment(loaded: LoadedConfig): Promise<ParserRegistry> {
  const { config, locate, origin } = loaded;
  let registry: ParserRegistry;
  try {
    registry = await loadRegistry(config.parsers.directory);
  } catch (err) {
    throw new ConfigError([{ path: 'parsers.directory', line: locate(['parsers', 'directory']), message: (err as Error).message }], origin);
  }
  const issues: ConfigIssue[] = [];
  // one file under two names (a symlink, a hard link): each of its lines would be applied twice
  const seen = new Map<string, { i: number; path: string }>();
  config.inputs.forEach((inp, i) => {
    const format = inputParserFormat(inp); // lease databases decode their own
    if (format !== undefined && format !== 'auto' && !registry.get(format)) {
      issues.push({ path: `inputs[${i}].format`, line: locate(['inputs', i, 'format']), message: `unknown format "${format}" (known: auto, ${registry.ids().join(', ')})` });
    }
    if (inp.type === 'file') {
      const problem = tailedPathProblem(inp.path);
      if (problem) issues.push({ path: `inputs[${i}].path`, line: locate(['inputs', i, 'path']), message: `cannot tail ${inp.path}: ${problem}` });
      const id = isGlob(inp.path) ? undefined : fileId(inp.path);
      const other = id === undefined ? undefined : seen.get(id);
      if (other && other.path !== inp.path) issues.push({ path: `inputs[${i}].path`, line: locate(['inputs', i, 'path']), message: `${inp.path} is the same file as ${other.path} (inputs[${other.i}]): each of its lines would be applied twice` });
      else if (id !== undefined) seen.set(id, { i, path: inp.path });
      // (one not there yet is fine: logrotate's createolddir makes it at the first rotation)
      const olddir = inp.rotatedDir !== undefined && !isGlob(inp.path) ? resolve(dirname(inp.path), inp.rotatedDir) : undefined;
      if (olddir !== undefined && existsSync(olddir) && !statSync(olddir).isDirectory()) {
        issues.push({ path: `inputs[${i}].rotatedDir`, line: locate(['inputs', i, 'rotatedDir']), message: `${olddir} is not a folder (rotatedDir names the folder logrotate's olddir moves ${inp.path}'s rotations to)` });
      }
    }
    if (inp.type === 'lease') {
      // (a FIFO there passed the check, then hung the start: the input refuses it now, but says so only in
      // its log. A lease database not there yet, its server not installed, is waited for)
      const problem = leasePathProblem(inp.path);
      if (problem) issues.push({ path: `inputs[${i}].path`, line: locate(['inputs', i, 'path']), message: `cannot read the lease database ${inp.path}: ${problem}` });
    }
  });
  if (issues.length) throw new ConfigError(issues, origin);
  return registry;
}
