/** APPLIANCE_LIST_OUTPUT and HOST_LIST_OUTPUT → our types. Lenient: unknown children are ignored. */
import { dateTextOrUndefined } from '../../util/time.js';
import type { ApplianceStatus } from '../types.js';
import { int, list, node, text, type XmlNode } from './xml.js';

export interface QualysAppliance extends ApplianceStatus {
  id?: string;
  /** STATUS verbatim */
  status?: string;
  lastUpdated?: string;
}

export function parseApplianceList(doc: XmlNode): QualysAppliance[] {
  const resp = node(doc.RESPONSE) ?? {};
  return list(node(resp.APPLIANCE_LIST)?.APPLIANCE).map((a) => {
    const status = text(a.STATUS) ?? '';
    // child names under RUNNING_SCANS/SCAN are unconfirmed: accept REFERENCE or REF
    const refs = list(node(a.RUNNING_SCANS)?.SCAN)
      .map((s) => text(s.REFERENCE) ?? text(s.REF))
      .filter((r): r is string => !!r);
    return {
      id: text(a.ID) || undefined,
      name: text(a.NAME) ?? '',
      status,
      online: /^(online|connected)$/i.test(status.trim()),
      runningScans: int(a.RUNNING_SCAN_COUNT) ?? refs.length,
      runningSlices: int(a.RUNNING_SLICES_COUNT),
      maxCapacityUnits: int(a.MAX_CAPACITY_UNITS),
      heartbeatsMissed: int(a.HEARTBEATS_MISSED),
      runningScanRefs: a.RUNNING_SCANS === undefined ? undefined : refs,
      pollIntervalS: int(a.POLLING_INTERVAL),
      lastUpdated: text(a.LAST_UPDATED_DATE) || undefined,
    };
  });
}

export interface QualysHost {
  id?: string;
  ip: string;
  trackingMethod?: string;
  dns?: string;
  netbios?: string;
  lastVulnScan?: string;
  lastVmScanned?: string;
  lastVmAuthScanned?: string;
}

export function parseHostList(doc: XmlNode): QualysHost[] {
  const resp = node(doc.RESPONSE) ?? {};
  const out: QualysHost[] = [];
  for (const h of list(node(resp.HOST_LIST)?.HOST)) {
    // an IPv6 host is listed under IPV6, not IP (the host list DTD's IPV6 element)
    const ip = text(h.IP) || text(h.IPV6);
    if (!ip) continue;
    out.push({
      id: text(h.ID) || undefined,
      ip,
      trackingMethod: text(h.TRACKING_METHOD) || undefined,
      dns: text(h.DNS) || undefined,
      netbios: text(h.NETBIOS) || undefined,
      // (a date that does not read, N/A say, is none: as the later of two it hid a valid one)
      lastVulnScan: dateTextOrUndefined(text(h.LAST_VULN_SCAN_DATETIME)),
      lastVmScanned: dateTextOrUndefined(text(h.LAST_VM_SCANNED_DATE)),
      lastVmAuthScanned: dateTextOrUndefined(text(h.LAST_VM_AUTH_SCANNED_DATE)),
    });
  }
  return out;
}

/** The later of two ISO dates (either may be absent, or not a date: then the other). */
export function latest(a: string | undefined, b: string | undefined): string | undefined {
  if (!a || Number.isNaN(Date.parse(a))) return b;
  if (!b || Number.isNaN(Date.parse(b))) return a;
  return Date.parse(a) >= Date.parse(b) ? a : b;
}
