import { Badge, Group, Paper, Skeleton, Stack, Text, Title, UnstyledButton } from '@mantine/core';
import { notifications } from '@mantine/notifications';
import { useQueryClient } from '@tanstack/react-query';
import { useState } from 'react';
import { useTranslation } from 'react-i18next';
import { ApiError, type TicketAttachment } from '../api/client';
import { keys, useAttachments } from '../lib/queries';
import { useApi } from '../lib/services';
import { downloadAttachment, formatBytes } from '../lib/upload';
import { IconFile, IconLock } from './Icons';
import { FileDrop, useUploads } from './FileDrop';
import { ErrorState } from './States';
import { RelativeTime } from './Time';

/** AttachmentItems lists files; a click downloads one (the API needs the bearer token, so not a plain link). */
export function AttachmentItems({ items, onDownload, busyId }: {
  items: TicketAttachment[];
  onDownload: (a: TicketAttachment) => void;
  busyId?: string | null;
}) {
  const { t, i18n } = useTranslation();
  if (items.length === 0) return <Text size="sm" c="dimmed" data-testid="attachments-empty">{t('attachments.empty')}</Text>;
  return (
    <Stack gap={6} component="ul" m={0} p={0} style={{ listStyle: 'none' }} data-testid="attachments">
      {items.map((a) => (
        <li key={a.id} data-testid="attachment" data-internal={a.is_internal}>
          <Group gap="sm" wrap="nowrap" className="atum-file" data-internal={a.is_internal}>
            <IconFile />
            <Stack gap={0} style={{ flex: 1, minWidth: 0 }}>
              <UnstyledButton onClick={() => onDownload(a)} disabled={busyId === a.id} className="atum-file-name"
                aria-label={t('attachments.download', { name: a.filename })}>
                <Text size="sm" truncate c="var(--atum-accent-text)">{a.filename}</Text>
              </UnstyledButton>
              <Text size="xs" c="dimmed">
                {formatBytes(a.size_bytes, i18n.language)} · <RelativeTime iso={a.created_at} />
              </Text>
            </Stack>
            {a.is_internal && (
              <Badge size="xs" color="orange" variant="filled" leftSection={<IconLock size={10} />}>{t('thread.internal')}</Badge>
            )}
          </Group>
        </li>
      ))}
    </Stack>
  );
}

/** AttachmentList is a ticket's files panel (portal and desk); files can be added while the ticket is open. */
export function AttachmentList({ ticketId, canUpload }: { ticketId: string; canUpload: boolean }) {
  const { t } = useTranslation();
  const api = useApi();
  const qc = useQueryClient();
  const files = useAttachments(ticketId);
  // Added files show in the list once stored: their progress rows go.
  const uploads = useUploads({
    url: `/api/v1/tickets/${ticketId}/attachments`,
    onDone: (_a, key) => {
      uploads.remove(key);
      void qc.invalidateQueries({ queryKey: keys.attachments(ticketId) });
    },
  });
  const [busy, setBusy] = useState<string | null>(null);
  const download = (a: TicketAttachment) => {
    setBusy(a.id);
    downloadAttachment(api, a)
      .catch((e: unknown) => notifications.show({ color: 'red', title: t('attachments.failed'), message: e instanceof ApiError ? e.message : t('error.network') }))
      .finally(() => setBusy(null));
  };
  return (
    <Paper p="md" className="atum-panel" data-testid="attachments-panel">
      <Stack gap="xs">
        <Title order={2} size="h5">{t('attachments.title')}{files.data?.length ? ` (${files.data.length})` : ''}</Title>
        {files.isPending ? <Skeleton height={32} /> : files.isError ? (
          <ErrorState error={files.error} onRetry={() => void files.refetch()} />
        ) : (
          <AttachmentItems items={files.data} onDownload={download} busyId={busy} />
        )}
        {canUpload && <FileDrop uploads={uploads} compact />}
      </Stack>
    </Paper>
  );
}
