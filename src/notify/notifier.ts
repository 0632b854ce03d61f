/**
 * Notifications: turns what the scheduler did (scans ended, decisions logged) and devices that
 * left unscanned into events, and hands each to the sinks that want it (webhook, syslog). Nothing
 * here waits on a receiver: sinks queue, and the missed-host check runs on its own timer.
 */
import type { Logger } from '../log.js';
import type { Verdict } from '../policy/policy.js';
import type { BindingView } from '../inventory/inventory.js';
import { ENDED_PAGE, type EndedKey } from '../store/types.js';
import type { Decision, Intent } from '../scheduler/queue.js';
import type { ScanEnd } from '../scheduler/scheduler.js';
import { classifyMissed, decisionIndexFor, type EndedBinding } from '../coverage/missed.js';
import type { DeliveryCounters } from './queue.js';
import { factId, newEvent, type HostFacts, type NotifyEvent } from './events.js';
import type { NotifyConfig } from './schema.js';
import { WebhookSink } from './webhook.js';
import { SyslogSink } from './syslog.js';

type MaybeAsync<T> = T | Promise<T>;

/** What the notifier reads of the daemon (the same named queries the status page uses). */
export interface NotifyContext {
  identity(id: number): MaybeAsync<{ key: string; hostname?: string; user?: string } | undefined>;
  regionOf(ip: string): string | undefined;
  /** newest first, ENDED_PAGE at most; `before`: the next page */
  endedBindings(since: number, now: number, before?: EndedKey): MaybeAsync<EndedBinding[]>;
  /** the decision log since `since`, oldest first, a page at a time */
  decisionPagesSince(since: number): AsyncIterable<Decision[]>;
  /** the policy's verdict with operators' skips applied (a skipped device that left was not missed) */
  evaluator(): MaybeAsync<(b: BindingView, at: number) => Verdict>;
}

interface Sink {
  readonly queue: { push(e: NotifyEvent): void; counters: DeliveryCounters; close(): void };
  wants(e: NotifyEvent): boolean;
  close?(): void;
}

/** late lines (a file catching up) may end a binding in the past: look this far behind the last check */
const LOOKBACK_MS = 15 * 60_000;

export class Notifier {
  private readonly sinks: { name: string; sink: Sink }[] = [];
  /** bindings already reported missed (a binding is reported once) */
  private readonly reported = new Set<number>();
  private checkedUntil: number;
  private checking = false;
  /** events built and handed to at least one sink, by kind */
  readonly emitted: Record<string, number> = {};

  constructor(cfg: NotifyConfig, private readonly ctx: NotifyContext, private readonly log: Logger, startedAt = Date.now(), env: NodeJS.ProcessEnv = process.env) {
    if (cfg.webhook) this.sinks.push({ name: 'webhook', sink: new WebhookSink(cfg.webhook, log, env) });
    if (cfg.syslog) {
      const s = new SyslogSink(cfg.syslog, log);
      this.sinks.push({ name: 'syslog', sink: { queue: s.queue, wants: (e) => s.wants(e), close: () => s.close() } });
    }
    this.checkedUntil = startedAt; // what ended before the start is history, not news
  }

  /**
   * This node leads from now (cluster mode): what ended before is the previous leader's to have
   * reported, less the lookback (the time a takeover takes); without it a node that had run for days
   * as a follower reported every miss since its own start.
   */
  leading(now: number): void {
    this.checkedUntil = Math.max(this.checkedUntil, now);
  }

  get enabled(): boolean {
    return this.sinks.length > 0;
  }

  /** per sink: sent, retries, failed, dropped, queued (for /metrics) */
  counters(): { sink: string; counters: DeliveryCounters }[] {
    return this.sinks.map((s) => ({ sink: s.name, counters: s.sink.queue.counters }));
  }

  emit(e: NotifyEvent): void {
    let taken = false;
    for (const { sink } of this.sinks) {
      if (!sink.wants(e)) continue;
      sink.queue.push(e);
      taken = true;
    }
    if (taken) this.emitted[e.event] = (this.emitted[e.event] ?? 0) + 1;
  }

  scanEnded(i: Intent, end: ScanEnd): void {
    if (!this.enabled) return;
    this.emit(newEvent(end.state === 'finished' ? 'scan-finished' : 'scan-failed', end.endedAt, {
      scan: {
        intentId: i.id, scanRef: i.scanRef, region: i.region, appliance: i.appliance, state: end.state,
        launchedAt: i.launchedAt !== undefined ? new Date(i.launchedAt).toISOString() : undefined,
        endedAt: new Date(end.endedAt).toISOString(), targets: end.targets, scanned: end.scanned, error: end.why,
      },
    }));
  }

  /** a decision was logged: `scanned` ones are host-scanned events */
  decided(d: Decision): void {
    if (!this.enabled || d.decision !== 'scanned') return;
    void this.host(d.ip, d.identityId, { reason: d.reason }).then((host) => this.emit(newEvent('host-scanned', d.at, { host })), (err: Error) => this.failed(err));
  }

  /** Devices whose binding ended since the last check and that left unscanned: one host-missed event each. */
  async checkMissed(now: number): Promise<number> {
    if (!this.enabled || this.checking) return 0;
    this.checking = true;
    try {
      const since = this.checkedUntil - LOOKBACK_MS;
      // every page (a sweep after an outage may end more than a page of leases at once): a page only, and the older ones went unreported
      const ended: EndedBinding[] = [];
      for (let before: EndedKey | undefined; ;) {
        const page = await this.ctx.endedBindings(since, now, before);
        for (const e of page) if (!this.reported.has(e.view.id)) ended.push(e);
        if (page.length < ENDED_PAGE) break;
        const last = page[page.length - 1];
        before = { endAt: last.endAt, id: last.view.id };
      }
      this.checkedUntil = now;
      if (ended.length === 0) return 0;
      // only the decisions about the devices that left are kept (the log may hold 1M)
      const decisions = await decisionIndexFor(ended.map((e) => e.view), this.ctx.decisionPagesSince(since - 7 * 86400_000));
      let n = 0;
      for (const m of classifyMissed(ended, decisions, await this.ctx.evaluator())) {
        if (this.reported.size > 100_000) this.reported.clear();
        this.reported.add(m.bindingId);
        const host = await this.host(m.ip, m.identityId, { region: m.region, reason: m.text, why: m.key, leftAt: new Date(m.endAt).toISOString() });
        // (its id names the binding and when it ended: the same miss reported again, by a new cluster leader, is the same event)
        this.emit(newEvent('host-missed', m.endAt, { host }, factId(`host-missed ${m.bindingId} ${m.endAt}`)));
        n++;
      }
      return n;
    } catch (err) {
      this.failed(err as Error);
      return 0;
    } finally {
      this.checking = false;
    }
  }

  private async host(ip: string, identityId: number | undefined, facts: Partial<HostFacts> & { reason: string }): Promise<HostFacts> {
    const id = identityId !== undefined ? await this.ctx.identity(identityId) : undefined;
    return { ip, identityId, device: id?.key, hostname: id?.hostname, user: id?.user, region: facts.region ?? this.ctx.regionOf(ip), ...facts };
  }

  private failed(err: Error): void {
    this.log.warn({ err: { message: err.message } }, 'notify: could not build an event (the state database?); it is not sent');
  }

  close(): void {
    for (const { sink } of this.sinks) (sink.close ?? (() => sink.queue.close()))();
  }
}
