/**
 * The Qualys calls the emulator answers: scan launch/list/cancel, appliance list, host list,
 * IP list/add, and scheduled scans (schedule-handlers.ts). Each takes the merged parameters and
 * returns status and XML; the server around them does auth, limits, headers and faults.
 */
import { hms, isoSec } from './clock.js';
import { optionProfilesOf, type EmulatorConfig } from './config.js';
import { parseItem, splitList } from './ipset.js';
import { EXTERNAL, expandTargets, SCAN_STATES, type EmScan, type EmulatorModel, type QualysScanState } from './model.js';
import { scheduleCall } from './schedule-handlers.js';
import { cdata, conflictReturn, doc, el, simpleReturn } from './xml.js';

export interface Ctx {
  method: string;
  params: Map<string, string>;
  /** Host header: used in DOCTYPEs and next-page URLs */
  host: string;
  /** API version from the path, e.g. `3.0` */
  version: string;
  /** scheme://host of this server as the client sees it */
  origin: string;
  path: string;
  userLogin: string;
}

export interface Answer {
  status: number;
  body: string;
  headers?: Record<string, string>;
}

export class Handlers {
  constructor(private readonly c: EmulatorConfig, private readonly m: EmulatorModel) {}

  fail(ctx: Pick<Ctx, 'host'>, status: number, code: number, text: string): Answer {
    return { status, body: simpleReturn(ctx.host, isoSec(this.m.now()), { code, text, declaration: status !== 400 }) };
  }

  /** 409 and account answers, shaped like the documented 409 bodies */
  conflict(status: number, code: number, text: string, items: [string, string][] = []): Answer {
    return { status, body: conflictReturn(isoSec(this.m.now()), code, text, items) };
  }

  ok(ctx: Ctx, text: string, items?: [string, string][]): Answer {
    return { status: 200, body: simpleReturn(ctx.host, isoSec(this.m.now()), { text, items }) };
  }

  requirePost(ctx: Ctx): Answer | undefined {
    if (ctx.method !== 'POST') return this.fail(ctx, 400, 1908, `action=${ctx.params.get('action')} requires the POST method`);
    return undefined;
  }

  private badDate(ctx: Ctx, name: string): Answer | undefined {
    const v = ctx.params.get(name);
    if (v === undefined) return undefined;
    if (!/^\d{4}-\d{2}-\d{2}(T\d{2}:\d{2}:\d{2}Z)?$/.test(v) || !Number.isFinite(Date.parse(v))) {
      return this.fail(ctx, 400, 1905, `parameter ${name} has invalid value: ${v}`);
    }
    return undefined;
  }

  // ---- /api/2.0/fo/scan/ -----------------------------------------------------------------------

  scan(ctx: Ctx): Answer {
    const action = ctx.params.get('action');
    switch (action) {
      case 'launch': return this.requirePost(ctx) ?? this.launch(ctx);
      case 'list': return this.listScans(ctx);
      case 'cancel': return this.requirePost(ctx) ?? this.cancel(ctx);
      case undefined: return this.fail(ctx, 400, 1903, 'Missing required parameter(s): action');
      default: return this.fail(ctx, 400, 1905, `parameter action has invalid value: ${action}`);
    }
  }

  private launch(ctx: Ctx): Answer {
    const p = ctx.params;
    const option = this.optionProfile(ctx);
    if ('status' in option) return option;
    if (p.has('iscanner_name') && p.has('iscanner_id')) return this.fail(ctx, 400, 1904, 'Specify only one of iscanner_id or iscanner_name');
    const title = p.get('scan_title') ?? '';
    if (title.length > 2000) return this.fail(ctx, 400, 1905, 'parameter scan_title is longer than 2000 characters');
    const priority = p.has('priority') ? Number(p.get('priority')) : 0;
    if (!Number.isInteger(priority) || priority < 0 || priority > 9) return this.fail(ctx, 400, 1905, `parameter priority has invalid value: ${p.get('priority')}`);
    const targets = this.ipTargets(ctx);
    if (!Array.isArray(targets)) return targets;
    const names = this.scanners(ctx, this.c.launchOnOfflineAppliance === 'reject');
    if (!Array.isArray(names)) return names;
    const kept = this.inSubscription(ctx, targets);
    if (!Array.isArray(kept)) return kept;
    const scan = this.m.launch({ title, targets: kept, appliances: names, optionTitle: option.title, priority, userLogin: ctx.userLogin });
    return this.ok(ctx, 'New vm scan launched', [['ID', String(scan.id)], ['REFERENCE', scan.ref]]);
  }

