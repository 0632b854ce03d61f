import type { Logger } from '../../log.js';
import type { InputHandle, LineSink, ResumeStore } from '../types.js';
import type { LeaseInputConfig } from './schema.js';
export async function startLeaseInput(_o: LeaseInputConfig, _s: LineSink, _st: ResumeStore, _l: Logger): Promise<InputHandle> {
  throw new Error('not yet');
}
