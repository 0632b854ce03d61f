/**
 * One daemon per state file, however a config names it: a second config whose `state:` leads to
 * the same file through a symlink (to the file, or to a folder on its path) meets the same lock.
 * Before, it took its own lock beside the link, and two daemons ran on one state file.
 */
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { lockStateFile } from '../src/store/lock.js';

const dir = mkdtempSync(join(tmpdir(), 'onsight-lock-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('the state lock', () => {
  it('is met through a symlink to the state file or to its folder, and freed at release', () => {
    mkdirSync(join(dir, 'real'));
    const state = join(dir, 'real', 'state.db');
    writeFileSync(state, '');
    symlinkSync(state, join(dir, 'link.db'));
    symlinkSync(join(dir, 'real'), join(dir, 'folder'));
    const held = lockStateFile(state);
    for (const other of [join(dir, 'link.db'), join(dir, 'folder', 'state.db'), join(dir, 'real', '..', 'real', 'state.db')]) {
      expect(() => lockStateFile(other), other).toThrow(/another onsight daemon is using/);
    }
    held.release();
    const viaLink = lockStateFile(join(dir, 'link.db'));
    expect(() => lockStateFile(state)).toThrow(/another onsight daemon is using/);
    viaLink.release();
  });

  it('a state not created yet is locked beside where it will be, through a link to it too (the first start)', () => {
    mkdirSync(join(dir, 'later'));
    symlinkSync(join(dir, 'later', 'new.db'), join(dir, 'dangling.db'));
    const held = lockStateFile(join(dir, 'dangling.db'));
    expect(() => lockStateFile(join(dir, 'later', 'new.db'))).toThrow(/another onsight daemon is using/);
    held.release();
  });
});
