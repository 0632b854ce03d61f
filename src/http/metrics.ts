/**
 * `/metrics`: the daemon's counters and gauges, read at each scrape into the prom-client registry
 * (prom.ts), with the histograms the daemon observes and prom-client's process metrics. Every
 * onsight family is listed in README.md ("Metrics"). Counters restart from zero when the daemon
 * restarts (Prometheus `rate()` handles resets); gauges are read from the state database at scrape time.
 */
import { writeClusterMetrics } from '../cluster/metrics.js';
import { droppedLogLines } from '../log.js';
import { MetricsRegistry, type Labels } from './prom.js';
import { buildStatus, onsightVersion, type Status, type StatusOptions } from './status.js';
import type { DaemonView } from './view.js';

/** Seconds from the sighting that made a device due to the launch of its scan. */
const SIGHTING_TO_LAUNCH_BUCKETS = [1, 5, 15, 30, 60, 120, 300, 600, 1800, 3600, 7200, 21600, 86400];
/** Seconds from a scan's launch to its end. */
const LAUNCH_TO_END_BUCKETS = [60, 300, 600, 1200, 1800, 3600, 7200, 14400, 28800, 86400];

/** The histograms the daemon feeds as launches and scan ends happen. */
export interface ScanTimings {
  sightingToLaunch(seconds: number, labels: Labels): void;
  launchToEnd(seconds: number, labels: Labels): void;
}

export function scanTimings(w: MetricsRegistry): ScanTimings {
  return {
    sightingToLaunch: w.family('onsight_sighting_to_launch_seconds', 'histogram',
      'Seconds from when a device was queued as due (the sighting that made it due, or the end of its rescan window) to the launch of the scan that targets it, by region.', { labelNames: ['region'], buckets: SIGHTING_TO_LAUNCH_BUCKETS }),
    launchToEnd: w.family('onsight_scan_launch_to_end_seconds', 'histogram',
      'Seconds from a scan\'s launch to its end (on our clock), by region and final state (finished, error, canceled, abandoned).', { labelNames: ['region', 'state'], buckets: LAUNCH_TO_END_BUCKETS }),
  };
}

/** what a scrape needs of the status: no coverage timeline, no decisions (nothing here reads them) */
export const METRICS_STATUS: StatusOptions = { coverageDays: 0, decisions: 0 };

/** `more`: what the caller adds to the scrape (the status listener's own counts) */
export async function renderMetrics(d: DaemonView, given?: Status, more?: (w: MetricsRegistry) => void): Promise<string> {
  const status = given ?? await buildStatus(d, METRICS_STATUS);
  const w = d.metricsRegistry();
  // one scrape at a time (prom.ts scrape()): overlapping ones would add into each other's counters
  return w.scrape(async () => {
    await fillMetrics(d, w, status);
    more?.(w);
  });
}

/** the status listener's own refusals (src/http/server.ts counts them), added to its scrape */
export function fillRefusedRequests(w: MetricsRegistry, refused: Record<string, number>): void {
  const f = w.family('onsight_http_requests_refused_total', 'counter',
    'Requests the status listener refused, by reason: auth (401: no or a wrong token), host (421: a Host header not allowed), headers (431: more than 64 headers), notLoopback (403: device data asked from beyond loopback of a listener nothing authenticates).', { labelNames: ['reason'] });
  for (const [why, n] of Object.entries(refused)) f(n, { reason: why });
}

