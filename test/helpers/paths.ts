import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';

// test/helpers/ → the repository; compiled into dist/test/helpers/ (a bench importing a helper) → one more up
const up2 = fileURLToPath(new URL('../../', import.meta.url));
export const REPO = existsSync(join(up2, 'package.json')) ? up2 : join(up2, '..');
/** ../shared beside the repository (CI clones main with shared/ next to it) */
export const SHARED = join(REPO, '..', 'shared');
export const CORPUS = join(SHARED, 'corpus');
export const hasShared = existsSync(CORPUS);
export const CLI = join(REPO, 'bin', 'onsight.js');
