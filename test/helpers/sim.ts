/** Scenarios shared by the simulator tests. */
import { parseScenarioText, type Scenario } from '../../src/sim/scenario.js';

/** A small fleet: 300 laptops over `days` days, 3 regions, 2 appliances. */
export function smallFleet(days: number): Scenario {
  return parseScenarioText(`
extends: mobile-fleet
name: small-fleet
startAt: "2026-01-05T00:00:00Z"
days: ${days}
regions: [{ name: R1 }, { name: R2 }, { name: R3 }]
appliances:
  - { name: A1, regions: [R1, R2] }
  - { name: A2, regions: [R2, R3, R1] }
fleet: { laptops: 300, vpnRegion: R1 }
background: { hostsPerRegion: 100 }
`, 'small.yaml');
}
