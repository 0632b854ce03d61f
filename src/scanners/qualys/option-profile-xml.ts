/**
 * OPTION_PROFILES (the VM option profile list, option_profile_info.dtd) → what the scheduler needs
 * of the profile our scans run with: how many hosts an appliance scans at once in one scan
 * (SCAN/PERFORMANCE/HOSTS_TO_SCAN/SCANNER_APPLIANCES) and whether Qualys scales that figure up on
 * larger appliances (PARALLEL_SCALING). Lenient: unknown children are ignored, a profile without
 * the figure gives none. Element names: the API guide's "List VM Option Profile" sample.
 */
import { int, list, node, text, type XmlNode } from './xml.js';

export interface QualysOptionProfile {
  id?: string;
  /** BASIC_INFO/GROUP_NAME: the title a launch names (option_title) */
  title: string;
  isDefault: boolean;
  /** hosts one scan on a scanner appliance probes at once, when the profile says */
  hostsInParallel?: number;
  /** PARALLEL_SCALING on: larger appliances scan more at once than hostsInParallel */
  parallelScaling?: boolean;
}

/** a figure past this is not a hosts-in-parallel setting (the GUI offers up to a few hundred) */
const MAX_HOSTS = 10_000;

export function parseOptionProfiles(doc: XmlNode): QualysOptionProfile[] {
  return list(doc.OPTION_PROFILE).map((p) => {
    const basic = node(p.BASIC_INFO) ?? {};
    const perf = node(node(p.SCAN)?.PERFORMANCE);
    const hosts = int(node(perf?.HOSTS_TO_SCAN)?.SCANNER_APPLIANCES);
    const scaling = text(perf?.PARALLEL_SCALING);
    return {
      id: text(basic.ID) || undefined,
      title: text(basic.GROUP_NAME) ?? '',
      isDefault: text(basic.IS_DEFAULT) === '1',
      ...(hosts !== undefined && Number.isInteger(hosts) && hosts >= 1 && hosts <= MAX_HOSTS ? { hostsInParallel: hosts } : {}),
      ...(scaling === '0' || scaling === '1' ? { parallelScaling: scaling === '1' } : {}),
    };
  });
}
