import { describe, expect, it } from 'vitest';
import { relative } from './Time';

describe('relative', () => {
  const now = Date.parse('2026-01-01T12:00:00Z');
  it('says how long ago and how long until', () => {
    expect(relative('2026-01-01T11:57:00Z', 'en', now)).toBe('3 minutes ago');
    expect(relative('2026-01-01T14:00:00Z', 'en', now)).toBe('in 2 hours');
    expect(relative('2026-01-01T12:00:00Z', 'en', now)).toBe('now');
    expect(relative('2025-12-30T12:00:00Z', 'en', now)).toBe('2 days ago');
  });
});
