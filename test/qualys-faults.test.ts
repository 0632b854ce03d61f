/**
 * Many launches through the real client while the emulator injects faults (409s, 5xx, slow
 * answers, sockets dropped before and after processing, cut and broken XML). Every launch ends
 * either confirmed — exactly one scan in the emulator for its intent id, found via the title —
 * or as a typed error with no scan (or, when even the scan list was unreadable, an explicit
 * "unconfirmed" error); and the emulator never saw more calls at once, or per window, than the
 * limits allow.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { OnsightError } from '../src/errors.js';
import { startQualysEmulator, type QualysEmulator } from '../src/emulator/qualys/index.js';
import { QualysClient, QualysLaunchUnconfirmedError, titleHasIntent } from '../src/scanners/qualys/index.js';
import type { LaunchRequest } from '../src/scanners/types.js';

const open: { close(): Promise<void> }[] = [];
afterEach(async () => {
  while (open.length) await open.pop()!.close();
});

const scansFor = (e: QualysEmulator, intentId: string) => e.state.model.scans.filter((s) => titleHasIntent(s.title, intentId));

/** Runs `tasks` with at most `n` at a time (more than the API's concurrency, so the gate must queue). */
async function pool<T>(items: T[], n: number, f: (x: T) => Promise<void>): Promise<void> {
  let i = 0;
  await Promise.all(Array.from({ length: n }, async () => {
    while (i < items.length) await f(items[i++]);
  }));
}

