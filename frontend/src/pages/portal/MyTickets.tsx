import { Button, Card, Group, Stack, Table, Text, Title } from '@mantine/core';
import { Link, useNavigate } from '@tanstack/react-router';
import { useTranslation } from 'react-i18next';
import { StatusBadge } from '../../components/Badges';
import { IconPlus } from '../../components/Icons';
import { EmptyState, ErrorState, ListSkeleton } from '../../components/States';
import { RelativeTime } from '../../components/Time';
import { useTickets } from '../../lib/queries';
import { useUser } from '../../lib/services';

/** MyTickets lists the tickets the signed-in user filed: status and last update. */
export function MyTickets() {
  const { t } = useTranslation();
  const user = useUser();
  const navigate = useNavigate();
  const list = useTickets({ requester_id: user.id, limit: 100 });
  const items = list.data?.items ?? [];
  return (
    <Stack gap="lg">
      <Group justify="space-between">
        <Title order={1} size="h2">{t('portal.myTickets')}</Title>
        <Button component={Link} to="/portal/new" leftSection={<IconPlus />}>{t('portal.newTicket')}</Button>
      </Group>
      {list.isPending ? <ListSkeleton /> : list.isError ? <ErrorState error={list.error} onRetry={() => void list.refetch()} /> :
        items.length === 0 ? (
          <EmptyState title={t('portal.emptyTitle')} description={t('portal.emptyBody')}
            action={<Button mt="md" component={Link} to="/portal/new">{t('portal.newTicket')}</Button>} />
        ) : (
          <>
            {/* Cards on phones, a table from the sm breakpoint. */}
            <Stack hiddenFrom="sm" gap="sm">
              {items.map((tk) => (
                <Link key={tk.id} to="/portal/tickets/$ticketId" params={{ ticketId: tk.id }} style={{ color: 'inherit', textDecoration: 'none' }}>
                <Card className="atum-panel" padding="md">
                  <Group justify="space-between" wrap="nowrap">
                    <Text fw={600} truncate>{tk.subject}</Text>
                    <StatusBadge status={tk.status} />
                  </Group>
                  <Text size="xs" c="dimmed">#{tk.number} · <RelativeTime iso={tk.updated_at} /></Text>
                </Card>
                </Link>
              ))}
            </Stack>
            <Table visibleFrom="sm" highlightOnHover verticalSpacing="sm" data-testid="my-tickets">
              <Table.Thead>
                <Table.Tr>
                  <Table.Th w={90}>{t('ticket.number')}</Table.Th>
                  <Table.Th>{t('ticket.subject')}</Table.Th>
                  <Table.Th w={170}>{t('ticket.status')}</Table.Th>
                  <Table.Th w={170}>{t('ticket.updated')}</Table.Th>
                </Table.Tr>
              </Table.Thead>
              <Table.Tbody>
                {items.map((tk) => (
                  <Table.Tr key={tk.id} className="atum-row" data-ticket-id={tk.id}
                    onClick={() => void navigate({ to: '/portal/tickets/$ticketId', params: { ticketId: tk.id } })}>
                    <Table.Td c="dimmed">#{tk.number}</Table.Td>
                    <Table.Td>
                      <Link to="/portal/tickets/$ticketId" params={{ ticketId: tk.id }} style={{ color: 'inherit', textDecoration: 'none' }}>
                        {tk.subject}
                      </Link>
                    </Table.Td>
                    <Table.Td><StatusBadge status={tk.status} /></Table.Td>
                    <Table.Td c="dimmed"><RelativeTime iso={tk.updated_at} /></Table.Td>
                  </Table.Tr>
                ))}
              </Table.Tbody>
            </Table>
          </>
        )}
    </Stack>
  );
}
