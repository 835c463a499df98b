import { Button, Group, SegmentedControl, Stack, Textarea } from '@mantine/core';
import { forwardRef, useImperativeHandle, useRef } from 'react';
import { useTranslation } from 'react-i18next';

export type ReplyMode = 'public' | 'internal';

export interface ReplyBoxHandle {
  focus(mode?: ReplyMode): void;
}

interface Props {
  draft: string;
  onDraft: (v: string) => void;
  mode: ReplyMode;
  onMode?: (m: ReplyMode) => void; // absent: public replies only (portal)
  onSend: () => void;
  busy: boolean;
}

/** ReplyBox is the composer; the draft lives in the parent so live updates never lose it. */
export const ReplyBox = forwardRef<ReplyBoxHandle, Props>(function ReplyBox({ draft, onDraft, mode, onMode, onSend, busy }, ref) {
  const { t } = useTranslation();
  const area = useRef<HTMLTextAreaElement>(null);
  useImperativeHandle(ref, () => ({
    focus(m) {
      if (m && onMode) onMode(m);
      area.current?.focus();
    },
  }));
  const internal = mode === 'internal';
  return (
    <Stack gap="xs" className={internal ? 'atum-comment' : undefined} data-internal={internal} p={internal ? 'sm' : 0}>
      {onMode && (
        <SegmentedControl value={mode} onChange={(v) => onMode(v as ReplyMode)} w="fit-content" size="xs"
          data={[{ value: 'public', label: t('reply.public') }, { value: 'internal', label: t('reply.internal') }]} />
      )}
      <Textarea ref={area} value={draft} onChange={(e) => onDraft(e.currentTarget.value)} autosize minRows={3} maxRows={14}
        label={internal ? t('reply.internalLabel') : t('reply.publicLabel')}
        description={internal ? t('reply.internalHint') : undefined}
        onKeyDown={(e) => {
          if (e.key === 'Enter' && (e.ctrlKey || e.metaKey) && draft.trim()) onSend();
        }} />
      <Group justify="flex-end">
        <Button onClick={onSend} loading={busy} disabled={!draft.trim()} color={internal ? 'orange' : undefined}>
          {internal ? t('reply.addNote') : t('reply.send')}
        </Button>
      </Group>
    </Stack>
  );
});