  /** option_id or option_title (exactly one), checked against the configured profiles. */
  optionProfile(ctx: Ctx): { title?: string } | Answer {
    const p = ctx.params;
    if (p.has('option_id') && p.has('option_title')) return this.fail(ctx, 400, 1904, 'Specify only one of option_id or option_title');
    if (!p.has('option_id') && !p.has('option_title')) return this.fail(ctx, 400, 1903, 'Missing required parameter(s): option_id or option_title');
    const profiles = optionProfilesOf(this.c)?.map((x) => x.title);
    if (p.has('option_id')) {
      const id = Number(p.get('option_id'));
      if (profiles && !(Number.isInteger(id) && id >= 1 && id <= profiles.length)) return this.fail(ctx, 400, 1905, `parameter option_id has invalid value: ${p.get('option_id')}`);
      return { title: profiles?.[id - 1] };
    }
    const title = p.get('option_title')!;
    if (profiles && !profiles.includes(title)) return this.fail(ctx, 400, 1905, `Option Profile ${title} not found`);
    return { title };
  }

  /** The `ip` items (the emulator takes no asset groups, FQDNs or tags). */
  ipTargets(ctx: Ctx): string[] | Answer {
    const p = ctx.params;
    if (p.has('asset_groups') || p.has('asset_group_ids') || p.has('fqdn') || p.get('target_from') === 'tags') {
      return this.fail(ctx, 400, 1905, 'the emulator supports ip targets only');
    }
    const ipText = p.get('ip');
    if (!ipText) return this.fail(ctx, 400, 1922, 'Please specify at least one of the following: ip, asset_groups, asset_group_ids, fqdn');
    const items = splitList(ipText);
    const bad = items.filter((i) => !parseItem(i));
    if (bad.length) return this.fail(ctx, 400, 1905, `parameter ip has invalid value: ${bad.slice(0, 5).join(',')}`);
    return items;
  }

  /** iscanner_name (default External) or iscanner_id, each a known appliance. */
  scanners(ctx: Ctx, refuseOffline: boolean): string[] | Answer {
    const p = ctx.params;
    let names: string[];
    if (p.has('iscanner_id')) {
      const ids = splitList(p.get('iscanner_id')!);
      const byId = [...this.m.appliances.values()].filter((a) => !a.external);
      names = [];
      for (const id of ids) {
        const a = byId.find((x) => String(x.id) === id);
        if (!a) return this.fail(ctx, 400, 1905, `parameter iscanner_id has invalid value: ${id}`);
        names.push(a.name);
      }
    } else {
      names = splitList(p.get('iscanner_name') ?? EXTERNAL);
    }
    for (const n of names) {
      if (n === EXTERNAL) {
        this.m.external();
        continue;
      }
      const a = this.m.appliances.get(n);
      if (!a || a.external) return this.fail(ctx, 400, 1905, `Scanner Appliance ${n} is not valid`);
      this.m.advance();
      if (!a.online && refuseOffline) return this.fail(ctx, 400, 1905, `Scanner Appliance ${n} is offline`);
    }
    return names;
  }

  /** Items outside the subscription's IP list: the whole call refused, or those dropped (outOfSubscription). */
  inSubscription(ctx: Ctx, items: string[]): string[] | Answer {
    const outside = items.filter((i) => !this.m.subscription.covers(i));
    const kept = this.c.outOfSubscription === 'drop' ? items.filter((i) => !outside.includes(i)) : outside.length ? [] : items;
    if (kept.length > 0) return kept;
    const n = this.c.notInSubscription;
    return this.fail(ctx, n.status, n.code, n.text.replace('{ips}', outside.slice(0, 20).join(',')));
  }

