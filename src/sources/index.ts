/** The sources' public face: what the daemon starts. */
export { startSyslogInput, parseListen, readUdpKernelDrops } from './syslog/listen.js';
export { SyslogFramer } from './syslog/framing.js';
export type * from './types.js';
export { startFileInput, globToRegExp } from './file/input.js';
export { startHttpInput } from './http/input.js';
export { startLeaseInput } from './lease/input.js';
