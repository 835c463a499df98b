import { Button, Group, Paper, Rating, Stack, Text, Textarea, Title } from '@mantine/core';
import { notifications } from '@mantine/notifications';
import { useMutation, useQueryClient } from '@tanstack/react-query';
import { useState } from 'react';
import { useTranslation } from 'react-i18next';
import { ApiError, unwrap } from '../api/client';
import { keys, useCsat } from '../lib/queries';
import { useApi } from '../lib/services';

/** CsatWidget asks the requester to rate a resolved or closed ticket, once. */
export function CsatWidget({ ticketId, enabled }: { ticketId: string; enabled: boolean }) {
  const { t } = useTranslation();
  const api = useApi();
  const qc = useQueryClient();
  const csat = useCsat(ticketId, enabled);
  const [rating, setRating] = useState(0);
  const [comment, setComment] = useState('');
  const submit = useMutation({
    mutationFn: () => unwrap(api.POST('/api/v1/tickets/{ticketID}/csat', {
      params: { path: { ticketID: ticketId } }, body: { rating, comment: comment.trim() || null },
    })),
    onSuccess: (v) => {
      qc.setQueryData(keys.csat(ticketId), v);
      notifications.show({ color: 'green', message: t('csat.thanks') });
    },
    onError: (e) => notifications.show({ color: 'red', message: e instanceof ApiError ? e.message : t('error.network') }),
  });
  if (!enabled || !csat.data || csat.data.state === 'not_available') return null;
  const s = csat.data;
  return (
    <Paper p="lg" className="atum-panel" id="csat" data-testid="csat" data-state={s.state}>
      {s.state === 'responded' ? (
        <Stack gap={4}>
          <Title order={2} size="h4">{t('csat.doneTitle')}</Title>
          <Group gap="xs">
            <Rating value={s.survey?.rating ?? 0} readOnly aria-label={t('csat.yourRating')} />
            <Text size="sm" c="dimmed">{t('csat.rated', { rating: s.survey?.rating ?? 0 })}</Text>
          </Group>
          {s.survey?.comment && <Text size="sm" className="atum-thread-text">{s.survey.comment}</Text>}
        </Stack>
      ) : s.can_respond ? (
        <Stack gap="sm">
          <Title order={2} size="h4">{t('csat.title')}</Title>
          <Text size="sm" c="dimmed">{t('csat.prompt')}</Text>
          <Rating value={rating} onChange={setRating} size="lg" aria-label={t('csat.yourRating')} />
          <Textarea label={t('csat.comment')} value={comment} onChange={(e) => setComment(e.currentTarget.value)} autosize minRows={2} />
          <Group>
            <Button onClick={() => submit.mutate()} disabled={rating < 1} loading={submit.isPending}>{t('csat.submit')}</Button>
          </Group>
        </Stack>
      ) : (
        <Text size="sm" c="dimmed">{t('csat.pending')}</Text>
      )}
    </Paper>
  );
}