  private cancel(ctx: Ctx): Answer {
    const ref = ctx.params.get('scan_ref');
    if (!ref) return this.fail(ctx, 400, 1903, 'Missing required parameter(s): scan_ref');
    this.m.advance();
    const s = this.m.findScan(ref);
    if (!s) return this.fail(ctx, 400, 1905, `parameter scan_ref has invalid value: ${ref}`);
    if (!this.m.isActive(s)) return this.fail(ctx, 400, 1905, `Scan ${ref} cannot be cancelled: it is ${s.state}`);
    this.m.cancel(s);
    return this.ok(ctx, 'Cancelling scan', [['REFERENCE', ref]]);
  }

  private listScans(ctx: Ctx): Answer {
    const p = ctx.params;
    const bad = this.badDate(ctx, 'launched_after_datetime') ?? this.badDate(ctx, 'launched_before_datetime');
    if (bad) return bad;
    const now = this.m.advance();
    let states: Set<string> | undefined;
    if (p.has('state')) {
      states = new Set(splitList(p.get('state')!));
      const unknown = [...states].filter((s) => !SCAN_STATES.includes(s as QualysScanState) || s === 'Submitted');
      if (unknown.length) return this.fail(ctx, 400, 1905, `parameter state has invalid value: ${unknown.join(',')}`);
    }
    if (p.has('type') && !SCAN_TYPES.includes(p.get('type')!)) return this.fail(ctx, 400, 1905, `parameter type has invalid value: ${p.get('type')}`);
    const after = p.has('launched_after_datetime') ? Date.parse(p.get('launched_after_datetime')!) : now - 30 * 86400_000;
    const before = p.has('launched_before_datetime') ? Date.parse(p.get('launched_before_datetime')!) : Infinity;
    let scans = this.m.scans.filter((s) =>
      (!p.has('scan_ref') || s.ref === p.get('scan_ref')) &&
      (!states || states.has(s.state)) &&
      (!p.has('processed') || s.processed === (p.get('processed') === '1')) &&
      (!p.has('type') || p.get('type') === s.type) &&
      s.launchedAt >= after && s.launchedAt <= before);
    if (p.get('show_last') === '1') scans = scans.slice(-1);
    const showStatus = p.get('show_status') !== '0';
    const showOp = p.get('show_op') === '1';
    const body = scans.map((s) => this.scanXml(s, now, showStatus, showOp)).join('\n');
    const list = scans.length ? `    <SCAN_LIST>\n${body}\n    </SCAN_LIST>` : '';
    return { status: 200, body: doc('SCAN_LIST_OUTPUT', `/api/${ctx.version}/fo/scan/scan_list_output.dtd`, ctx.host, `  <RESPONSE>\n    ${el('DATETIME', isoSec(now))}\n${list}\n  </RESPONSE>`) };
  }

  private scanXml(s: EmScan, now: number, showStatus: boolean, showOp: boolean): string {
    const duration = s.state === 'Submitted' || s.state === 'Queued' ? 'Pending' : hms((s.endedAt ?? now) - s.launchedAt);
    const status = showStatus ? `<STATUS>${el('STATE', s.state)}${el('SUB_STATE', s.subState)}</STATUS>` : '';
    const op = showOp && s.optionTitle ? `<OPTION_PROFILE><TITLE>${cdata(s.optionTitle)}</TITLE><DEFAULT_FLAG>0</DEFAULT_FLAG></OPTION_PROFILE>` : '';
    return `      <SCAN>${el('REF', s.ref)}${el('TYPE', s.type)}<TITLE>${cdata(s.title)}</TITLE>${el('USER_LOGIN', s.userLogin)}` +
      `${el('LAUNCH_DATETIME', isoSec(s.launchedAt))}${el('DURATION', duration)}${el('PROCESSING_PRIORITY', priorityLabel(s.priority))}` +
      `${el('PROCESSED', s.processed ? 1 : 0)}${status}<TARGET>${cdata(s.target)}</TARGET>${op}</SCAN>`;
  }

  // ---- /api/2.0/fo/schedule/scan/ ---------------------------------------------------------------

