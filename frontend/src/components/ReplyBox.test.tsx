import { act, fireEvent, screen, waitFor } from '@testing-library/react';
import { createRef, useState } from 'react';
import { describe, expect, it, vi } from 'vitest';
import { renderUI } from '../test/render';
import { appendText, commentBody, ReplyBox, type Draft, type ReplyBoxHandle, type ReplyMode } from './ReplyBox';

function Harness({ onSend, initial = { html: '', text: '' }, box }: { onSend: (d: Draft, m: ReplyMode) => void; initial?: Draft; box?: React.Ref<ReplyBoxHandle> }) {
  const [draft, setDraft] = useState<Draft>(initial);
  const [mode, setMode] = useState<ReplyMode>('public');
  return (
    <>
      <ReplyBox ref={box} draft={draft} onDraft={setDraft} mode={mode} onMode={setMode} busy={false}
        onSend={() => { onSend(draft, mode); setDraft({ html: '', text: '' }); }} />
      <button type="button" onClick={() => setDraft((d) => appendText(d, 'Canned line'))}>insert</button>
      <output data-testid="draft">{JSON.stringify(draft)}</output>
    </>
  );
}

const editor = () => screen.findByTestId('reply-editor', {}, { timeout: 5000 });

describe('ReplyBox', () => {
  it('loads the rich editor with its formatting toolbar', async () => {
    renderUI(<Harness onSend={() => {}} />);
    const ed = await editor();
    expect(ed.getAttribute('contenteditable')).toBe('true');
    expect(ed.getAttribute('aria-label')).toBe('Reply');
    for (const name of ['Bold', 'Italic', 'Inline code', 'Bulleted list', 'Numbered list', 'Link', 'Code block']) {
      expect(screen.getByRole('button', { name })).toBeTruthy();
    }
    expect((screen.getByRole('button', { name: 'Send reply' }) as HTMLButtonElement).disabled).toBe(true);
  });

  it('shows a draft set from outside (a canned response) and sends its HTML and text', async () => {
    const onSend = vi.fn();
    renderUI(<Harness onSend={onSend} />);
    const ed = await editor();
    fireEvent.click(screen.getByText('insert'));
    await waitFor(() => expect(ed.innerHTML).toContain('<p>Canned line</p>'));
    fireEvent.click(screen.getByRole('button', { name: 'Send reply' }));
    expect(onSend).toHaveBeenCalledWith({ html: '<p>Canned line</p>', text: 'Canned line' }, 'public');
    // Cleared after sending: the editor empties too.
    await waitFor(() => expect(ed.textContent).toBe(''));
  });

  it('keeps a rich draft across a remount (live updates re-render the page)', async () => {
    const draft = { html: '<p><strong>Half</strong> written</p>', text: 'Half written' };
    const { unmount } = renderUI(<Harness onSend={() => {}} initial={draft} />);
    expect((await editor()).innerHTML).toContain('<strong>Half</strong>');
    unmount();
    renderUI(<Harness onSend={() => {}} initial={draft} />);
    expect((await editor()).innerHTML).toContain('<strong>Half</strong> written');
  });

  it('switches to internal-note mode, visibly, through its handle (the n shortcut)', async () => {
    const box = createRef<ReplyBoxHandle>();
    renderUI(<Harness onSend={() => {}} box={box} />);
    await editor();
    await act(async () => {
      box.current!.focus('internal');
      await new Promise((r) => setTimeout(r, 10));
    });
    expect(screen.getByTestId('reply-box').getAttribute('data-internal')).toBe('true');
    expect(document.querySelector('.atum-editor')!.getAttribute('data-internal')).toBe('true');
    expect((await editor()).getAttribute('aria-label')).toBe('Internal note (staff only)');
    expect(screen.getByRole('button', { name: 'Add internal note' })).toBeTruthy();
  });

  it('falls back to plain text on request, and sends text only', async () => {
    const onSend = vi.fn();
    renderUI(<Harness onSend={onSend} />);
    await editor();
    fireEvent.click(screen.getByRole('button', { name: 'Plain text' }));
    const area = screen.getByTestId('reply-plain').querySelector('textarea') ?? screen.getByRole('textbox', { name: 'Reply' });
    fireEvent.change(area, { target: { value: 'just text' } });
    fireEvent.keyDown(area, { key: 'Enter', ctrlKey: true });
    expect(onSend).toHaveBeenCalledWith({ html: '', text: 'just text' }, 'public');
  });
});

describe('commentBody and appendText', () => {
  it('sends markup only when there is some', () => {
    expect(commentBody({ html: '', text: ' hi ' })).toEqual({ content: 'hi' });
    expect(commentBody({ html: '<p>hi</p>', text: 'hi' })).toEqual({ content: 'hi', content_html: '<p>hi</p>' });
  });
  it('appends escaped paragraphs to rich drafts and plain text to plain ones', () => {
    expect(appendText({ html: '<p>a</p>', text: 'a' }, 'x < y\n\nz')).toEqual({ html: '<p>a</p><p>x &lt; y</p><p>z</p>', text: 'a\n\nx < y\n\nz' });
    expect(appendText({ html: '', text: 'plain' }, 'more')).toEqual({ html: '', text: 'plain\n\nmore' });
  });
});
