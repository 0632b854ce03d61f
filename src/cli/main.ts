/**
 * The `onsight` command line (DESIGN.md). Exit codes: 0 ok, 1 runtime failure, 2 bad usage or config.
 */
import { accessSync, constants } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { Command, CommanderError, InvalidArgumentError, Option } from 'commander';
import { ConfigError, exitCodeFor, formatIssues, OnsightError, UsageError } from '../errors.js';
import { loadConfig } from '../config/load.js';
import { checkConfigEnvironment } from '../config/check.js';
import { isValidZone } from '../util/time.js';
import { onsightVersion } from '../http/status.js';
import { loadRegistry } from '../parsers/registry.js';
import { limitRegexBacktracking } from '../daemon/decode-client.js';
import { createLogger } from '../log.js';
import { runParse } from './parse.js';
import { parseWhen } from './target.js';
import { decisionsView, hostsView, queueView, scansView } from './views.js';

/** the longest `onsight simulate --days` */
const MAX_SIM_DAYS = 366;

const program = new Command('onsight')
  .description('Scan hosts on sight: watch DHCP/VPN logs, launch a vulnerability scan while the device is still on the network.')
  .version(onsightVersion(), '-V, --version', 'print the version')
  .exitOverride()
  .configureOutput({ writeErr: (s) => process.stderr.write(s) });

/** after a stop signal that came while starting, how long the start may still take before the process ends without a clean stop (systemd's TimeoutStopSec is 30 s) */
const START_STOP_GRACE_MS = 10_000;

const configOption = () => new Option('-c, --config <file>', 'config file (YAML); without it, $ONSIGHT_CONFIG, else the embedded default').env('ONSIGHT_CONFIG');