  schedule(ctx: Ctx): Answer {
    return scheduleCall(this, this.c, this.m, ctx);
  }

  // ---- /api/2.0/fo/subscription/option_profile/vm/ ------------------------------------------------

  /**
   * The VM option profile list: each profile's BASIC_INFO and its SCAN/PERFORMANCE settings, as
   * the guide's "List VM Option Profile" sample shows them (ports, detection and the rest left
   * out). No profiles configured (any title accepted): Qualys's default profile alone.
   */
  optionProfileList(ctx: Ctx): Answer {
    const p = ctx.params;
    if (p.get('action') !== 'list') return this.fail(ctx, 400, p.has('action') ? 1905 : 1903, 'option profile: only action=list is emulated');
    const profiles = optionProfilesOf(this.c) ?? [{ title: 'Initial Options', hostsToScan: 30, parallelScaling: false }];
    const items = profiles.map((x, i) => `  <OPTION_PROFILE>\n    <BASIC_INFO>${el('ID', i + 1)}<GROUP_NAME>${cdata(x.title)}</GROUP_NAME>${el('GROUP_TYPE', 'user')}${el('IS_DEFAULT', i === 0 ? 1 : 0)}${el('IS_GLOBAL', 1)}</BASIC_INFO>\n` +
      `    <SCAN><PERFORMANCE>${el('PARALLEL_SCALING', x.parallelScaling ? 1 : 0)}${el('OVERALL_PERFORMANCE', 'Custom')}<HOSTS_TO_SCAN>${el('EXTERNAL_SCANNERS', 15)}${el('SCANNER_APPLIANCES', x.hostsToScan)}</HOSTS_TO_SCAN></PERFORMANCE></SCAN>\n  </OPTION_PROFILE>`);
    return { status: 200, body: doc('OPTION_PROFILES', '/api/2.0/fo/subscription/option_profile/option_profile_info.dtd', ctx.host, items.join('\n')) };
  }

  // ---- /api/2.0/fo/appliance/ ------------------------------------------------------------------

  appliance(ctx: Ctx): Answer {
    const p = ctx.params;
    if (p.get('action') !== 'list') return this.fail(ctx, 400, p.has('action') ? 1905 : 1903, 'appliance: only action=list is emulated');
    const now = this.m.advance();
    const full = p.get('output_mode') === 'full';
    const detail = p.get('scan_detail') === '1';
    const ids = p.has('ids') ? new Set(splitList(p.get('ids')!)) : undefined;
    const list = [...this.m.appliances.values()].filter((a) => {
      if (a.external) return false;
      const running = this.m.scansOn(a.name);
      if (p.get('busy') === '1' && running.length === 0) return false;
      if (p.get('busy') === '0' && running.length > 0) return false;
      if (p.has('scan_ref') && !running.some((s) => s.ref === p.get('scan_ref'))) return false;
      if (p.has('name') && !a.name.includes(p.get('name')!)) return false;
      if (ids && !ids.has(String(a.id))) return false;
      return true;
    });
    const items = list.map((a) => {
      const running = this.m.scansOn(a.name);
      const slices = this.m.runningJobs(a.name).length;
      let x = `${el('ID', a.id)}${el('UUID', a.uuid)}${el('NAME', a.name)}`;
      if (full) x += el('NETWORK_ID', 0);
      x += `${el('SOFTWARE_VERSION', '2.7')}${el('RUNNING_SLICES_COUNT', slices)}${el('RUNNING_SCAN_COUNT', running.length)}${el('STATUS', a.online ? 'Online' : 'Offline')}`;
      if (full) {
        x += `${el('MODEL_NUMBER', 'vSA')}${el('TYPE', a.type)}${el('IS_CLOUD_DEPLOYED', 0)}` +
          `${el('ML_LATEST', '13.1.38-1')}<ML_VERSION updated="yes">13.1.38-1</ML_VERSION>` +
          `${el('LAST_UPDATED_DATE', isoSec(a.online ? now : a.lastUpdated))}${el('POLLING_INTERVAL', a.pollingIntervalSec)}` +
          `${el('USER_LOGIN', this.c.userLogin ?? this.c.username)}${el('HEARTBEATS_MISSED', a.heartbeatsMissed)}` +
          `${el('SS_LAST_CONNECTED', isoSec(a.online ? now : a.lastUpdated))}`;
        if (detail) {
          // SCAN children as qualysapi (REF) and qualysdk ("ID, title, scan_ref, type, and date") read them
          x += `<RUNNING_SCANS>${running.map((s) => `<SCAN>${el('ID', s.id)}<TITLE>${cdata(s.title)}</TITLE>${el('REF', s.ref)}${el('TYPE', s.type)}${el('SCAN_DATE', isoSec(s.launchedAt))}</SCAN>`).join('')}</RUNNING_SCANS>`;
        }
        x += el('MAX_CAPACITY_UNITS', a.capacity);
      }
      return `      <APPLIANCE>${x}</APPLIANCE>`;
    });
    const body = items.length ? `    <APPLIANCE_LIST>\n${items.join('\n')}\n    </APPLIANCE_LIST>` : '';
    return { status: 200, body: doc('APPLIANCE_LIST_OUTPUT', '/api/2.0/fo/appliance/appliance_list_output.dtd', ctx.host, `  <RESPONSE>\n    ${el('DATETIME', isoSec(now))}\n${body}\n  </RESPONSE>`) };
  }