describe('qualys launches under injected faults', () => {
  it('confirms each launch exactly once or fails it cleanly with a typed error, within the limits', async () => {
    const limit = { limit: 25, windowSec: 1, concurrency: 2 };
    const e = await startQualysEmulator({
      seed: 20261122,
      speed: 100,
      appliances: [{ name: 'sa-1', capacity: 8 }, { name: 'sa-2', capacity: 8 }],
      limits: { default: limit },
      faults: {
        conflictShare: 0.08, conflictToWaitSec: 1, serverErrorShare: 0.08, slowShare: 0.1, slowMs: 60,
        dropShare: 0.05, dropAfterShare: 0.1, truncatedShare: 0.05, malformedShare: 0.05,
      },
    });
    open.push(e);
    const c = new QualysClient({
      baseUrl: e.url, username: e.username, password: e.password, optionProfile: 'Initial Options',
      reconcileDelayMs: 0, retry: { maxAttempts: 4, baseDelayMs: 5, maxDelayMs: 50 }, throttle: { concurrencyBackoffMs: 50, maxWaitSec: 5 },
    });
    open.push(c);

    const intents: LaunchRequest[] = Array.from({ length: 40 }, (_, i) => ({
      intentId: `intent-${i}`, title: `onsight intent-${i}`, targets: [`10.50.${i}.1`, `10.50.${i}.2`], appliance: i % 2 ? 'sa-1' : 'sa-2',
    }));
    const confirmed = new Map<string, string>();
    const failed = new Map<string, OnsightError>();
    const t0 = Date.now();
    await pool(intents, 6, async (req) => {
      try {
        confirmed.set(req.intentId, (await c.launch(req)).scanRef);
      } catch (err) {
        expect(err).toBeInstanceOf(OnsightError); // typed, never a crash or a bare Error
        failed.set(req.intentId, err as OnsightError);
      }
    });
    const elapsedSec = (Date.now() - t0) / 1000;

    for (const req of intents) {
      const found = scansFor(e, req.intentId);
      const ref = confirmed.get(req.intentId);
      if (ref) {
        expect(found.map((s) => s.ref), req.intentId).toEqual([ref]);
      } else {
        const err = failed.get(req.intentId)!;
        expect(err.code).toMatch(/^ONSIGHT_QUALYS_/);
        if (err instanceof QualysLaunchUnconfirmedError) expect(found.length).toBeLessThanOrEqual(1);
        else expect(found, `${req.intentId}: ${err.message}`).toHaveLength(0);
      }
    }
    // the faults really happened, including the ones that make a launch ambiguous
    expect(e.state.faults['drop-after'] ?? 0).toBeGreaterThan(0);
    expect((e.state.faults.truncated ?? 0) + (e.state.faults.malformed ?? 0)).toBeGreaterThan(0);
    expect(confirmed.size).toBeGreaterThanOrEqual(30);

    // limits: never more calls in flight than allowed (not even attempted ones), never over the window
    const st = e.state.stats('scan');
    expect(st.peakAttempted).toBeLessThanOrEqual(limit.concurrency);
    expect(st.peakRunning).toBeLessThanOrEqual(limit.concurrency);
    expect(st.blockedConcurrency).toBe(0);
    expect(st.maxAcceptedInWindow).toBeLessThanOrEqual(limit.limit);
    // once the window is spent the client sends one probe, then waits as told
    expect(st.blockedRate).toBeLessThanOrEqual(Math.ceil(elapsedSec / limit.windowSec) + 1);

    // what the scheduler does next: reconcile by title, relaunch the failed intents (faults off)
    e.state.config.faults = { ...e.state.config.faults, conflictShare: 0, serverErrorShare: 0, dropShare: 0, dropAfterShare: 0, truncatedShare: 0, malformedShare: 0, slowShare: 0 };
    for (const [intentId] of failed) {
      const existing = await c.findScansForIntent(intentId);
      if (existing.length === 0) await c.launch(intents.find((x) => x.intentId === intentId)!);
    }
    for (const req of intents) expect(scansFor(e, req.intentId), req.intentId).toHaveLength(1);
  });

  // the launch was processed both ways; its answer lost, or 202 CODE 1981 ("being processed, try again later")
  for (const [share, fault, what] of [['dropAfterShare', 'drop-after', 'whose answer is lost'], ['processingShare', 'processing-1981', 'answered 202 CODE 1981']] as const) {
    it(`a launch ${what} is confirmed from the scan list, not sent again`, async () => {
      const e = await startQualysEmulator({ appliances: [{ name: 'sa-1' }], faults: { [share]: 1, actions: ['launch'] } });
      open.push(e);
      const c = new QualysClient({ baseUrl: e.url, username: e.username, password: e.password, optionProfile: 'Initial Options', reconcileDelayMs: 0 });
      open.push(c);
      const { scanRef } = await c.launch({ intentId: `${fault}-1`, title: `onsight ${fault}-1`, targets: ['10.60.0.1'], appliance: 'sa-1' });
      expect(e.state.faults[fault]).toBe(1);
      expect(e.state.model.scans.map((s) => s.ref)).toEqual([scanRef]);
      expect(e.state.requests.filter((r) => r.action === 'launch')).toHaveLength(1);
    });
  }

  it('a launch answered 5xx and not listed is "unconfirmed", never sent again by the client (the list may lag: a second launch would be a second scan)', async () => {
    const e = await startQualysEmulator({ appliances: [{ name: 'sa-1' }], faults: { serverErrorShare: 1, actions: ['launch'] } });
    open.push(e);
    const c = new QualysClient({ baseUrl: e.url, username: e.username, password: e.password, optionProfile: 'Initial Options', reconcileDelayMs: 0, retry: { maxAttempts: 3, baseDelayMs: 5, maxDelayMs: 20 } });
    open.push(c);
    const err = await c.launch({ intentId: 'five-1', title: 'onsight five-1', targets: ['10.60.0.3'], appliance: 'sa-1' }).catch((x) => x);
    expect(err).toBeInstanceOf(QualysLaunchUnconfirmedError);
    expect(e.state.requests.filter((r) => r.action === 'launch')).toHaveLength(1);
    expect(e.state.requests.filter((r) => r.action === 'list').length).toBeGreaterThanOrEqual(1); // it looked
  });

  it('says "unconfirmed" when the answer is lost and the scan list cannot be read either', async () => {
    const e = await startQualysEmulator({
      appliances: [{ name: 'sa-1' }], limits: { default: { limit: 1, windowSec: 60, concurrency: 2 } },
      faults: { dropAfterShare: 1, actions: ['launch'] },
    });
    open.push(e);
    const c = new QualysClient({ baseUrl: e.url, username: e.username, password: e.password, optionProfile: 'Initial Options', reconcileDelayMs: 0, throttle: { maxWaitSec: 1 } });
    open.push(c);
    const err = await c.launch({ intentId: 'lost-2', title: 'onsight lost-2', targets: ['10.60.0.2'], appliance: 'sa-1' }).catch((x) => x);
    expect(err).toBeInstanceOf(QualysLaunchUnconfirmedError);
    expect(err).toMatchObject({ code: 'ONSIGHT_QUALYS_LAUNCH_UNCONFIRMED', intentId: 'lost-2', ambiguous: true, retryable: true });
    expect(e.state.model.scans).toHaveLength(1); // it did launch; the scheduler's reconciliation will find it
  });
});
