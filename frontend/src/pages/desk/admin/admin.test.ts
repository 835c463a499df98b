import { describe, expect, it } from 'vitest';
import { minutesLabel } from './SlaPolicies';
import { grantable } from './Users';

describe('admin helpers', () => {
  it('offers only roles below one\'s own, as the server grants them', () => {
    expect(grantable('admin')).toEqual(['customer_user', 'customer_admin', 'agent', 'manager']);
    expect(grantable('manager')).toEqual(['customer_user', 'customer_admin', 'agent']);
    expect(grantable('customer_admin')).toEqual(['customer_user']);
    expect(grantable('customer_user')).toEqual([]);
  });
  it('writes SLA targets as people read them', () => {
    expect(minutesLabel(45)).toBe('45 min');
    expect(minutesLabel(240)).toBe('4 h');
    expect(minutesLabel(90)).toBe('1 h 30 min');
  });
});