  // ---- /api/2.0/fo/asset/host/ -------------------------------------------------------------------

  host(ctx: Ctx): Answer {
    const p = ctx.params;
    if (p.get('action') !== 'list') return this.fail(ctx, 400, p.has('action') ? 1905 : 1903, 'host: only action=list is emulated');
    const bad = this.badDate(ctx, 'no_vm_scan_since') ?? this.badDate(ctx, 'vm_scan_since');
    if (bad) return bad;
    const now = this.m.advance();
    const limit = p.has('truncation_limit') ? Number(p.get('truncation_limit')) : this.c.hostListTruncationLimit;
    if (!Number.isInteger(limit) || limit < 0) return this.fail(ctx, 400, 1905, `parameter truncation_limit has invalid value: ${p.get('truncation_limit')}`);
    let wanted: Set<string> | undefined;
    // ips takes IPv4 addresses and ranges, ipv6 IPv6 addresses: the guide lists the two parameters
    // apart [P]; that an IPv6 value in ips is refused (1905) is our assumption [U]
    if (p.has('ips') || p.has('ipv6')) {
      const items = p.has('ips') ? splitList(p.get('ips')!) : [];
      const badIp = items.filter((i) => !parseItem(i)?.v4);
      if (badIp.length) return this.fail(ctx, 400, 1905, `parameter ips has invalid value: ${badIp.slice(0, 5).join(',')}`);
      const v6 = p.has('ipv6') ? splitList(p.get('ipv6')!) : [];
      const badV6 = v6.filter((i) => !parseItem(i)?.v6);
      if (badV6.length) return this.fail(ctx, 400, 1905, `parameter ipv6 has invalid value: ${badV6.slice(0, 5).join(',')}`);
      wanted = new Set([...expandTargets(items), ...expandTargets(v6)]);
    }
    const idMin = p.has('id_min') ? Number(p.get('id_min')) : 0;
    const noScanSince = p.has('no_vm_scan_since') ? Date.parse(p.get('no_vm_scan_since')!) : undefined;
    const scanSince = p.has('vm_scan_since') ? Date.parse(p.get('vm_scan_since')!) : undefined;
    const hosts = [...this.m.hosts.values()]
      .filter((h) => h.lastVulnScan !== undefined) // the host list holds scanned hosts only
      .filter((h) => (!wanted || wanted.has(h.ip)) && h.id >= idMin)
      .filter((h) => noScanSince === undefined || (h.lastVmScanned ?? 0) < noScanSince)
      .filter((h) => scanSince === undefined || (h.lastVmScanned ?? 0) >= scanSince)
      .sort((a, b) => a.id - b.id);
    const page = limit === 0 ? hosts : hosts.slice(0, limit);
    const rest = hosts.length - page.length;
    const items = page.map((h) =>
      `      <HOST>${el('ID', h.id)}${el(h.ip.includes(':') ? 'IPV6' : 'IP', h.ip)}${el('TRACKING_METHOD', h.trackingMethod)}${el('NETWORK_ID', 0)}` +
      `${h.dns ? `<DNS>${cdata(h.dns)}</DNS>` : ''}${h.netbios ? `<NETBIOS>${cdata(h.netbios)}</NETBIOS>` : ''}` +
      `${el('LAST_VULN_SCAN_DATETIME', h.lastVulnScan && isoSec(h.lastVulnScan))}${el('LAST_VM_SCANNED_DATE', h.lastVmScanned && isoSec(h.lastVmScanned))}` +
      `${el('LAST_VM_SCANNED_DURATION', h.lastVmScannedDurationSec)}</HOST>`);
    let warning = '';
    if (rest > 0) {
      const next = new URLSearchParams();
      for (const [k, v] of p) if (k !== 'id_min') next.set(k, v);
      next.set('id_min', String(hosts[page.length].id));
      const url = `${this.c.nextPageOrigin?.replace(/\/$/, '') ?? ctx.origin}${ctx.path}?${next.toString()}`;
      warning = `    <WARNING>${el('CODE', 1980)}${el('TEXT', `${limit} record limit exceeded. Use URL to get next batch of results.`)}<URL>${cdata(url)}</URL></WARNING>`;
    }
    const list = items.length ? `    <HOST_LIST>\n${items.join('\n')}\n    </HOST_LIST>` : '';
    // the guide's 5.0 host list sample (pp. 1010-1011) carries no DOCTYPE
    return { status: 200, body: doc('HOST_LIST_OUTPUT', undefined, ctx.host, `  <RESPONSE>\n    ${el('DATETIME', isoSec(now))}\n${list}\n${warning}\n  </RESPONSE>`) };
  }

