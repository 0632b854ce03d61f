/**
 * The syslog header parser lives next to its only user, the decoder (src/parsers/syslog-header.ts).
 * This path stays because the peer conformance harness (../shared/conformance/syslog/run.mjs)
 * imports `dist/src/sources/syslog/header.js`.
 */
export * from '../../parsers/syslog-header.js';
