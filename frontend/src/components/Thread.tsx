import { Badge, Group, Paper, Stack, Text } from '@mantine/core';
import { useTranslation } from 'react-i18next';
import type { Comment } from '../api/client';
import { IconLock } from './Icons';
import { RichText } from './RichText';
import { RelativeTime } from './Time';

/**
 * Thread renders a ticket's comments oldest first. Plain text is rendered
 * as text, rich replies as their sanitised HTML (RichText). Internal notes
 * are striped and labelled so they cannot pass for replies the customer
 * sees.
 */
export function Thread({ comments, meId, names }: { comments: Comment[]; meId: string; names?: Map<string, string> }) {
  const { t } = useTranslation();
  return (
    <Stack gap="sm" data-testid="thread" aria-live="polite">
      {comments.map((c) => {
        const mine = c.author_id === meId;
        const name = mine ? t('thread.you') : c.author_name || (c.author_id && names?.get(c.author_id)) || t('thread.unknown');
        return (
          <Paper key={c.id} p="md" className="atum-comment" data-internal={c.is_internal} data-staff={c.author_is_staff}
            data-testid={c.is_internal ? 'internal-note' : 'comment'} id={`comment-${c.id}`}>
            <Group justify="space-between" mb={6} wrap="nowrap">
              <Group gap="xs" wrap="nowrap">
                <Text fw={600} size="sm">{name}</Text>
                {c.author_is_staff && !mine && <Badge size="xs" variant="light" color="gold">{t('thread.staff')}</Badge>}
                {c.is_internal && (
                  <Badge size="sm" color="orange" variant="filled" leftSection={<IconLock size={12} />}>{t('thread.internal')}</Badge>
                )}
              </Group>
              <Text size="xs" c="dimmed"><RelativeTime iso={c.created_at} /></Text>
            </Group>
            {c.content_html ? <RichText html={c.content_html} /> : <Text size="sm" className="atum-thread-text">{c.content}</Text>}
          </Paper>
        );
      })}
    </Stack>
  );
}
