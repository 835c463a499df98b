import { fireEvent, screen } from '@testing-library/react';
import { describe, expect, it, vi } from 'vitest';
import type { TicketAttachment } from '../api/client';
import { renderUI } from '../test/render';
import { AttachmentItems } from './AttachmentList';

const file = (id: string, filename: string, internal = false): TicketAttachment => ({
  id, filename, mime_type: 'text/plain', size_bytes: 2048, sha256: 'x', access_count: 0, created_at: '2026-01-01T12:00:00Z',
  download_url: `/api/v1/attachments/${id}`, is_internal: internal, ticket_id: 't', comment_id: null, uploaded_by: null,
});

describe('AttachmentItems', () => {
  it('lists files with size, marks internal-note files, downloads on click', () => {
    const onDownload = vi.fn();
    renderUI(<AttachmentItems items={[file('a1', 'screen.png'), file('a2', 'notes.txt', true)]} onDownload={onDownload} />);
    const rows = screen.getAllByTestId('attachment');
    expect(rows).toHaveLength(2);
    expect(rows[0].textContent).toContain('screen.png');
    expect(rows[0].textContent).toContain('2kB');
    expect(rows[0].textContent).not.toContain('Internal note');
    expect(rows[1].getAttribute('data-internal')).toBe('true');
    expect(rows[1].textContent).toContain('Internal note');
    fireEvent.click(screen.getByRole('button', { name: 'Download screen.png' }));
    expect(onDownload).toHaveBeenCalledWith(expect.objectContaining({ id: 'a1' }));
  });

  it('says so when there is no file', () => {
    renderUI(<AttachmentItems items={[]} onDownload={() => {}} />);
    expect(screen.getByTestId('attachments-empty').textContent).toBe('No files yet.');
  });
});
