import { Alert, Button, Group, Stack, Text, Title } from '@mantine/core';
import { Link, useParams } from '@tanstack/react-router';
import { useState } from 'react';
import { useTranslation } from 'react-i18next';
import { ConfirmButton } from '../../components/ConfirmButton';
import { CsatWidget } from '../../components/CsatWidget';
import { IconLock } from '../../components/Icons';
import { AttachmentList } from '../../components/AttachmentList';
import { commentBody, ReplyBox, type Draft } from '../../components/ReplyBox';
import { ErrorState, ListSkeleton } from '../../components/States';
import { Thread } from '../../components/Thread';
import { Description, TicketHeader } from '../../components/TicketHeader';
import { useAddComment, useChangeStatus } from '../../lib/actions';
import { useComments, useTicket } from '../../lib/queries';
import { useUser } from '../../lib/services';

/** PortalTicket is the customer's view: the public thread, a reply box, the survey once resolved. */
export function PortalTicket() {
  const { t } = useTranslation();
  const { ticketId } = useParams({ from: '/portal/tickets/$ticketId' });
  const user = useUser();
  const ticket = useTicket(ticketId);
  const comments = useComments(ticketId);
  const add = useAddComment(ticketId);
  const status = useChangeStatus(ticketId);
  const [draft, setDraft] = useState<Draft>({ html: '', text: '' });

  if (ticket.isPending) return <ListSkeleton rows={4} />;
  if (ticket.isError) return <ErrorState error={ticket.error} onRetry={() => void ticket.refetch()} />;
  const tk = ticket.data;
  const readOnly = tk.status === 'closed' || tk.status === 'cancelled';
  const send = () => add.mutate({ ...commentBody(draft), is_internal: false }, { onSuccess: () => setDraft({ html: '', text: '' }) });

  return (
    <Stack gap="lg" data-testid="portal-ticket" data-status={tk.status}>
      <Button component={Link} to="/portal" variant="subtle" color="gray" w="fit-content" px={0}>← {t('portal.myTickets')}</Button>
      <TicketHeader ticket={tk} />
      {tk.allowed_transitions.length > 0 && (
        <Group gap="sm">
          {tk.allowed_transitions.includes('closed') && (
            <Button variant="light" onClick={() => status.mutate({ status: 'closed' })} loading={status.isPending}>{t('portal.closeTicket')}</Button>
          )}
          {tk.allowed_transitions.includes('cancelled') && (
            <ConfirmButton variant="subtle" color="red" label={t('portal.cancelTicket')} title={t('portal.cancelTitle')}
              body={t('portal.cancelBody')} confirmLabel={t('portal.cancelConfirm')} loading={status.isPending}
              onConfirm={() => status.mutate({ status: 'cancelled' })} />
          )}
        </Group>
      )}
      <CsatWidget ticketId={tk.id} enabled={tk.status === 'resolved' || tk.status === 'closed'} />
      <Description ticket={tk} />
      <AttachmentList ticketId={tk.id} canUpload={!readOnly} />
      <Title order={2} size="h4">{t('thread.title')}</Title>
      {comments.isPending ? <ListSkeleton rows={2} /> : comments.isError ? (
        <ErrorState error={comments.error} onRetry={() => void comments.refetch()} />
      ) : comments.data.length === 0 ? (
        <Text c="dimmed" size="sm">{t('thread.emptyPortal')}</Text>
      ) : (
        <Thread comments={comments.data} meId={user.id} />
      )}
      {readOnly ? (
        <Alert color="gray" icon={<IconLock />} data-testid="read-only">{t('ticket.readOnly', { status: t(`status.${tk.status}`) })}</Alert>
      ) : (
        <>
          {tk.status === 'resolved' && <Text size="sm" c="dimmed">{t('portal.reopenHint')}</Text>}
          <ReplyBox draft={draft} onDraft={setDraft} mode="public" onSend={send} busy={add.isPending} />
        </>
      )}
    </Stack>
  );
}
