import { Button, Group, SegmentedControl, Stack, Text, Textarea } from '@mantine/core';
import { Component, forwardRef, lazy, Suspense, useImperativeHandle, useRef, useState, type ReactNode } from 'react';
import { useTranslation } from 'react-i18next';
import type { Draft, RichEditorHandle } from './RichEditor';

export type { Draft } from './RichEditor';
export type ReplyMode = 'public' | 'internal';

export interface ReplyBoxHandle {
  focus(mode?: ReplyMode): void;
}

interface Props {
  draft: Draft;
  onDraft: (d: Draft) => void;
  mode: ReplyMode;
  onMode?: (m: ReplyMode) => void; // absent: public replies only (portal)
  onSend: () => void;
  busy: boolean;
  /** tools: extra controls beside the send button (the canned responses picker). */
  tools?: ReactNode;
}

// The editor is a chunk of its own: fetched when a reply box first shows.
const RichEditor = lazy(() => import('./RichEditor'));

/** commentBody is what the comments API takes from a draft: the text always, the markup when there is some. */
export function commentBody(d: Draft): { content: string; content_html?: string } {
  return d.html ? { content: d.text.trim(), content_html: d.html } : { content: d.text.trim() };
}

/** EditorBoundary falls back to plain text when the editor's chunk cannot load. */
class EditorBoundary extends Component<{ fallback: ReactNode; children: ReactNode }, { failed: boolean }> {
  state = { failed: false };
  static getDerivedStateFromError() {
    return { failed: true };
  }
  render() {
    return this.state.failed ? this.props.fallback : this.props.children;
  }
}

/**
 * ReplyBox is the composer: rich text (bold, italic, lists, links, code),
 * with a plain textarea while the editor loads or if it cannot. The draft
 * lives in the parent, so live updates and tab switches never lose it.
 */
export const ReplyBox = forwardRef<ReplyBoxHandle, Props>(function ReplyBox({ draft, onDraft, mode, onMode, onSend, busy, tools }, ref) {
  const { t } = useTranslation();
  const area = useRef<HTMLTextAreaElement>(null);
  const rich = useRef<RichEditorHandle>(null);
  const [plainOnly, setPlainOnly] = useState(false);
  useImperativeHandle(ref, () => ({
    focus(m) {
      if (m && onMode) onMode(m);
      // After the mode's re-render, so the label matches what is focused.
      setTimeout(() => (rich.current ? rich.current.focus() : area.current?.focus()), 0);
    },
  }));
  const internal = mode === 'internal';
  const label = internal ? t('reply.internalLabel') : t('reply.publicLabel');
  const empty = !draft.text.trim();
  const send = () => {
    if (!empty && !busy) onSend();
  };
  const plain = (
    <Textarea ref={area} value={draft.text} autosize minRows={4} maxRows={14} label={label} data-testid="reply-plain"
      onChange={(e) => onDraft({ html: '', text: e.currentTarget.value })}
      onKeyDown={(e) => {
        if (e.key === 'Enter' && (e.ctrlKey || e.metaKey)) send();
      }} />
  );
  // A draft typed as plain text stays plain (its markup would be lost).
  const usePlain = plainOnly || (!!draft.text && !draft.html);
  return (
    <Stack gap="xs" className={internal ? 'atum-comment' : undefined} data-internal={internal} p={internal ? 'sm' : 0} data-testid="reply-box">
      {onMode && (
        <SegmentedControl value={mode} onChange={(v) => onMode(v as ReplyMode)} w="fit-content" size="xs" aria-label={t('reply.mode')}
          data={[{ value: 'public', label: t('reply.public') }, { value: 'internal', label: t('reply.internal') }]} />
      )}
      <EditorBoundary fallback={plain}>
        <Suspense fallback={plain}>
          {usePlain ? plain : (
            <Stack gap={4}>
              <Text size="sm" fw={500} component="span">{label}</Text>
              <RichEditor ref={rich} value={draft} onChange={onDraft} onSubmit={send} label={label} internal={internal}
                placeholder={internal ? t('reply.internalPlaceholder') : t('reply.placeholder')} />
            </Stack>
          )}
        </Suspense>
      </EditorBoundary>
      {internal && <Text size="xs" c="var(--atum-warn)">{t('reply.internalHint')}</Text>}
      <Group justify="space-between" gap="xs">
        <Group gap="xs">
          {tools}
          {!usePlain && (
            <Button variant="subtle" color="gray" size="xs" onClick={() => setPlainOnly(true)}>{t('reply.plainText')}</Button>
          )}
          {plainOnly && !draft.text && (
            <Button variant="subtle" color="gray" size="xs" onClick={() => setPlainOnly(false)}>{t('reply.richText')}</Button>
          )}
        </Group>
        <Button onClick={send} loading={busy} disabled={empty} color={internal ? 'orange' : undefined}>
          {internal ? t('reply.addNote') : t('reply.send')}
        </Button>
      </Group>
    </Stack>
  );
});

const escapeHtml = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');

/** appendText adds plain text (a canned response) to a draft, as paragraphs when the draft is rich. */
export function appendText(d: Draft, text: string): Draft {
  const joined = d.text.trim() ? `${d.text.trimEnd()}\n\n${text}` : text;
  if (d.text.trim() && !d.html) return { html: '', text: joined };
  const paras = text.split(/\n{2,}/).map((p) => `<p>${escapeHtml(p).replace(/\n/g, '<br>')}</p>`).join('');
  return { html: (d.html || '') + paras, text: joined };
}