async function fillMetrics(d: DaemonView, w: MetricsRegistry, status: Status): Promise<void> {
  const now = Date.now();

  w.family('onsight_build_info', 'gauge', 'Always 1; the version is a label.')(1, { version: onsightVersion() });
  w.family('onsight_start_time_seconds', 'gauge', 'When the daemon started (Unix time).')(d.startedAt / 1000);
  w.family('onsight_uptime_seconds', 'gauge', 'Seconds since the daemon started.')((now - d.startedAt) / 1000);
  w.family('onsight_log_lines_dropped_total', 'counter', 'JSON log lines dropped because the log\'s reader (journald, a pipe) fell 16 MiB behind.')(droppedLogLines());

  // inputs
  const received = w.family('onsight_input_lines_received_total', 'counter', 'Lines (messages) an input accepted and handed on, by input.');
  const dropped = w.family('onsight_input_lines_dropped_total', 'counter',
    'Lines (messages) an input dropped, by input and reason (notAllowed, tooLarge, badFrame, binary, backpressure, ...). Kernel UDP drops are in onsight_input_udp_kernel_drops_total; refused TCP/TLS connections in onsight_input_connections_refused_total.', { labelNames: ['input', 'reason'] });
  const kernel = w.family('onsight_input_udp_kernel_drops_total', 'counter', 'Datagrams the kernel dropped on a UDP input\'s socket (receive buffer full), from /proc/net/udp, since the input started.');
  const conns = w.family('onsight_input_connections', 'gauge', 'TCP/TLS connections open now, by input.');
  const refused = w.family('onsight_input_connections_refused_total', 'counter', 'TCP/TLS connections refused before any line was read, by input and reason (notAllowed, connectionLimit, senderConnectionLimit).', { labelNames: ['input', 'reason'] });
  const receiver = w.family('onsight_input_udp_receiver', 'gauge', 'What receives a UDP input\'s datagrams: 1 for the receiver in use, native (native/udp-recv, recvmmsg) or dgram (node\'s).', { labelNames: ['input', 'receiver'] });
  const files = w.family('onsight_input_files', 'gauge', 'Files a file input tails now, by input.');
  const events = w.family('onsight_input_events_total', 'counter', 'Other input events (accepted, idleTimeout, tlsError, resync, rotated, truncated, ...), by input and event.', { labelNames: ['input', 'event'] });
  for (const i of d.inputs()) {
    const c = i.counters();
    received(c.received, { input: i.name });
    for (const [reason, n] of Object.entries(c.dropped)) {
      if (reason === 'kernel') kernel(n, { input: i.name });
      else dropped(n, { input: i.name, reason });
    }
    if (c.connections !== undefined) conns(c.connections, { input: i.name });
    for (const [reason, n] of Object.entries(c.refused ?? {})) refused(n, { input: i.name, reason });
    if (c.udpReceiver !== undefined) receiver(1, { input: i.name, receiver: c.udpReceiver });
    if (c.files !== undefined) files(c.files, { input: i.name });
    for (const [event, n] of Object.entries(c.events ?? {})) events(n, { input: i.name, event });
  }

  // staleness: "no line from dhcp01 for 15 min"
  const idle = w.family('onsight_input_idle_seconds', 'gauge', 'Seconds since the input handed on its last line (since the start when none came yet), by input.');
  const senderIdle = w.family('onsight_input_sender_idle_seconds', 'gauge', 'Seconds since each sender (network address, or file of a glob input) sent its last line, by input and sender (at most 1000 senders tracked).');
  for (const i of status.inputs) {
    if (i.idleS === undefined) continue;
    idle(i.idleS, { input: i.name });
    for (const s of i.senders ?? []) senderIdle(s.idleS, { input: i.name, sender: s.sender });
  }

  // ingest and parsers
  const ic = d.ingestCounters();
  w.family('onsight_ingest_lines_total', 'counter', 'Lines decoded and committed (a UDP line no parser can claim counts once its listener has screened it out).')(ic.lines);
  w.family('onsight_ingest_commits_total', 'counter', 'SQLite transactions committed by the ingest stage.')(ic.commits);
  w.family('onsight_ingest_commit_errors_total', 'counter', 'Failed ingest commits (lines kept and retried; a batch refused for its content is split until the line at fault is alone).')(ic.commitErrors);
  w.family('onsight_ingest_refused_lines_total', 'counter', 'Lines the state database refused for their content (a value PostgreSQL text cannot hold): their sightings dropped, each logged with its source and line.')(ic.refusedLines);
  w.family('onsight_ingest_pending_lines', 'gauge', 'Lines buffered, waiting for the next commit.')(ic.pending);
  w.family('onsight_store_write_errors_total', 'counter', 'Failed writes to the state database, every stage (disk full, a lock held elsewhere); each is retried.')(d.storeHealth().writeErrors);
  w.family('onsight_store_healthy', 'gauge', '1 when the state database takes writes and its file system has room, else 0 (see /healthz).')(d.storeHealth().problem ? 0 : 1);
  const byFormat = new Map<string, { lines: number; sightings: number }>();
  let unrecognized = 0;
  let invalid = 0;
  let parserErrors = 0;
  let clockUnset = 0;
  let invalidTimestamp = 0;
  let clockUnsetDropped = 0;
  for (const dc of d.decoderCounters()) {
    clockUnsetDropped += dc.clockUnsetDropped ?? 0;
    clockUnset += dc.clockUnset ?? 0;
    invalidTimestamp += dc.invalidTimestamp ?? 0;
    unrecognized += dc.unrecognized;
    invalid += dc.invalid;
    parserErrors += dc.parserErrors;
    for (const [f, c] of Object.entries(dc.byFormat)) {
      const t = byFormat.get(f) ?? { lines: 0, sightings: 0 };
      t.lines += c.lines;
      t.sightings += c.sightings;
      byFormat.set(f, t);
    }
  }
  const fl = w.family('onsight_parser_lines_total', 'counter', 'Lines claimed by a parser, by format.');
  for (const [f, c] of [...byFormat].sort()) fl(c.lines, { format: f });
  w.family('onsight_parser_unrecognized_lines_total', 'counter', 'Lines no parser claimed (format auto).')(unrecognized);
  w.family('onsight_parser_invalid_sightings_total', 'counter', 'Sightings dropped because a field was malformed (a parser bug).')(invalid);
  w.family('onsight_parser_errors_total', 'counter', 'Times a parser threw (a bug), ran past the 10 s line bound (a user plug-in\'s regex backtracking), or ended the decode thread (a user plug-in exiting or out of memory): the thread restarted; the line is dropped.')(parserErrors);
  // the watchdog's own figures (also in the parser errors above): which source's lines it cut off, which plug-ins it turned off
  const wd = d.decodeWatchdog();
  const timeouts = w.family('onsight_decode_timeouts_total', 'counter',
    'Lines the decode thread\'s watchdog dropped because a parser stayed on them past the line bound (10 s, 2 s more per MiB), by source (absent until its first); each restarted the thread and reset every source\'s parser state, and is also counted in onsight_parser_errors_total. The error log names the parser: make a user plug-in\'s regex run in linear time (parsers/README.md, rule 2).', { labelNames: ['source'] });
  for (const [source, n] of Object.entries(wd?.timedOut ?? {}).sort()) timeouts(n, { source });
  const exits = w.family('onsight_decode_exits_total', 'counter',
    'Lines the decode thread ended on (a user plug-in calling process.exit, or running the thread out of memory), dropped, by source (absent until its first); each restarted the thread, and is also counted in onsight_parser_errors_total. The error log names the plug-in.', { labelNames: ['source'] });
  for (const [source, n] of Object.entries(wd?.exited ?? {}).sort()) exits(n, { source });
  const pluginOff = w.family('onsight_parser_plugin_disabled', 'gauge',
    '1 when the decode thread\'s watchdog turned the user parser plug-in off (it stalled or ended the thread 3 times within an hour, or either once before the thread was given up: its lines are now unrecognized under format auto, parser errors under its own format), else 0; one series per user plug-in. It stays off until the daemon restarts (a reload does not turn it back on): fix its regex (parsers/README.md, rule 2), then restart onsight.', { labelNames: ['plugin'] });
  const off = new Set(wd?.disabled.map((p) => p.plugin));
  for (const plugin of [...new Set([...wd?.userPlugins ?? [], ...off])].sort()) pluginOff(off.has(plugin) ? 1 : 0, { plugin });
  const badTimes = w.family('onsight_parser_bad_times_total', 'counter', 'Sightings whose line\'s own time could not be taken, by why and outcome: clockUnset (timed before 2000, by a sender whose clock was never set) placed at the syslog header\'s time or at receipt for a live line (outcome receipt), dropped for a stored one, a file\'s (outcome dropped: read later, it has no time to take); invalidTimestamp (a live RFC 5424 TIMESTAMP that is no valid time: the line read without it, outcome receipt); aheadOfReceipt (a live line timed more than 5 min after it came: placed at receipt, outcome receipt); aheadOfReading (a stored line, a file\'s, timed more than 5 min after it was read: placed at its reading, outcome reading).', { labelNames: ['why', 'outcome'] });
  badTimes(clockUnset, { why: 'clockUnset', outcome: 'receipt' });
  badTimes(clockUnsetDropped, { why: 'clockUnset', outcome: 'dropped' });
  badTimes(invalidTimestamp, { why: 'invalidTimestamp', outcome: 'receipt' });
  badTimes(ic.aheadOfReceipt ?? 0, { why: 'aheadOfReceipt', outcome: 'receipt' });
  badTimes(ic.aheadOfReading ?? 0, { why: 'aheadOfReading', outcome: 'reading' });
  const sk = w.family('onsight_sightings_total', 'counter', 'Sightings committed to the inventory, by format and kind (lease, renew, release, expire, tunnel-up, tunnel-down).');
  for (const [f, kinds] of Object.entries(ic.byFormatKind ?? {}).sort()) {
    for (const [kind, n] of Object.entries(kinds).sort()) sk(n, { format: f, kind });
  }

  // inventory
  w.family('onsight_identities', 'gauge', 'Device identities known (MAC, DUID, VPN user, hostname).')(status.totals.identities);
  w.family('onsight_present_bindings', 'gauge', 'Address bindings present now (open lease or tunnel).')(status.totals.present);
  const ar = status.addressReuse;
  const reused = w.family('onsight_addresses_reused', 'gauge', `Bindings that ended in the last ${ar.windowH} h whose address another device took next, by channel (dhcp, vpn).`);
  const quick = w.family('onsight_addresses_reused_quickly', 'gauge', `Of those, the addresses another device took within ${ar.quickMin} min of the end, by channel: on a VPN pool, a probe of a user who just left can reach the next one (a wrong host; see the README).`);
  // both channels always (0 when nothing was reused), so a dashboard or an alert has a series to read
  for (const channel of ['dhcp', 'vpn'] as const) {
    const c = ar.channels.find((x) => x.channel === channel);
    reused(c?.reused ?? 0, { channel });
    quick(c?.quick ?? 0, { channel });
  }

  // policy and queue, per region
  const seen = w.family('onsight_region_hosts_seen', 'gauge', 'Devices present now, by region.');
  const due = w.family('onsight_region_hosts_due', 'gauge', 'Present devices due for a scan now (including queued and being scanned), by region.');
  const queued = w.family('onsight_region_hosts_queued', 'gauge', 'Due devices waiting in the queue for a scan slot, by region.');
  const scanning = w.family('onsight_region_hosts_scanning', 'gauge', 'Devices that are targets of a scan in flight, by region.');
  const confirming = w.family('onsight_region_hosts_confirming', 'gauge', "Devices whose scan has ended and whose credit waits for the scanner's host list, by region.");
  const inWindow = w.family('onsight_region_hosts_scanned_in_window', 'gauge', 'Present devices scanned within their rescan window, by region.');
  const missed = w.family('onsight_region_hosts_missed', 'gauge', `Devices that left in the last ${status.missedWindowH} h without a scan, by region and why.`, { labelNames: ['region', 'why'] });
  for (const r of status.regions) {
    seen(r.seen, { region: r.name });
    due(r.due, { region: r.name });
    queued(r.queued, { region: r.name });
    scanning(r.scanning, { region: r.name });
    confirming(r.confirming, { region: r.name });
    inWindow(r.scannedInWindow, { region: r.name });
    for (const m of r.missedWhy) missed(m.count, { region: r.name, why: m.key });
  }
  w.family('onsight_unmapped_hosts_seen', 'gauge', 'Present devices whose address maps to no region (out of scope, say).')(status.unmapped.seen);

  // scans
  const sc = d.schedulerCounters();
  const launched = w.family('onsight_scans_launched_total', 'counter', 'Scans launched, by region.');
  const finished = w.family('onsight_scans_finished_total', 'counter', 'Scans that finished, by region.');
  const failed = w.family('onsight_scans_failed_total', 'counter', 'Scans that ended in error or were canceled by the scanner, by region.');
  for (const r of status.regions) {
    launched(r.scans.launched, { region: r.name });
    finished(r.scans.finished, { region: r.name });
    failed(r.scans.failed, { region: r.name });
  }
  const byAppliance = w.family('onsight_appliance_scans_launched_total', 'counter', 'Scans launched, by region and appliance.');
  const running = w.family('onsight_scans_running', 'gauge', 'Our scans in flight now (launching or running), by region and appliance.');
  const active = await d.activeIntents();
  const online = w.family('onsight_appliance_online', 'gauge', '1 when the scanner reports the appliance online, by region and appliance.');
  const load = w.family('onsight_appliance_load', 'gauge', 'Scans running on the appliance (ours and others\'), by region and appliance.');
  const cap = w.family('onsight_appliance_capacity', 'gauge', 'Scans the appliance may run at once as configured (maxScans), by region and appliance.');
  const capLearned = w.family('onsight_appliance_capacity_learned', 'gauge', 'Scans the scheduler lets the appliance run now, as learned: the count it was seen full at, else the most seen running (or maxScans) plus one to probe, by region and appliance.');
  const slotsSeen = w.family('onsight_appliance_slots_seen', 'gauge', 'Most scans seen running on the appliance at once (ours and others\'): it has at least this many slots, by region and appliance.');
  const fullAt = w.family('onsight_appliance_full_at', 'gauge', 'Scans running when a scan of ours waited for a slot (remembered 6 h; absent when not seen full), by region and appliance.');
  const pickup = w.family('onsight_appliance_pickup_seconds', 'gauge', 'How long after launch the appliance has surely picked a scan up: its listed polling interval plus setup, else the configured pickupS, by region and appliance.');
  for (const r of status.regions) {
    for (const a of r.appliances) {
      const l = { region: r.name, appliance: a.name };
      byAppliance(sc.byAppliance[a.name]?.launched ?? 0, l);
      running(active.filter((i) => i.region === r.name && i.appliance === a.name).length, l);
      online(a.online ? 1 : 0, l);
      load(a.load, l);
      cap(a.capacity, l);
      capLearned(a.learned.capacity, l);
      slotsSeen(a.learned.slotsSeen, l);
      if (a.learned.fullAt !== undefined) fullAt(a.learned.fullAt, l);
      pickup(a.learned.pickupS, l);
    }
  }
  // durable: from the intents table, so the counts survive restarts
  // only ended states: a scan leaves launching/running, so those counts go down (they are in onsight_scans_running)
  const byState = w.family('onsight_appliance_scans_total', 'counter',
    'Scans ended, recorded in the state database, by region, appliance and final state (finished, error, canceled, abandoned). Scans in flight: onsight_scans_running.');
  for (const r of await d.endedIntentCounts()) byState(r.n, { region: r.region, appliance: r.appliance, state: r.state });
  w.family('onsight_scan_launch_failures_total', 'counter', 'Launch calls that failed.')(sc.launchFailures);
  w.family('onsight_scan_targets_launched_total', 'counter', 'Addresses sent to the scanner in launched scans.')(sc.targetsLaunched);
  w.family('onsight_queue_dropped_total', 'counter', 'Queued devices dropped at re-validation before launch (left, reassigned, no longer due).')(sc.dropped);
  const canceled = w.family('onsight_scans_canceled_total', 'counter',
    'Scans onsight canceled, by reason: target-reassigned (an address changed hands before the scan reached it; the others relaunched), stuck (not started long after launch on a full or offline appliance; requeued), all-left, region-closed (a blackout began, or the scan windows closed with scanWindowEnd: stop; requeued).');
  canceled(sc.canceledReassigned, { reason: 'target-reassigned' });
  canceled(sc.requeuedStuck, { reason: 'stuck' });
  canceled(sc.canceledLeft, { reason: 'all-left' });
  canceled(sc.canceledClosed, { reason: 'region-closed' });
  w.family('onsight_scan_cancels_held_flapping_total', 'counter', 'Times a region reached 4 scans canceled within an hour because a target\'s address changed hands or its device left, and so cancels no more for them until the first is an hour old (a client flapping its lease canceled every scan of its region); a probe of a new holder is then counted in onsight_scan_targets_other_holder_total.')(sc.cancelsHeldFlapping);
  w.family('onsight_scan_targets_held_address_churn_total', 'counter', 'Devices held back at launch because their address (a DHCP lease\'s) or VPN user had scans launched for 3 other devices within the hour (a client taking one address under a new MAC each time turned each MAC into a scan); each waits until the oldest of those scans is an hour old.')(sc.heldAddressChurn);
  w.family('onsight_scheduler_second_looks_total', 'counter', 'Devices due again for a second look (scheduler.secondLook): their first scan in the window may have been partial (a laptop that left mid-probe without a line is dated all the same), and they were seen again over 30 min after it.')(sc.secondLooks);
  w.family('onsight_scheduler_scanned_ahead_total', 'counter', 'Devices scanned ahead of their rescan window (scheduler.scanAheadH, a scarce allowance only): the window ran out within scanAheadH, and they rode in room a scan launched for due devices left.')(sc.scannedAhead);
  w.family('onsight_scan_targets_no_host_total', 'counter', 'Targets of finished scans the scanner found no host at (scheduler.verifyResults): not recorded as scanned.')(sc.noHost);
  w.family('onsight_scan_targets_other_holder_total', 'counter', 'Targets of finished scans whose address another device held while the scan ran, too late for a cancel (the change reached onsight late, or after the scan had reached the address): the scan may have probed that device (a wrong host); logged, not recorded as scanned.')(sc.otherHolder);
  w.family('onsight_scan_targets_dropped_by_scanner_total', 'counter', 'Targets a finished scan\'s own target list lacked (the scanner dropped them: outside its subscription, say): not recorded as scanned, requeued with back-off.')(sc.droppedByScanner);
  w.family('onsight_scans_given_up_total', 'counter', 'Scans still not ended scheduler.maxScanAgeS after launch (a state the scanner does not explain, say): looked up once more, then given up and their targets requeued.')(sc.givenUp);

  // scanner API
  const scanner = d.scanner();
  const al = scanner.allowance;
  w.family('onsight_scanner_api_calls_total', 'counter', 'Scanner API calls made by the scheduler.')(sc.apiCalls);
  const remaining = w.family('onsight_scanner_api_remaining', 'gauge', 'API calls left in the current rate-limit window, as last reported by the scanner (absent when unknown).');
  if (al.remaining !== undefined) remaining(al.remaining, { scanner: scanner.kind });
  const limit = w.family('onsight_scanner_api_limit', 'gauge', 'API calls allowed per rate-limit window, as last reported (absent when unknown).');
  if (al.limit !== undefined) limit(al.limit, { scanner: scanner.kind });
  w.family('onsight_scanner_api_wait_seconds', 'gauge', 'Seconds before the scanner allows the next call (0 = now).')(al.waitSec, { scanner: scanner.kind });
  w.family('onsight_scanner_blocked_until_seconds', 'gauge', 'When the scanner asked for no call before (Unix time; 0 = no such wait now).')((scanner.block.waitUntil ?? 0) / 1000, { scanner: scanner.kind });
  const heldCall = w.family('onsight_scanner_call_held_until_seconds', 'gauge', 'When a wait that holds back one kind of call ends (Unix time; absent when none): a rate limit of that API alone (Qualys host list, appliances, schedules), or launches refused at the active-scan limit (Tenable).', { labelNames: ['scanner', 'call'] });
  for (const [call, until] of Object.entries(scanner.block.callsHeldUntil ?? {})) heldCall(until / 1000, { scanner: scanner.kind, call });
  const lag = status.scanner.processingLag;
  const lagQ = w.family('onsight_scanner_processing_lag_seconds', 'gauge', 'The scanner\'s processing lag (end of a scan to its hosts dated in the host list) learned from confirmed scans, by quantile (absent before any).');
  if (lag.p50S !== undefined) lagQ(lag.p50S, { scanner: scanner.kind, quantile: '0.5' });
  if (lag.p90S !== undefined) lagQ(lag.p90S, { scanner: scanner.kind, quantile: '0.9' });
  w.family('onsight_scanner_processing_lag_samples', 'gauge', 'Confirmed scans the processing lag is learned from (the last 64).')(lag.samples, { scanner: scanner.kind });
  w.family('onsight_scanner_processing_wait_seconds', 'gauge', 'How long a finished scan with no target dated is held as not processed yet: the configured processingWaitS, or 3 × the learned p90 when longer.')(lag.waitS, { scanner: scanner.kind });
  const rs = status.scanner.rangeScans;
  w.family('onsight_range_schedules', 'gauge', 'The platform\'s scheduled range scans onsight keeps for scheduler.rangeScans (one per region and time of day).')(rs.schedules.length, { scanner: scanner.kind });
  w.family('onsight_range_runs_seen_total', 'counter', 'Runs of those schedules seen ended in a scan list.')(rs.runsSeen, { scanner: scanner.kind });
  w.family('onsight_range_gave_way_total', 'counter', 'Range runs canceled because they still waited for a slot an hour after their time while another appliance of their region had room (onsight launches there instead).')(rs.gaveWay, { scanner: scanner.kind });
  w.family('onsight_range_runs_placed_elsewhere_total', 'counter', 'Range runs placed on another appliance of their region because the one they are spread to was listed offline, or other tools\' scans had held every slot of it for an hour or longer.')(rs.placedElsewhere, { scanner: scanner.kind });
  w.family('onsight_range_refused_canceled_total', 'counter', 'Range runs canceled because they scanned what the policy refuses (scope, exclusions) or went in a region no longer configured (after a reload, or found at start).')(rs.refusedCanceled, { scanner: scanner.kind });
  w.family('onsight_range_ours_canceled_total', 'counter', 'Scans of ours canceled (targets requeued) because they still went when their region\'s range run was about to start.')(rs.oursCanceled, { scanner: scanner.kind });
  w.family('onsight_range_cut_short_total', 'counter', 'Range runs the platform canceled at their cut-off, before the region\'s next run (scheduler.rangeScans.endBeforeNext): their hosts are not credited.')(rs.cutShort, { scanner: scanner.kind });
  w.family('onsight_range_runs_skipped_total', 'counter', 'Range run times skipped (the schedule deactivated until that run was seen ended) because the region\'s previous run still went.')(rs.skipped, { scanner: scanner.kind });
  w.family('onsight_range_runs_made_up_total', 'counter', 'Skipped range run times made up by a range scan onsight launched (one call) once the region\'s previous run had ended.')(rs.madeUp, { scanner: scanner.kind });
  w.family('onsight_range_runs_aimed_total', 'counter', 'Range runs aimed at the addresses devices held shortly before their time (scheduler.rangeScans.aim), rather than at their whole targets.')(rs.aimed, { scanner: scanner.kind });
  w.family('onsight_range_runs_unaimed_queued_total', 'counter', 'Range runs left unaimed (aim auto: their whole targets scanned) because a recent run of their region still waited for a slot when the region\'s next time came: held addresses would be stale when such a run starts.')(rs.unaimedQueued, { scanner: scanner.kind });
  w.family('onsight_range_not_found_total', 'counter', 'Devices an aimed range run did not find although they held their address throughout (a lease outliving its laptop, most likely): left out of later aims until a line shows them again.')(rs.notFound, { scanner: scanner.kind });
  w.family('onsight_range_credited_total', 'counter', 'Devices credited as found by a range run (queued ones; for an aimed run, any device at its targets): the host list dated their address and they held it throughout the run.')(rs.credited, { scanner: scanner.kind });
  const hip = status.scanner.hostsInParallel;
  w.family('onsight_scheduler_hosts_in_parallel', 'gauge', 'Hosts an appliance scans at once in one of our scans, as the scheduler assumes it: learned from scan durations (parallelism.ts), else where learning starts (the option profile\'s figure where the scanner states it, else the configured hostsInParallel).')(hip.value, { scanner: scanner.kind });
  w.family('onsight_scheduler_hosts_in_parallel_configured', 'gauge', 'The configured hostsInParallel (where learning starts when the scanner states no option profile figure).')(hip.configured, { scanner: scanner.kind });
  w.family('onsight_scanner_stopped', 'gauge', '1 when onsight stopped calling the scanner after a failure only an operator can fix (credentials, account; the status page says why) until the config is reloaded, or onsight restarted for a new password (credentials are read at start).')(scanner.block.stopped ? 1 : 0, { scanner: scanner.kind });

  // notifications
  const notified = w.family('onsight_notify_events_total', 'counter', 'Notification events by sink (webhook, syslog) and outcome: sent, failed (given up after its attempts, or refused by the receiver), dropped (queue full).');
  const retries = w.family('onsight_notify_retries_total', 'counter', 'Notification delivery attempts that failed and were retried, by sink.');
  const waiting = w.family('onsight_notify_queued', 'gauge', 'Notification events waiting for delivery, by sink.');
  for (const { sink, counters: c } of d.notifyCounters()) {
    notified(c.sent, { sink, outcome: 'sent' });
    notified(c.failed, { sink, outcome: 'failed' });
    notified(c.dropped, { sink, outcome: 'dropped' });
    retries(c.retries, { sink });
    waiting(c.queued, { sink });
  }

  const cluster = await d.cluster?.();
  if (cluster) writeClusterMetrics(w, cluster);
}
