import { Group, Stack, Text, Title } from '@mantine/core';
import { useTranslation } from 'react-i18next';
import type { Ticket } from '../api/client';
import { useServiceList } from '../lib/queries';
import { PriorityBadge, StatusBadge } from './Badges';
import { RelativeTime } from './Time';

export function TicketHeader({ ticket }: { ticket: Ticket }) {
  const { t } = useTranslation();
  return (
    <Stack gap={6}>
      <Text size="sm" c="dimmed">{t('ticket.numbered', { number: ticket.number })}</Text>
      <Title order={1} size="h2" style={{ overflowWrap: 'anywhere' }} data-testid="ticket-subject">{ticket.subject}</Title>
      <Group gap="xs">
        <StatusBadge status={ticket.status} />
        <PriorityBadge priority={ticket.priority} />
        {ticket.service_id && <ServiceName id={ticket.service_id} />}
        <Text size="xs" c="dimmed">{t('ticket.opened')} <RelativeTime iso={ticket.created_at} /></Text>
      </Group>
    </Stack>
  );
}

export function Description({ ticket }: { ticket: Ticket }) {
  const { t } = useTranslation();
  return (
    <Stack gap={4} className="atum-panel" p="md">
      <Text size="xs" c="dimmed" tt="uppercase" fw={600}>{t('ticket.description')}</Text>
      <Text size="sm" className="atum-thread-text" data-testid="ticket-description">{ticket.description}</Text>
    </Stack>
  );
}

function ServiceName({ id }: { id: string }) {
  const services = useServiceList();
  const name = services.data?.find((sv) => sv.id === id)?.name;
  return name ? <span className="atum-badge" data-testid="ticket-service">{name}</span> : null;
}
