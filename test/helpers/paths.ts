import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';

export const REPO = fileURLToPath(new URL('../../', import.meta.url));
/** ../shared beside the repository (CI clones main with shared/ next to it) */
export const SHARED = join(REPO, '..', 'shared');
export const CORPUS = join(SHARED, 'corpus');
export const hasShared = existsSync(CORPUS);
export const CLI = join(REPO, 'bin', 'onsight.js');
