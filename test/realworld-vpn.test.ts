/**
 * Real daemons, real logs: runs ../shared/realworld/vpn-openvpn.sh and vpn-strongswan.sh (an
 * OpenVPN server / strongSwan responder and two real clients in network namespaces), decodes the
 * captured server logs with `--format auto`, and checks that every ground-truth tunnel (client →
 * tunnel IP) comes up and goes down, with no sighting that the ground truth does not explain.
 *
 * Needs root, working `ip netns`, and the Debian packages iproute2, util-linux, openssl, rsyslog,
 * openvpn, strongswan-charon, strongswan-swanctl. Without them each suite is skipped with the reason
 * printed — never silently.
 */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadRegistry } from '../src/parsers/registry.js';
import { LineDecoder } from '../src/parsers/decoder.js';
import type { Sighting } from '../src/sighting.js';
import { readLines } from './helpers/corpus.js';
import { SHARED } from './helpers/paths.js';

const REALWORLD = join(SHARED, 'realworld');
const SCRIPT_TIMEOUT_MS = 170_000;

function onPath(bin: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${bin}`], { stdio: 'ignore' }).status === 0;
}

/** Why the script cannot run here, or undefined when it can. */
function cannotRun(script: string, bins: string[], files: string[] = []): string | undefined {
  if (!existsSync(join(REALWORLD, script))) return `${join(REALWORLD, script)} not found (../shared missing)`;
  if (typeof process.getuid !== 'function' || process.getuid() !== 0) return 'not running as root';
  const missing = [...bins.filter((b) => !onPath(b)), ...files.filter((f) => !existsSync(f))];
  if (missing.length) return `missing: ${missing.join(', ')}`;
  const ns = spawnSync('ip', ['netns', 'list'], { encoding: 'utf8' });
  if (ns.status !== 0) return `\`ip netns list\` fails: ${(ns.stderr || ns.error?.message || '').trim()}`;
  return undefined;
}

interface Truth {
  client: string;
  /** common name / IKE identity */
  name: string;
  tunnelIp: string;
  underlayIp: string;
  connectedAt: number;
  downAt?: number;
}

/** `time client cn|identity event tunnel_ip|virtual_ip underlay_ip` */
function readTruth(file: string): Truth[] {
  const rows = readFileSync(file, 'utf8').trim().split('\n').slice(1).map((l) => l.split('\t'));
  const byClient = new Map<string, Truth>();
  for (const [time, client, name, event, ip, underlay] of rows) {
    if (event === 'connected') byClient.set(client, { client, name, tunnelIp: ip, underlayIp: underlay, connectedAt: Date.parse(time) });
    else if (byClient.has(client)) byClient.get(client)!.downAt = Date.parse(time);
  }
  return [...byClient.values()];
}

interface Decoded {
  sightings: Sighting[];
  formats: Set<string>;
}

async function decode(file: string): Promise<Decoded> {
  const decoder = new LineDecoder(await loadRegistry(), 'auto', 'local');
  const receivedAt = new Date();
  const out: Decoded = { sightings: [], formats: new Set() };
  readLines(file).forEach((text, i) => {
    const r = decoder.decode(text, { receivedAt, source: `file:${file}`, line: i + 1 });
    if (r.format) out.formats.add(r.format);
    out.sightings.push(...r.sightings);
  });
  return out;
}

/** Every ground-truth tunnel up and down recovered; nothing else. */
function checkAgainstTruth(d: Decoded, truth: Truth[], format: string, label: string): void {
  const summary = d.sightings.map((s) => `${s.kind} ${s.ip} ${s.user ?? '-'} ${s.remoteIp ?? '-'} ${s.at}`);
  console.log(`${label}: ${d.sightings.length} sightings\n  ${summary.join('\n  ')}`);
  expect([...d.formats], `${label}: formats that claimed lines`).toEqual([format]);
  for (const t of truth) {
    const ups = d.sightings.filter((s) => s.kind === 'tunnel-up' && s.ip === t.tunnelIp && s.user === t.name);
    expect(ups.length, `${label}: tunnel-up of ${t.name} ${t.tunnelIp}`).toBeGreaterThanOrEqual(1);
    expect(ups[0].remoteIp, `${label}: remote address of ${t.name}`).toBe(t.underlayIp);
    // the server logs the up within a few seconds of the client seeing its address (second-resolution stamps)
    expect(Math.abs(Date.parse(ups[0].at) - t.connectedAt), `${label}: up time of ${t.name}`).toBeLessThan(10_000);
    if (t.downAt !== undefined) {
      const downs = d.sightings.filter((s) => s.kind === 'tunnel-down' && s.ip === t.tunnelIp && s.user === t.name);
      expect(downs.length, `${label}: tunnel-down of ${t.name} ${t.tunnelIp}`).toBeGreaterThanOrEqual(1);
      const at = Date.parse(downs[0].at);
      // a clean exit is logged at once (OpenVPN: after its 5 s delayed exit); a killed client only when keepalive / DPD gives up
      expect(at, `${label}: down of ${t.name} not before the client stopped`).toBeGreaterThanOrEqual(t.downAt - 2_000);
      expect(at - t.downAt, `${label}: down of ${t.name} within a minute`).toBeLessThan(60_000);
    }
  }
  // no false sightings: each one is a ground-truth client's own tunnel
  const explained = (s: Sighting) =>
    truth.some((t) => t.tunnelIp === s.ip && t.name === s.user && (s.kind === 'tunnel-up' || t.downAt !== undefined));
  expect(d.sightings.filter((s) => !explained(s)).map((s) => `${s.kind} ${s.ip} ${s.user}`), `${label}: unexplained sightings`).toEqual([]);
}

