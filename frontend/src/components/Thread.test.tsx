import { screen } from '@testing-library/react';
import { describe, expect, it } from 'vitest';
import type { Comment } from '../api/client';
import { renderUI } from '../test/render';
import { Thread } from './Thread';

const base = { ticket_id: 't', is_ai_generated: false, channel: 'web', created_at: '2026-01-01T12:00:00Z', updated_at: '2026-01-01T12:00:00Z', content_html: null } as const;
const comments: Comment[] = [
  { ...base, id: 'c1', author_id: 'cust', author_name: 'Casey', author_is_staff: false, content: 'It is on fire', is_internal: false },
  { ...base, id: 'c2', author_id: 'agent', author_name: 'Alex', author_is_staff: true, content: 'fuser is toast', is_internal: true },
  { ...base, id: 'c3', author_id: 'agent', author_name: 'Alex', author_is_staff: true, content: '<img src=x onerror=alert(1)>', is_internal: false },
];

describe('Thread', () => {
  it('marks internal notes so they cannot pass for replies', () => {
    renderUI(<Thread comments={comments} meId="cust" />);
    const notes = screen.getAllByTestId('internal-note');
    expect(notes).toHaveLength(1);
    expect(notes[0].getAttribute('data-internal')).toBe('true');
    expect(notes[0].textContent).toContain('Internal note');
    expect(screen.getAllByTestId('comment')).toHaveLength(2);
    expect(screen.getByText('You')).toBeTruthy(); // the viewer's own comment
  });

  it('renders text as text, never as HTML', () => {
    const { container } = renderUI(<Thread comments={comments} meId="cust" />);
    expect(container.querySelector('img')).toBeNull();
    expect(screen.getByText('<img src=x onerror=alert(1)>')).toBeTruthy();
  });

  it('renders rich replies as sanitised HTML, links opening safely', () => {
    const rich: Comment[] = [{
      ...base, id: 'r1', author_id: 'agent', author_name: 'Alex', author_is_staff: true, is_internal: false, content: 'Try this',
      content_html: '<p><strong>Try</strong> <a href="https://example.test/x">this</a></p><img src=x onerror=alert(1)><script>alert(2)</script>',
    }];
    const { container } = renderUI(<Thread comments={rich} meId="cust" />);
    expect(container.querySelector('strong')?.textContent).toBe('Try');
    const a = container.querySelector('a')!;
    expect(a.getAttribute('rel')).toBe('noopener noreferrer nofollow');
    expect(a.getAttribute('target')).toBe('_blank');
    expect(container.querySelector('img')).toBeNull();
    expect(container.querySelector('script')).toBeNull();
  });
});
