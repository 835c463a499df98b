import { describe, expect, it } from 'vitest';
import { slaState } from './Sla';

const now = Date.parse('2026-01-01T12:00:00Z');
describe('slaState', () => {
  it('classifies due times', () => {
    expect(slaState(null, null, false, now)).toBe('none');
    expect(slaState('2026-01-01T15:00:00Z', null, false, now)).toBe('ok');
    expect(slaState('2026-01-01T12:30:00Z', null, false, now)).toBe('risk');
    expect(slaState('2026-01-01T11:59:00Z', null, false, now)).toBe('breached');
    expect(slaState('2026-01-01T11:59:00Z', '2026-01-01T11:00:00Z', false, now)).toBe('met');
    expect(slaState('2026-01-01T15:00:00Z', null, true, now)).toBe('breached');
  });
});