function runScript(script: string, out: string): Promise<{ status: number | null; output: string }> {
  return new Promise((resolve) => {
    const child = spawn('bash', [join(REALWORLD, script), '--out', out], { stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (b: Buffer) => { output += b.toString(); });
    child.stderr.on('data', (b: Buffer) => { output += b.toString(); });
    const timer = setTimeout(() => child.kill('SIGKILL'), SCRIPT_TIMEOUT_MS);
    child.on('error', (err) => { output += String(err); });
    child.on('close', (status) => {
      clearTimeout(timer);
      resolve({ status, output });
    });
  });
}

/**
 * Runs a script once, started by the first caller: both servers start when the file's first hook
 * runs, side by side (each script names its namespaces per run), so the file takes one script's time.
 */
const started = new Map<string, Promise<{ status: number | null; output: string }>>();
function scriptRun(script: string, out: string): Promise<{ status: number | null; output: string }> {
  if (!started.has(script)) started.set(script, runScript(script, out));
  return started.get(script)!;
}

const OPENVPN_SKIP = cannotRun('vpn-openvpn.sh', ['ip', 'unshare', 'rsyslogd', 'openvpn', 'openssl']);
const STRONGSWAN_SKIP = cannotRun('vpn-strongswan.sh', ['ip', 'unshare', 'rsyslogd', 'swanctl'], ['/usr/lib/ipsec/charon']);
if (OPENVPN_SKIP) console.warn(`realworld-vpn: SKIPPING OpenVPN: ${OPENVPN_SKIP}`);
if (STRONGSWAN_SKIP) console.warn(`realworld-vpn: SKIPPING strongSwan: ${STRONGSWAN_SKIP}`);
const OUT = { openvpn: '', strongswan: '' };
beforeAll(() => {
  if (OPENVPN_SKIP === undefined) void scriptRun('vpn-openvpn.sh', (OUT.openvpn = mkdtempSync(join(tmpdir(), 'onsight-rw-openvpn-'))));
  if (STRONGSWAN_SKIP === undefined) void scriptRun('vpn-strongswan.sh', (OUT.strongswan = mkdtempSync(join(tmpdir(), 'onsight-rw-strongswan-'))));
});

describe.skipIf(OPENVPN_SKIP !== undefined)(`real OpenVPN server${OPENVPN_SKIP ? ` (skipped: ${OPENVPN_SKIP})` : ''}`, () => {
  let out = '';
  let truth: Truth[] = [];
  beforeAll(async () => {
    out = OUT.openvpn;
    const r = await scriptRun('vpn-openvpn.sh', out);
    if (r.status !== 0) throw new Error(`vpn-openvpn.sh exited ${r.status}:\n${r.output.slice(-3000)}`);
    truth = readTruth(join(out, 'openvpn-groundtruth.tsv'));
  }, SCRIPT_TIMEOUT_MS + 10_000);
  afterAll(() => {
    if (out) rmSync(out, { recursive: true, force: true });
  });

  it('ground truth has two clients that connected and stopped', () => {
    expect(truth.map((t) => t.name).sort()).toEqual(['alice-laptop', 'bob-phone']);
    expect(truth.every((t) => t.tunnelIp && t.downAt !== undefined)).toBe(true);
  });
  it('recovers every tunnel from the syslog file (RFC 3164)', async () => {
    checkAgainstTruth(await decode(join(out, 'openvpn-server.log')), truth, 'openvpn', 'openvpn-server.log');
  });
  it('recovers every tunnel from the RFC 5424 rendering', async () => {
    checkAgainstTruth(await decode(join(out, 'openvpn-server.rfc5424.log')), truth, 'openvpn', 'openvpn-server.rfc5424.log');
  });
  it('reads both clients from the status file (version 2)', async () => {
    const d = await decode(join(out, 'openvpn-status-connected.txt'));
    const ups = d.sightings.filter((s) => s.kind === 'tunnel-up').map((s) => `${s.user} ${s.ip} ${s.remoteIp}`).sort();
    expect(ups).toEqual(truth.map((t) => `${t.name} ${t.tunnelIp} ${t.underlayIp}`).sort());
  });
});

describe.skipIf(STRONGSWAN_SKIP !== undefined)(`real strongSwan responder${STRONGSWAN_SKIP ? ` (skipped: ${STRONGSWAN_SKIP})` : ''}`, () => {
  let out = '';
  let truth: Truth[] = [];
  beforeAll(async () => {
    out = OUT.strongswan;
    const r = await scriptRun('vpn-strongswan.sh', out);
    if (r.status !== 0) throw new Error(`vpn-strongswan.sh exited ${r.status}:\n${r.output.slice(-3000)}`);
    truth = readTruth(join(out, 'strongswan-groundtruth.tsv'));
  }, SCRIPT_TIMEOUT_MS + 10_000);
  afterAll(() => {
    if (out) rmSync(out, { recursive: true, force: true });
  });

  it('ground truth has two clients that connected and stopped', () => {
    expect(truth.map((t) => t.name).sort()).toEqual(['carol@lab.example', 'dave@lab.example']);
    expect(truth.every((t) => t.tunnelIp && t.downAt !== undefined)).toBe(true);
  });
  it('recovers every tunnel from the syslog file (RFC 3164)', async () => {
    checkAgainstTruth(await decode(join(out, 'strongswan-charon.log')), truth, 'strongswan', 'strongswan-charon.log');
  });
  it('recovers every tunnel from the RFC 5424 rendering', async () => {
    checkAgainstTruth(await decode(join(out, 'strongswan-charon.rfc5424.log')), truth, 'strongswan', 'strongswan-charon.rfc5424.log');
  });
});
