/** Which region an address belongs to: the longest matching prefix of all regions' CIDRs. */
import { CidrSet, parseCidr } from '../util/ip.js';

export interface RegionDef {
  name: string;
  cidrs: string[];
}

export class RegionMap<R extends RegionDef = RegionDef> {
  private readonly set = new CidrSet<{ region: R; cidr: string }>();
  readonly regions: R[];

  constructor(regions: R[]) {
    this.regions = regions;
    for (const r of regions) for (const c of r.cidrs) this.set.add(parseCidr(c)!, { region: r, cidr: c });
  }

  /** region and the CIDR that matched */
  lookup(ip: string): { region: R; cidr: string } | undefined {
    return this.set.lookup(ip);
  }

  byName(name: string): R | undefined {
    return this.regions.find((r) => r.name === name);
  }
}
