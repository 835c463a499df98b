import { Group, Paper, SimpleGrid, Stack, Table, Text, Title } from '@mantine/core';
import { Link, useNavigate } from '@tanstack/react-router';
import { useTranslation } from 'react-i18next';
import type { Ticket } from '../../api/client';
import type { TicketListSearch } from '../../router';
import { PriorityBadge, StatusBadge } from '../../components/Badges';
import { ticketAtRisk } from '../../components/Sla';
import { EmptyState, ErrorState, ListSkeleton } from '../../components/States';
import { RelativeTime, useNow } from '../../components/Time';
import { useTickets } from '../../lib/queries';
import { useUser } from '../../lib/services';

const OPEN = ['new', 'accepted', 'assigned', 'in_progress', 'waiting_customer'] as const;

function Stat({ label, value, search, testId }: { label: string; value: string; search: TicketListSearch; testId: string }) {
  return (
    <Link to="/desk/tickets" search={search} style={{ textDecoration: 'none', color: 'inherit' }}>
      <Paper p="lg" className="atum-panel" data-testid={testId}>
        <Text size="xs" c="dimmed" tt="uppercase" fw={600}>{label}</Text>
        <Text fz={34} fw={700} ff="heading" c="var(--atum-accent-text)">{value}</Text>
      </Paper>
    </Link>
  );
}

/** Dashboard: queue counts, SLA at risk and the agent's own work. */
export function Dashboard() {
  const { t } = useTranslation();
  const user = useUser();
  const now = useNow();
  const navigate = useNavigate();
  const open = useTickets({ status: [...OPEN], limit: 200, order: 'oldest' });
  if (open.isPending) return <ListSkeleton />;
  if (open.isError) return <ErrorState error={open.error} onRetry={() => void open.refetch()} />;
  const items = open.data.items;
  const more = open.data.next_cursor ? '+' : '';
  const count = (f: (t: Ticket) => boolean) => `${items.filter(f).length}${more}`;
  const mine = items.filter((tk) => tk.assigned_to === user.id);
  return (
    <Stack gap="lg">
      <Title order={1} size="h2">{t('desk.dashboard')}</Title>
      <SimpleGrid cols={{ base: 2, md: 4 }}>
        <Stat testId="stat-new" label={t('dashboard.new')} value={count((tk) => tk.status === 'new')}
          search={{ queue: 'new' }} />
        <Stat testId="stat-unassigned" label={t('dashboard.unassigned')} value={count((tk) => !tk.assigned_to && tk.status !== 'new')}
          search={{ queue: 'unassigned' }} />
        <Stat testId="stat-mine" label={t('dashboard.mine')} value={`${mine.length}${more}`} search={{ queue: 'mine' }} />
        <Stat testId="stat-risk" label={t('dashboard.atRisk')} value={count((tk) => ticketAtRisk(tk, now))} search={{}} />
      </SimpleGrid>
      <Title order={2} size="h3">{t('dashboard.myWork')}</Title>
      {mine.length === 0 ? <EmptyState title={t('dashboard.noWork')} description={t('dashboard.noWorkBody')} /> : (
        <Paper className="atum-panel" p={0}>
          <Table highlightOnHover verticalSpacing="sm">
            <Table.Thead>
              <Table.Tr>
                <Table.Th>{t('ticket.number')}</Table.Th>
                <Table.Th>{t('ticket.subject')}</Table.Th>
                <Table.Th>{t('ticket.status')}</Table.Th>
                <Table.Th>{t('ticket.priority')}</Table.Th>
                <Table.Th>{t('ticket.updated')}</Table.Th>
              </Table.Tr>
            </Table.Thead>
            <Table.Tbody>
              {mine.map((tk) => (
                <Table.Tr key={tk.id} className="atum-row" onClick={() => void navigate({ to: '/desk/tickets/$ticketId', params: { ticketId: tk.id } })}>
                  <Table.Td c="dimmed">#{tk.number}</Table.Td>
                  <Table.Td><Group gap="xs"><Text size="sm">{tk.subject}</Text>{ticketAtRisk(tk, now) && <Text size="xs" c="var(--atum-warn)">{t('sla.atRisk')}</Text>}</Group></Table.Td>
                  <Table.Td><StatusBadge status={tk.status} /></Table.Td>
                  <Table.Td><PriorityBadge priority={tk.priority} /></Table.Td>
                  <Table.Td c="dimmed"><RelativeTime iso={tk.updated_at} /></Table.Td>
                </Table.Tr>
              ))}
            </Table.Tbody>
          </Table>
        </Paper>
      )}
    </Stack>
  );
}
