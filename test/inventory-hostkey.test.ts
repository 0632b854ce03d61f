import { describe, expect, it } from 'vitest';
import { hostKey, isLinkableHostKey } from '../src/inventory/hostkey.js';

describe('host keys', () => {
  it('lower-case, before the first dot, trimmed', () => {
    expect(hostKey('LT-0042')).toBe('lt-0042');
    expect(hostKey('lt-0042.corp.example')).toBe('lt-0042');
    expect(hostKey('  Lt-0042 .corp ')).toBe('lt-0042');
    expect(hostKey('')).toBeUndefined();
    expect(hostKey('.corp.example')).toBeUndefined();
    expect(hostKey(undefined)).toBeUndefined();
    expect(hostKey(null)).toBeUndefined();
  });

  it('specific names link; generic, short, all-digit and colon names never do', () => {
    for (const h of ['LT-0042', 'DESKTOP-7Q2K9LM', 'Johns-iPhone', 'android-1a2b3c4d5e6f', 'jdoe-mbp.local']) {
      expect(isLinkableHostKey(hostKey(h)), h).toBe(true);
    }
    for (const h of ['iPhone', 'localhost', 'localhost.localdomain', 'Android', 'MacBook-Pro', 'DESKTOP', 'raspberrypi', 'ubuntu',
      'unknown', '*', 'pc', 'ab', '12345', '10.1.2.3', 'fe80::1', '', undefined]) {
      expect(isLinkableHostKey(hostKey(h)), String(h)).toBe(false);
    }
  });
});