  // ---- /api/2.0/fo/asset/ip/ ------------------------------------------------------------------------

  ip(ctx: Ctx): Answer {
    const p = ctx.params;
    const action = p.get('action');
    if (action === 'list') {
      const { ips, ranges } = this.m.subscription.items();
      const set = `<IP_SET>${ips.map((i) => el('IP', i)).join('')}${ranges.map((r) => el('IP_RANGE', r)).join('')}</IP_SET>`;
      return { status: 200, body: doc('IP_LIST_OUTPUT', '/api/2.0/fo/asset/ip/ip_list_output.dtd', ctx.host, `  <RESPONSE>${el('DATETIME', isoSec(this.m.now()))}${set}</RESPONSE>`) };
    }
    if (action !== 'add') return this.fail(ctx, 400, action ? 1905 : 1903, 'asset/ip: only action=list and action=add are emulated');
    const notPost = this.requirePost(ctx);
    if (notPost) return notPost;
    const ipsText = p.get('ips');
    if (!ipsText) return this.fail(ctx, 400, 1903, 'Missing required parameter(s): ips');
    const tm = p.get('tracking_method') ?? 'IP';
    if (!['IP', 'DNS', 'NETBIOS'].includes(tm)) return this.fail(ctx, 400, 1905, `parameter tracking_method has invalid value: ${tm}`);
    const bad = this.m.subscription.add(ipsText);
    if (bad.length) return this.fail(ctx, 400, 1905, `parameter ips has invalid value: ${bad.slice(0, 5).join(',')}`);
    const added = expandTargets(splitList(ipsText));
    if (added.length <= 4096) for (const ip of added) this.m.tracking.set(ip, tm); // remembered for when they are first scanned
    return this.ok(ctx, 'IPs successfully added to Vulnerability Management');
  }
}

/** scan list `type` values (the guide: On-Demand, Scheduled, API) */
const SCAN_TYPES = ['On-Demand', 'Scheduled', 'API'];

const PRIORITY_LABELS = ['No Priority', 'Emergency', 'Ultimate', 'Critical', 'Major', 'High', 'Standard', 'Medium', 'Minor', 'Low'];

function priorityLabel(p: number): string {
  return `${p} - ${PRIORITY_LABELS[p] ?? 'No Priority'}`;
}
