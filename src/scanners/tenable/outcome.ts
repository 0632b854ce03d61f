/** Tenable's failures onto the seam: its transport already says what each means (json-transport.ts). */
export { httpFailureOutcome as tenableFailureOutcome } from '../json-transport.js';