program.command('run')
  .description('run the daemon')
  .addOption(configOption())
  .action(async (o: { config?: string }) => {
    // Signal handlers go in first: a signal that arrives while starting (loading the config and
    // plug-ins, reconcile, the sweep, a PostgreSQL connection can take seconds, and systemd's
    // Type=exec takes `systemctl reload` at once) must not meet Node's default action, which ends
    // the process. Until start() has finished they are recorded: SIGTERM/SIGINT then stop the
    // daemon, and a SIGHUP is applied.
    let stopSignal: string | undefined;
    let reloadPending = false;
    // a start held up (a state store that does not answer, a scanner call at reconcile) holds a stop
    // signal no longer than START_STOP_GRACE_MS: then the process ends, said, before systemd's kill
    let say = (msg: string, level: 'info' | 'error' = 'error') => void process.stderr.write(`${level}: ${msg}\n`);
    let startGrace: NodeJS.Timeout | undefined;
    // a second stop signal is said and changes nothing (a stop commits what was read); a third is a
    // person who wants out now, as dockerd and Caddy take it: the process ends without a clean stop
    let stopSignals = 0;
    const again = (sig: string, doing: string): void => {
      if (++stopSignals < 3) return say(`${sig} again: ${doing} (a third stop signal ends the process at once, without a clean stop)`, 'info');
      say(`${sig} a third time: exiting without a clean stop (lines received and not yet committed are lost; a tailed file's are read again at the next start)`);
      void flushAndExit(1);
    };
    let onSignal = (sig: string) => {
      if (sig === 'SIGHUP') reloadPending = true;
      else if (stopSignal) again(sig, 'already stopping once the start has finished');
      else {
        stopSignals = 1;
        stopSignal = sig;
        say(`${sig} while starting: stopping once the start has finished (${START_STOP_GRACE_MS / 1000} s at most)`, 'info');
        startGrace = setTimeout(() => {
          say(`${sig} while starting, and the start has not finished ${START_STOP_GRACE_MS / 1000} s later (a state store or scanner that does not answer?): exiting without a clean stop`);
          void flushAndExit(1);
        }, START_STOP_GRACE_MS);
        startGrace.unref();
      }
    };
    // (on, not once: a second SIGTERM or Ctrl-C while draining would meet Node's default action and
    // end the process mid-stop, losing what the drain was committing)
    process.on('SIGTERM', () => onSignal('SIGTERM'));
    process.on('SIGINT', () => onSignal('SIGINT'));
    process.on('SIGHUP', () => onSignal('SIGHUP'));
    // the launcher's (bin/onsight.js): the signals that came while this code loaded, handed over
    const early = (globalThis as { onsightEarlySignals?: { signals: string[]; release(): void } }).onsightEarlySignals;
    early?.release();
    for (const sig of early?.signals ?? []) onSignal(sig);
    const { Daemon } = await import('../daemon/daemon.js');
    const loaded = loadConfig(o.config);
    // what config check refuses, run refuses too (exit 2, file:line); but a secret that is not
    // readable yet alone (a file a vault agent writes after boot, install.sh's empty qualys.pass)
    // exits 1, which systemd's Restart=on-failure tries again (RestartPreventExitStatus=2 would not)
    await checkConfigEnvironment(loaded).catch((err: unknown) => {
      if (err instanceof ConfigError && err.issues.length && err.issues.every((i) => i.mayResolve)) {
        throw new OnsightError('ONSIGHT_CREDENTIALS', `${err.message} (exit 1: a restart tries again)`);
      }
      throw err;
    });
    const log = createLogger({ level: loaded.config.log.level });
    say = (msg, level = 'error') => { log[level](msg); };
    for (const w of loaded.warnings) log.warn(`config: ${formatIssues([w], loaded.origin)}`);
    if (!o.config) log.info('no --config given: using the embedded default (SQLite under ./data, syslog on 127.0.0.1:5514 UDP+TCP, dry-run scanner)');
    const daemon = new Daemon({ config: loaded.config, log });
    let stopped: () => void = () => undefined;
    const done = new Promise<void>((resolve) => { stopped = resolve; });
    /** SIGHUPs taken and not yet done (read, checked, applied or refused) */
    let reloadsInFlight = 0;
    const stop = (sig: string) => {
      log.info(`${sig}: draining and stopping`);
      // (a reload the stop overtook is not applied to a daemon that is stopping, nor held up for: said here, as the process may exit before it would end)
      if (reloadsInFlight) log.info(`SIGHUP: the reload in progress is abandoned (${sig}: stopping; the next start reads ${o.config ?? 'the config'})`);
      daemon.stop().then(stopped, (err: Error) => {
        log.error({ err: { message: err.message } }, 'error while stopping');
        process.exitCode = 1; // something was left undone (stop() logged which steps): not a clean stop
        stopped();
      });
    };
    // (one reload at a time, in the order the signals came: the file is read and checked before it is applied)
    let reloading = Promise.resolve();
    // (reloadNow catches what it can; a failure past that must not leave the chain rejected, holding every later SIGHUP)
    const reload = () => {
      reloadsInFlight++;
      reloading = reloading.then(reloadNow).catch((err: Error) => log.error({ err: { message: err.message } }, 'SIGHUP: reload failed')).finally(() => void reloadsInFlight--);
    };
    const reloadNow = async () => {
      if (stopSignal) return; // (abandoned: stop() said so)
      // certificates reload live; so do policy, regions and scheduler settings from the config file
      void daemon.reloadTls(); // (each failure is logged with its listener's name)
      if (!o.config) return log.info('SIGHUP: certificates reloaded (embedded default config: nothing else to re-read)');
      try {
        const next = loadConfig(o.config);
        // (what config check and run refuse, a reload refuses too; but not for an input the daemon runs
        // as it is: a file input whose folder vanished refused a reload that only added an exclusion)
        try {
          await checkConfigEnvironment(next, { running: daemon.config }); // (a secret of a section as it runs: said, not refused)
        } catch (err) {
          if (stopSignal) return; // (abandoned, as below)
          // (only when inputs and parsers are as running, whole: per input, a reordering or a new hard link passed)
          const same = (a: unknown, b: unknown) => JSON.stringify(a) === JSON.stringify(b);
          const asRunning = same(next.config.inputs, daemon.config.inputs) && same(next.config.parsers, daemon.config.parsers);
          if (!(err instanceof ConfigError) || !asRunning || !err.issues.every((i) => /^inputs\[/.test(i.path))) throw err;
          log.warn(`SIGHUP: ${formatIssues(err.issues, next.origin)} (an input running as configured: a restart would refuse it; the rest is applied)`);
        }
        // a stop began while the file was checked (a parser plug-in's load takes a while): abandoned, stop() said so
        if (stopSignal) return;
        for (const w of next.warnings) log.warn(`SIGHUP: config: ${formatIssues([w], next.origin)}`);
        const restart = daemon.applyConfig(next.config);
        log.info(`SIGHUP: ${o.config} reloaded: policy, regions, scheduler and inventory settings applied`);
        if (restart.length) log.warn(`SIGHUP: ${restart.join(', ')} changed in ${o.config}: restart onsight to apply those`);
      } catch (err) {
        log.warn(`SIGHUP: ${o.config} does not validate (the running config stays): ${(err as Error).message}`);
      }
    };
    try {
      await daemon.start();
    } finally {
      clearTimeout(startGrace);
    }
    // started: signals act at once (a SIGHUP while stopping has nothing left to reload)
    onSignal = (sig: string) => {
      if (stopSignal) {
        // (a SIGHUP while stopping has nothing left to reload)
        if (sig !== 'SIGHUP') again(sig, 'already draining and stopping');
        return;
      }
      if (sig === 'SIGHUP') return void reload();
      stopSignal = sig;
      stopSignals = 1;
      stop(sig);
    };
    if (stopSignal) stop(stopSignal);
    else if (reloadPending) {
      log.info('SIGHUP received while starting: applying it now');
      void reload();
    }
    await done;
  });

program.command('parse')
  .description('read log lines (files or stdin), print one Sighting JSON per line; never launches anything')
  .requiredOption('-f, --format <id>', 'parser id, or auto')
  .option('-z, --zone <zone>', 'time zone for stamps without one (IANA name, UTC or local)')
  .option('-e, --explain', 'say on stderr, as FILE:LINE: reason, why each line gave no sighting')
  .addOption(configOption())
  .argument('[files...]', 'files to read (stdin when none)')
  .action(async (files: string[], o: { format: string; zone?: string; config?: string; explain?: boolean }) => {
    if (o.zone !== undefined && !isValidZone(o.zone)) throw new UsageError(`--zone: unknown time zone "${o.zone}" (an IANA name such as Europe/Berlin, UTC or local)`);
    const loaded = o.config ? loadConfig(o.config) : undefined;
    // (before a user plug-in is loaded: its regex may backtrack without end on a crafted line, as in the daemon)
    limitRegexBacktracking();
    const registry = await loadRegistry(loaded?.config.parsers.directory);
    if (o.format !== 'auto' && !registry.get(o.format)) throw new UsageError(`unknown format "${o.format}"; known: auto, ${registry.ids().join(', ')}`);
    process.exitCode = await runParse(registry, {
      format: o.format, zone: o.zone ?? loaded?.config.timezone ?? 'local', files, out: process.stdout, err: process.stderr,
      progress: process.stderr.isTTY === true && !o.explain, explain: o.explain,
    });
  });

program.command('formats')
  .description('list the parser ids with a one-line description each')
  .addOption(configOption())
  .action(async (o: { config?: string }) => {
    const loaded = o.config ? loadConfig(o.config) : undefined;
    const registry = await loadRegistry(loaded?.config.parsers.directory);
    const list = registry.list().sort((a, b) => a.id.localeCompare(b.id));
    const w = Math.max(...list.map((p) => p.id.length));
    for (const p of list) process.stdout.write(`${p.id.padEnd(w)}  ${p.description}${registry.isUser(p.id) ? ' (user plug-in)' : ''}\n`);
  });

const config = program.command('config').description('config file tools');
config.command('check')
  .description('validate a config file, printing each error with its key path and line')
  .addOption(configOption())
  .action(async (o: { config?: string }) => {
    const loaded = loadConfig(o.config);
    await checkConfigEnvironment(loaded, { checkOnly: true }); // (a systemd credential it cannot see outside the unit: a warning)
    for (const w of loaded.warnings) process.stderr.write(`warning: ${formatIssues([w], loaded.origin)}\n`);
    process.stdout.write(`${loaded.origin}: ok (${loaded.config.inputs.length} inputs, ${loaded.config.regions.length} regions, scanner ${loaded.config.scanner.type})\n`);
  });

program.command('doctor')
  .description('check config, state, inputs, credentials, scanner API reachability, rate-limit headroom, appliances and regions')
  .addOption(configOption())
  .action(async (o: { config?: string }) => {
    const { runDoctor } = await import('./doctor.js');
    const loaded = loadConfig(o.config);
    process.exitCode = await runDoctor(loaded, createLogger({ level: 'warn', fd: 2, pretty: false }), process.stdout);
  });

const cluster = program.command('cluster').description('cluster mode (PostgreSQL state)');
cluster.command('status')
  .description('the leader, its epoch and lease expiry, the members and their heartbeats, the inbox backlog')
  .option('--json', 'JSON instead of text')
  .addOption(configOption())
  .action(async (o: { json?: boolean; config?: string }) => {
    const { clusterStatusView } = await import('./cluster.js');
    process.stdout.write(await clusterStatusView(loadConfig(o.config).config, o.json === true));
  });

const stateCommand = program.command('state').description('the state database');
stateCommand.command('copy')
  .description("move an embedded install's SQLite state into the config's (empty) PostgreSQL state: identities, last scans, bindings, sightings, decisions, queue, intents, marks, checkpoints; verified by counts")
  .addOption(new Option('--to <engine>', 'where to: the config\'s state').choices(['postgres']).makeOptionMandatory())
  .requiredOption('--from <file>', 'the SQLite state file (the old config\'s state:); no daemon may be running on it')
  .option('--force', 'replace what the PostgreSQL database already holds')
  .addOption(configOption())
  .action(async (o: { to: string; from: string; force?: boolean; config?: string }) => {
    const { copyStateToPostgres } = await import('../store/copy.js');
    const { config: cfg } = loadConfig(o.config);
    const r = await copyStateToPostgres(cfg, { from: o.from, force: o.force === true, progress: (line) => process.stderr.write(`${line}\n`) });
    const total = Object.values(r.counts).reduce((a, b) => a + b, 0);
    process.stdout.write(`copied ${o.from} to ${r.target} in ${(r.ms / 1000).toFixed(1)} s: ${total} rows, counts verified\n` +
      Object.entries(r.counts).map(([t, n]) => `  ${t.padEnd(15)} ${n}\n`).join('') +
      (r.node ? `file checkpoints and source positions are now node ${r.node}'s (cluster.node)\n` : '') +
      'start the daemon with this config (onsight run); keep the SQLite file until you are satisfied\n');
  });

/** `--limit N`: how many of the newest rows a view prints (a cut list says so on stderr) */
const limitOption = (dflt: string) => new Option('--limit <n>', `the newest N rows (default ${dflt})`).argParser((v) => {
  if (!/^\d+$/.test(v) || Number(v) < 1 || Number(v) > 1_000_000) throw new InvalidArgumentError('a whole number from 1 to 1000000');
  return Number(v);
});

for (const [name, view, what] of [['hosts', hostsView, 'devices present now, whether each is due and why'], ['queue', queueView, 'due hosts waiting for a scan']] as const) {
  program.command(name)
    .description(`show ${what}`)
    .option('--json', 'JSON instead of a table')
    .addOption(configOption())
    .action(async (o: { json?: boolean; config?: string }) => {
      const { config: cfg } = loadConfig(o.config);
      process.stdout.write(await view({ config: cfg, now: Date.now() }, o.json === true));
    });
}

program.command('scans')
  .description('show recent scan intents and their state, newest first')
  .option('--json', 'JSON instead of a table')
  .addOption(limitOption('200'))
  .addOption(configOption())
  .action(async (o: { json?: boolean; limit?: number; config?: string }) => {
    const { config: cfg } = loadConfig(o.config);
    process.stdout.write(await scansView({ config: cfg, now: Date.now() }, o.json === true, o.limit));
  });

program.command('decisions')
  .description('show the decision log, newest first (due, not due and why, dropped, launched, scanned)')
  .option('--ip <addr>', 'only decisions about this address')
  .option('--mac <mac>', 'only decisions about the device(s) with this MAC')
  .option('--since <when>', 'only decisions since a duration ago (2h, 7d) or a date (2026-12-01T08:00Z)')
  .option('--json', 'JSON instead of a table')
  .addOption(limitOption('100, or 1000 with --ip, --mac or --since'))
  .addOption(configOption())
  .action(async (o: { ip?: string; mac?: string; since?: string; json?: boolean; limit?: number; config?: string }) => {
    const { filteredDecisionsView } = await import('./why.js');
    const { parseTarget } = await import('./target.js');
    const now = Date.now();
    const ip = o.ip === undefined ? undefined : parseTarget(o.ip);
    if (ip && ip.kind !== 'ip') throw new UsageError(`--ip: not an IP address: "${o.ip}"`);
    const mac = o.mac === undefined ? undefined : parseTarget(o.mac);
    if (mac && mac.kind !== 'mac') throw new UsageError(`--mac: not a MAC address: "${o.mac}"`);
    const since = o.since === undefined ? undefined : parseWhen(o.since, now, '--since', -1);
    const { config: cfg } = loadConfig(o.config);
    process.stdout.write(ip || mac || since !== undefined
      ? await filteredDecisionsView(cfg, { ip: ip?.value, mac: mac?.value, since }, o.json === true, o.limit)
      : await decisionsView({ config: cfg, now }, o.json === true, o.limit));
  });

program.command('report')
  .description('coverage per region over a period: devices seen, scanned within policy, pending, skipped, and missed by reason (keyed by device); devices in scope that no region maps as "(no region)"; a device seen in several regions counts in each, and once in the total')
  .option('--since <when>', 'the period: a duration ago (7d, 12h) or a date (2026-12-01T00:00Z)', '7d')
  .option('--region <name>', 'only this region')
  .option('--csv', 'CSV (RFC 4180) instead of a table')
  .option('--html', 'a self-contained HTML page instead of a table')
  .option('--json', 'JSON instead of a table')
  .addOption(configOption())
  .action(async (o: { since: string; region?: string; csv?: boolean; html?: boolean; json?: boolean; config?: string }) => {
    const { buildReport, renderReport } = await import('./report.js');
    if ([o.csv, o.html, o.json].filter(Boolean).length > 1) throw new UsageError('choose one of --csv, --html and --json');
    const now = Date.now();
    const from = parseWhen(o.since, now, '--since', -1);
    const { config: cfg } = loadConfig(o.config);
    process.stdout.write(renderReport(await buildReport(cfg, from, now, o.region), o.csv ? 'csv' : o.html ? 'html' : o.json ? 'json' : 'table'));
  });

program.command('why')
  .description("show a device's history: its sightings, the scheduler's decisions about it, and the scans that targeted it")
  .argument('<target>', 'an IP address, a MAC address, a user name, or a device as onsight prints it (mac:…, duid:…, user:…|host)')
  .option('--json', 'JSON instead of tables')
  .addOption(limitOption('50 of each list'))
  .addOption(configOption())
  .action(async (target: string, o: { json?: boolean; limit?: number; config?: string }) => {
    const { whyView } = await import('./why.js');
    const { config: cfg } = loadConfig(o.config);
    process.stdout.write(await whyView(cfg, target, o.json === true, o.limit));
  });

program.command('rescan')
  .description('scan a device present now at its next chance, whatever its last scan (the running daemon picks this up within a second)')
  .argument('<target>', 'an IP address, a MAC address, a user name, or a device as onsight prints it (mac:…, duid:…, user:…|host)')
  .addOption(configOption())
  .action(async (target: string, o: { config?: string }) => {
    const { runOperatorAction } = await import('./operator.js');
    const { parseTarget } = await import('./target.js');
    const t = parseTarget(target);
    const { config: cfg } = loadConfig(o.config);
    process.stdout.write(await runOperatorAction(cfg, t, { kind: 'rescan' }, Date.now()));
  });

program.command('skip')
  .description('never queue or launch a scan of a device present now until a time (its decisions say why)')
  .argument('<target>', 'an IP address, a MAC address, a user name, or a device as onsight prints it (mac:…, duid:…, user:…|host)')
  .option('--until <when>', 'a duration from now with its unit (2h, 7d), a future date (2026-12-24T08:00Z), or now (lift the skip); default: until lifted')
  .addOption(configOption())
  .action(async (target: string, o: { until?: string; config?: string }) => {
    const { parseSkipUntil, runOperatorAction } = await import('./operator.js');
    const { parseTarget } = await import('./target.js');
    const t = parseTarget(target);
    const now = Date.now();
    const until = parseSkipUntil(o.until, now, '--until');
    const { config: cfg } = loadConfig(o.config);
    process.stdout.write(await runOperatorAction(cfg, t, { kind: 'skip', until }, now));
  });

const emulate = program.command('emulate').description('run an emulated scanner API for dry runs and tests');
/** One emulator per scanner vendor: `onsight emulate <vendor>` (each prints where it listens and what it accepts). */
const EMULATORS: [string, string, () => Promise<{ run: (a: { port: number; host?: string; config?: string }, log: ReturnType<typeof createLogger>) => Promise<{ close(): Promise<void> }> }>][] = [
  ['qualys', 'a Qualys VM API emulator on a real HTTP socket (appliances, scans, limits, faults)',
    async () => ({ run: (await import('../emulator/qualys/index.js')).runEmulatorCli })],
  ['tenable', 'a Tenable Vulnerability Management API emulator on a real HTTP socket (scanners, groups, scans, 429s, faults)',
    async () => ({ run: (await import('../emulator/tenable/index.js')).runTenableEmulatorCli })],
  ['rapid7', 'a Rapid7 InsightVM console API v3 emulator on a real HTTP(S) socket (engines, pools, site scans, faults; tls: { certFile, keyFile } for HTTPS)',
    async () => ({ run: (await import('../emulator/rapid7/index.js')).runRapid7EmulatorCli })],
];
for (const [vendor, description, load] of EMULATORS) {
  emulate.command(vendor)
    .description(description)
    .option('-p, --port <n>', 'port (0: any free port)', '0')
    .option('--host <addr>', 'address to listen on', '127.0.0.1')
    .option('-c, --config <file>', 'emulator options file (YAML or JSON)')
    .action(async (o: { port: string; host: string; config?: string }) => {
      const port = Number(o.port);
      if (!Number.isInteger(port) || port < 0 || port > 65535) throw new UsageError(`--port must be 0..65535, not "${o.port}"`);
      const emu = await (await load()).run({ port, host: o.host, config: o.config }, createLogger());
      await new Promise<void>((resolve) => {
        const stop = () => emu.close().then(resolve, resolve);
        process.once('SIGTERM', stop);
        process.once('SIGINT', stop);
      });
    });
}

program.command('simulate')
  .description('the scheduling simulator: onsight against the approaches it replaces (src/sim/README.md)')
  .requiredOption('-s, --scenario <name|file>', 'built-in scenario name, or a scenario file (.json/.yaml)')
  .option('--policy <name>', 'onsight, immediate, twice-daily, twice-daily-scheduled, twice-daily-informed, batch-15min, batch-15min-verified, reservation, oracle, bound (comma list; default all); experiments, run only when named: onsight+ranges, onsight+scheduled')
  .option('--seed <n>', 'first seed')
  .option('--seeds <n>', 'number of seeds')
  .option('--days <n>', 'simulated days (overrides the scenario)')
  .option('--report <file>', 'write a self-contained HTML report')
  .option('--json', 'JSON instead of a table')
  .option('--matrix', 'sweep each assumption around the scenario: onsight against every baseline and the bound, per cell (--policy replaces the policies run: name onsight+ranges with the baselines wanted, e.g. onsight,onsight+ranges,twice-daily,twice-daily-scheduled,batch-15min,batch-15min-verified,bound)')
  .option('--only <text>', 'with --matrix: only the assumptions whose name contains this text (several: separated by commas); the base cell always runs')
  .option('--laptops <n>', 'with --matrix: fleet size (smaller is faster; contention changes with it)')
  .action(async (o: { scenario: string; policy?: string; seed?: string; seeds?: string; days?: string; report?: string; json?: boolean; matrix?: boolean; only?: string; laptops?: string }) => {
    const num = (v: string | undefined, name: string) => {
      if (v === undefined) return undefined;
      const n = Number(v);
      if (!Number.isFinite(n)) throw new UsageError(`--${name} must be a number, not "${v}"`);
      return n;
    };
    // (--days 99999999 grew to 3.7 GB before anything failed; --laptops and --only did nothing
    // without --matrix, said nowhere; --report's folder was found missing only after the whole run)
    const days = num(o.days, 'days');
    if (days !== undefined && days > MAX_SIM_DAYS) throw new UsageError(`--days: at most ${MAX_SIM_DAYS} (a year of simulated time), not ${o.days}`);
    if (!o.matrix) for (const k of ['only', 'laptops'] as const) if (o[k] !== undefined) throw new UsageError(`--${k} is for --matrix; a single scenario's fleet is its file's (fleet.laptops)`);
    if (o.policy !== undefined && o.policy.split(',').some((p) => p.trim() === '')) throw new UsageError(`--policy: an empty name in "${o.policy}" (leave --policy out for every policy)`);
    if (o.report !== undefined) {
      const folder = dirname(resolve(o.report));
      try {
        accessSync(folder, constants.W_OK);
      } catch (err) {
        throw new UsageError(`--report ${o.report}: cannot write in ${folder} (${(err as NodeJS.ErrnoException).code ?? 'error'})`);
      }
    }
    if (o.matrix) {
      const { runMatrixCli } = await import('../sim/cli.js');
      process.exitCode = await runMatrixCli({
        base: o.scenario, days, seeds: num(o.seeds, 'seeds'), laptops: num(o.laptops, 'laptops'), only: o.only,
        policies: o.policy?.split(','),
      }, o.json === true, process.stdout);
      return;
    }
    const { runSimulateCli } = await import('../sim/cli.js');
    process.exitCode = await runSimulateCli({
      scenario: o.scenario, policy: o.policy, seed: num(o.seed, 'seed'), seeds: num(o.seeds, 'seeds'), days, report: o.report, json: o.json,
    }, process.stdout);
  });

/**
 * Exit once stdout and stderr have handed everything to the kernel: writes to a pipe are
 * asynchronous, and process.exit() drops what is still queued (`onsight hosts | less`).
 */
async function flushAndExit(code: number): Promise<never> {
  const drained = (s: NodeJS.WriteStream) => new Promise<void>((resolve) => {
    if (s.destroyed || !s.writable) return resolve();
    s.write('', () => resolve());
  });
  await Promise.all([drained(process.stdout), drained(process.stderr)]);
  process.exit(code);
}

async function main(): Promise<void> {
  // `onsight formats | head`: a closed pipe ends the output, it is not an error
  process.stdout.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code === 'EPIPE') process.exit(0);
    throw err;
  });
  try {
    await program.parseAsync(process.argv);
  } catch (err) {
    if (err instanceof CommanderError) {
      // (help asked for: 0; help shown for a missing subcommand, `onsight` or `onsight config` alone, is a usage error: 2)
      if (err.code === 'commander.helpDisplayed' || err.code === 'commander.version' || (err.code === 'commander.help' && err.exitCode === 0)) await flushAndExit(0);
      await flushAndExit(2);
    }
    process.stderr.write(`onsight: ${(err as Error).message}\n`);
    await flushAndExit(exitCodeFor(err));
  }
  // Exit explicitly rather than letting the runtime tear down: on Node 24, better-sqlite3 12's
  // objects finalized during environment teardown abort the process (exit 134) after all work is
  // done, once what is written has left (see flushAndExit).
  await flushAndExit(typeof process.exitCode === 'number' ? process.exitCode : 0);
}

await main();
