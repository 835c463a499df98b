import { ActionIcon, Box, Button, FileButton, Group, Progress, Stack, Text } from '@mantine/core';
import { useCallback, useRef, useState, type DragEvent } from 'react';
import { useTranslation } from 'react-i18next';
import type { Attachment } from '../api/client';
import { ApiError } from '../api/client';
import { useServices } from '../lib/services';
import { formatBytes, uploadFile } from '../lib/upload';
import { IconFile, IconUpload } from './Icons';

export interface UploadItem {
  key: string;
  file: File;
  progress: number;
  status: 'uploading' | 'done' | 'error';
  attachment?: Attachment;
  error?: string;
}

/**
 * useUploads uploads files as soon as they are added and tracks their
 * progress: by default as unclaimed uploads (listed in attachment_ids when
 * filing), or straight onto a ticket with url.
 */
export function useUploads(opts: { url?: string; onDone?: (a: Attachment, key: string) => void } = {}) {
  const { session } = useServices();
  const { t } = useTranslation();
  const [items, setItems] = useState<UploadItem[]>([]);
  const seq = useRef(0);
  const onDone = useRef(opts.onDone);
  onDone.current = opts.onDone;
  const update = (key: string, patch: Partial<UploadItem>) =>
    setItems((all) => all.map((it) => (it.key === key ? { ...it, ...patch } : it)));

  const add = useCallback(async (files: File[]) => {
    const token = await session.accessToken();
    for (const file of files) {
      const key = `${++seq.current}`;
      setItems((all) => [...all, { key, file, progress: 0, status: 'uploading' }]);
      uploadFile(file, token, (p) => update(key, { progress: p }), undefined, opts.url)
        .then((attachment) => {
          update(key, { status: 'done', attachment, progress: 1 });
          onDone.current?.(attachment, key);
        })
        .catch((err: unknown) => update(key, {
          status: 'error',
          error: err instanceof ApiError && err.status === 413 ? t('upload.tooLarge') : err instanceof ApiError ? err.message : t('error.network'),
        }));
    }
  }, [session, t, opts.url]);

  const remove = (key: string) => setItems((all) => all.filter((it) => it.key !== key));
  const ids = items.filter((it) => it.status === 'done').map((it) => it.attachment!.id);
  const busy = items.some((it) => it.status === 'uploading');
  return { items, add, remove, ids, busy, reset: () => setItems([]) };
}

export function FileDrop({ uploads, compact }: { uploads: ReturnType<typeof useUploads>; compact?: boolean }) {
  const { t, i18n } = useTranslation();
  const [active, setActive] = useState(false);
  const onDrop = (e: DragEvent) => {
    e.preventDefault();
    setActive(false);
    if (e.dataTransfer.files.length) void uploads.add(Array.from(e.dataTransfer.files));
  };
  return (
    <Stack gap="xs">
      <Box className="atum-drop" data-active={active} p={compact ? 'xs' : 'lg'} data-testid="file-drop"
        onDragOver={(e) => { e.preventDefault(); setActive(true); }}
        onDragLeave={() => setActive(false)} onDrop={onDrop}>
        <Group justify="center" gap="sm">
          <IconUpload size={22} />
          <Text size="sm" c="dimmed">{t('upload.drop')}</Text>
          <FileButton onChange={(files) => void uploads.add(files)} multiple>
            {(props) => <Button {...props} size="xs" variant="light">{t('upload.browse')}</Button>}
          </FileButton>
        </Group>
      </Box>
      {uploads.items.map((it) => (
        <Group key={it.key} gap="sm" wrap="nowrap" data-testid="upload-item" data-status={it.status}>
          <IconFile />
          <Stack gap={2} style={{ flex: 1, minWidth: 0 }}>
            <Group justify="space-between" wrap="nowrap">
              <Text size="sm" truncate>{it.file.name}</Text>
              <Text size="xs" c={it.status === 'error' ? 'var(--atum-danger)' : 'dimmed'}>
                {it.status === 'error' ? it.error : it.status === 'done' ? formatBytes(it.file.size, i18n.language) : `${Math.round(it.progress * 100)} %`}
              </Text>
            </Group>
            <Progress value={it.progress * 100} size="xs" color={it.status === 'error' ? 'red' : it.status === 'done' ? 'green' : 'gold'}
              aria-label={t('upload.progress', { name: it.file.name })} />
          </Stack>
          <ActionIcon variant="subtle" color="gray" onClick={() => uploads.remove(it.key)} aria-label={t('upload.remove', { name: it.file.name })}>
            ×
          </ActionIcon>
        </Group>
      ))}
    </Stack>
  );
}
