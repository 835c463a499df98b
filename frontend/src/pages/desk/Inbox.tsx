import { Button, Group, Paper, Stack, Table, Text, Title } from '@mantine/core';
import { notifications } from '@mantine/notifications';
import { useQueryClient } from '@tanstack/react-query';
import { Link } from '@tanstack/react-router';
import { useState } from 'react';
import { useTranslation } from 'react-i18next';
import { ApiError, unwrap, type Ticket } from '../../api/client';
import { AssigneeSelect } from '../../components/AssigneeSelect';
import { PriorityBadge } from '../../components/Badges';
import { EmptyState, ErrorState, ForbiddenPanel, ListSkeleton } from '../../components/States';
import { RelativeTime } from '../../components/Time';
import { keys, useTickets } from '../../lib/queries';
import { useApi, useUser } from '../../lib/services';
import { canTriage } from './DeskLayout';

/** Inbox: NEW tickets waiting for a manager to accept and assign them. */
export function Inbox() {
  const { t } = useTranslation();
  const user = useUser();
  const list = useTickets({ queue: 'new', order: 'oldest', limit: 100 });
  if (!canTriage(user.role)) return <ForbiddenPanel />;
  return (
    <Stack gap="lg">
      <Stack gap={2}>
        <Title order={1} size="h2">{t('desk.inbox')}</Title>
        <Text c="dimmed" size="sm">{t('inbox.subtitle')}</Text>
      </Stack>
      {list.isPending ? <ListSkeleton /> : list.isError ? <ErrorState error={list.error} onRetry={() => void list.refetch()} /> :
        list.data.items.length === 0 ? <EmptyState title={t('inbox.emptyTitle')} description={t('inbox.emptyBody')} /> : (
          <Paper className="atum-panel" p={0}>
            <Table verticalSpacing="sm" data-testid="inbox">
              <Table.Thead>
                <Table.Tr>
                  <Table.Th>{t('ticket.number')}</Table.Th>
                  <Table.Th>{t('ticket.subject')}</Table.Th>
                  <Table.Th>{t('ticket.priority')}</Table.Th>
                  <Table.Th>{t('ticket.created')}</Table.Th>
                  <Table.Th>{t('inbox.actions')}</Table.Th>
                </Table.Tr>
              </Table.Thead>
              <Table.Tbody>
                {list.data.items.map((tk) => <InboxRow key={tk.id} ticket={tk} />)}
              </Table.Tbody>
            </Table>
          </Paper>
        )}
    </Stack>
  );
}

function InboxRow({ ticket }: { ticket: Ticket }) {
  const { t } = useTranslation();
  const api = useApi();
  const qc = useQueryClient();
  const [busy, setBusy] = useState(false);

  async function run(assignee?: string) {
    setBusy(true);
    try {
      const path = { params: { path: { ticketID: ticket.id } } };
      let tk = await unwrap(api.POST('/api/v1/tickets/{ticketID}/accept', path));
      if (assignee) tk = await unwrap(api.POST('/api/v1/tickets/{ticketID}/assign', { ...path, body: { assigned_to: assignee } }));
      qc.setQueryData(keys.ticket(ticket.id), tk);
      notifications.show({ color: 'green', message: assignee ? t('inbox.acceptedAssigned', { number: ticket.number }) : t('inbox.accepted', { number: ticket.number }) });
    } catch (e) {
      notifications.show({ color: 'red', title: t('error.actionFailed'), message: e instanceof ApiError ? e.message : t('error.network') });
    } finally {
      setBusy(false);
      void qc.invalidateQueries({ queryKey: keys.tickets });
    }
  }

  return (
    <Table.Tr data-ticket-id={ticket.id}>
      <Table.Td c="dimmed">#{ticket.number}</Table.Td>
      <Table.Td>
        <Link to="/desk/tickets/$ticketId" params={{ ticketId: ticket.id }} style={{ color: 'inherit' }}>{ticket.subject}</Link>
        {ticket.ai_suggested_priority && ticket.ai_suggested_priority !== ticket.priority && (
          <Text size="xs" c="dimmed">{t('ai.suggestsPriority', { priority: t(`priority.${ticket.ai_suggested_priority}`) })}</Text>
        )}
      </Table.Td>
      <Table.Td><PriorityBadge priority={ticket.priority} /></Table.Td>
      <Table.Td c="dimmed"><RelativeTime iso={ticket.created_at} /></Table.Td>
      <Table.Td>
        <Group gap="xs" wrap="nowrap">
          <Button size="xs" onClick={() => void run()} loading={busy}>{t('inbox.accept')}</Button>
          <AssigneeSelect size="xs" value={null} onChange={(id) => void run(id)} disabled={busy}
            placeholder={t('inbox.acceptAssign')} />
        </Group>
      </Table.Td>
    </Table.Tr>
  );
}
