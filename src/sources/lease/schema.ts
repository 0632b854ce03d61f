/** `type: lease` in the config (imported into the inputs union of src/config/schema.ts). */
import { z } from 'zod';

export const LEASE_FORMATS = ['dnsmasq', 'kea', 'isc-dhcpd'] as const;

export const leaseInput = z.object({
  type: z.literal('lease'),
  /** the lease database: /var/lib/misc/dnsmasq.leases, /var/lib/kea/kea-leases4.csv, /var/lib/dhcp/dhcpd.leases */
  path: z.string().min(1),
  /** which database: `dnsmasq` (dnsmasq.leases), `kea` (memfile leases4.csv, leases6.csv), `isc-dhcpd` (dhcpd.leases) */
  format: z.enum(LEASE_FORMATS),
  /** how often to look for changes, ms (the lease input polls: no fs events) */
  pollMs: z.number().int().min(10).default(1000),
}).strict();

export type LeaseInputConfig = z.output<typeof leaseInput>;
