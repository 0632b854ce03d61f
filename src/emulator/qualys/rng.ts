/** The emulators' seeded PRNG lives in src/util/rng.ts (the scheduler uses it too). */
export { seededRng, type Rng } from '../../util/rng.js';
