import { describe, expect, it } from 'vitest';
import { parseTicketListSearch } from './router';

describe('ticket list URL state', () => {
  it('keeps known filters and drops the rest', () => {
    expect(parseTicketListSearch({ queue: 'mine', status: ['new', 'bogus', 'resolved'], priority: 'high,critical', q: '  printer ', order: 'oldest' }))
      .toEqual({ queue: 'mine', status: ['new', 'resolved'], priority: ['high', 'critical'], q: '  printer ', order: 'oldest', after: undefined });
  });
  it('ignores invalid values', () => {
    expect(parseTicketListSearch({ queue: 'everything', status: 'nope', q: '   ', order: 'sideways', after: 'x' }))
      .toEqual({ queue: undefined, status: undefined, priority: undefined, q: undefined, order: undefined, after: undefined });
  });
  it('caps the search text', () => {
    expect(parseTicketListSearch({ q: 'a'.repeat(900) }).q).toHaveLength(500);
  });
});
