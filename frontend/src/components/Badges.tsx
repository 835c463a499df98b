import { Badge } from '@mantine/core';
import { useTranslation } from 'react-i18next';
import type { Priority, TicketStatus } from '../api/client';

const statusColor: Record<TicketStatus, string> = {
  new: 'blue',
  accepted: 'cyan',
  assigned: 'violet',
  in_progress: 'gold',
  waiting_customer: 'orange',
  resolved: 'green',
  closed: 'gray',
  cancelled: 'red',
};

const priorityColor: Record<Priority, string> = { low: 'gray', medium: 'blue', high: 'orange', critical: 'red' };

export function StatusBadge({ status }: { status: TicketStatus }) {
  const { t } = useTranslation();
  return (
    <Badge color={statusColor[status]} variant="light" data-status={status} style={{ flexShrink: 0 }}>
      {t(`status.${status}`)}
    </Badge>
  );
}

export function PriorityBadge({ priority }: { priority: Priority }) {
  const { t } = useTranslation();
  return (
    <Badge color={priorityColor[priority]} variant="outline" data-priority={priority} style={{ flexShrink: 0 }}>
      {t(`priority.${priority}`)}
    </Badge>
  );
}
