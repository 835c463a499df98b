import { Button, Group, Paper, SegmentedControl, Stack, Table, Tabs, Text, Title } from '@mantine/core';
import { notifications } from '@mantine/notifications';
import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query';
import { Link, useNavigate, useSearch } from '@tanstack/react-router';
import { useState } from 'react';
import { useTranslation } from 'react-i18next';
import { ApiError, unwrap } from '../../api/client';
import type { components } from '../../api/schema';
import { ConfirmButton } from '../../components/ConfirmButton';
import { EmptyState, ErrorState, ForbiddenPanel, ListSkeleton } from '../../components/States';
import { RelativeTime } from '../../components/Time';
import { useApi, useUser } from '../../lib/services';
import { ADMIN_TABS, type AdminTab } from '../../router';
import { CannedResponses } from './admin/CannedResponses';
import { Mailboxes } from './admin/Mailboxes';
import { Organization } from './admin/Organization';
import { Services } from './admin/Services';
import { SlaPolicies } from './admin/SlaPolicies';
import { Users } from './admin/Users';

type Queue = components['parameters']['Queue'];
const QUEUES: Queue[] = ['dedup', 'triage', 'embed', 'sla', 'notify'];

/** Admin: the organisation's settings, users, services, SLA policies, mailboxes and failed pipeline tasks (admins only). */
export function Admin() {
  const { t } = useTranslation();
  const user = useUser();
  const { tab } = useSearch({ from: '/desk/admin' });
  const navigate = useNavigate({ from: '/desk/admin' });
  if (user.role !== 'admin') return <ForbiddenPanel />;
  const labels: Record<AdminTab, string> = {
    users: t('admin.users'), organization: t('admin.organization'), services: t('admin.services'), sla: t('admin.sla'),
    mailboxes: t('admin.mailboxes'), canned: t('admin.canned'), tasks: t('admin.tasks'),
  };
  return (
    <Stack gap="md">
      <Title order={1} size="h2">{t('admin.title')}</Title>
      <Tabs value={tab ?? 'users'} keepMounted={false}
        onChange={(v) => void navigate({ search: { tab: (v as AdminTab) ?? undefined }, replace: true })}>
        <Tabs.List mb="md">
          {ADMIN_TABS.map((k) => <Tabs.Tab key={k} value={k}>{labels[k]}</Tabs.Tab>)}
        </Tabs.List>
        <Tabs.Panel value="users"><Users /></Tabs.Panel>
        <Tabs.Panel value="organization"><Organization /></Tabs.Panel>
        <Tabs.Panel value="services"><Services /></Tabs.Panel>
        <Tabs.Panel value="sla"><SlaPolicies /></Tabs.Panel>
        <Tabs.Panel value="mailboxes"><Mailboxes /></Tabs.Panel>
        <Tabs.Panel value="canned"><CannedResponses /></Tabs.Panel>
        <Tabs.Panel value="tasks"><Tasks /></Tabs.Panel>
      </Tabs>
    </Stack>
  );
}

function Tasks() {
  const { t } = useTranslation();
  const api = useApi();
  const qc = useQueryClient();
  const [queue, setQueue] = useState<Queue>('dedup');
  const key = ['archived', queue];
  const tasks = useQuery({
    queryKey: key,
    queryFn: ({ signal }) => unwrap(api.GET('/api/v1/admin/tasks/{queue}/archived', { signal, params: { path: { queue }, query: { limit: 100 } } })),
  });
  const act = useMutation({
    mutationFn: async (v: { id: string; retry: boolean }) => {
      const path = { params: { path: { queue, taskID: v.id } } };
      const { response, error } = v.retry
        ? await api.POST('/api/v1/admin/tasks/{queue}/archived/{taskID}/retry', path)
        : await api.DELETE('/api/v1/admin/tasks/{queue}/archived/{taskID}', path);
      if (!response.ok) await unwrap(Promise.resolve({ error, response }));
      return v;
    },
    onSuccess: (v) => notifications.show({ color: 'green', message: v.retry ? t('admin.retried') : t('admin.deleted') }),
    onError: (e) => notifications.show({ color: 'red', title: t('error.actionFailed'), message: e instanceof ApiError ? e.message : t('error.network') }),
    onSettled: () => void qc.invalidateQueries({ queryKey: key }),
  });
  return (
    <Stack gap="md">
      <Text size="sm" c="dimmed">{t('admin.tasksHint')}</Text>
      <SegmentedControl value={queue} onChange={(v) => setQueue(v as Queue)} w="fit-content" aria-label={t('admin.queue')}
        data={QUEUES.map((q) => ({ value: q, label: q }))} />
      {tasks.isPending ? <ListSkeleton rows={3} /> : tasks.isError ? <ErrorState error={tasks.error} onRetry={() => void tasks.refetch()} /> :
        tasks.data.items.length === 0 ? <EmptyState title={t('admin.noTasks')} description={t('admin.noTasksBody')} /> : (
          <Paper className="atum-panel" p={0} style={{ overflowX: 'auto' }}>
            <Table verticalSpacing="sm" data-testid="archived-tasks">
              <Table.Thead>
                <Table.Tr>
                  <Table.Th>{t('admin.task')}</Table.Th>
                  <Table.Th>{t('admin.ticket')}</Table.Th>
                  <Table.Th>{t('admin.lastError')}</Table.Th>
                  <Table.Th>{t('admin.failed')}</Table.Th>
                  <Table.Th>{t('admin.actions')}</Table.Th>
                </Table.Tr>
              </Table.Thead>
              <Table.Tbody>
                {tasks.data.items.map((tk) => (
                  <Table.Tr key={tk.id}>
                    <Table.Td><Text size="sm" ff="monospace">{tk.type}</Text><Text size="xs" c="dimmed">{tk.payload.event_type}</Text></Table.Td>
                    <Table.Td>
                      {tk.payload.ticket_id && (
                        <Link to="/desk/tickets/$ticketId" params={{ ticketId: tk.payload.ticket_id }}>{t('admin.openTicket')}</Link>
                      )}
                    </Table.Td>
                    <Table.Td><Text size="xs" ff="monospace" lineClamp={2} style={{ overflowWrap: 'anywhere' }}>{tk.last_error}</Text></Table.Td>
                    <Table.Td c="dimmed">{tk.last_failed_at ? <RelativeTime iso={tk.last_failed_at} /> : '—'}</Table.Td>
                    <Table.Td>
                      <Group gap="xs" wrap="nowrap">
                        <Button size="xs" variant="light" onClick={() => act.mutate({ id: tk.id, retry: true })}>{t('admin.retry')}</Button>
                        <ConfirmButton size="xs" variant="subtle" color="red" label={t('admin.delete')} title={t('admin.deleteTitle')}
                          body={t('admin.deleteBody')} confirmLabel={t('admin.delete')} onConfirm={() => act.mutate({ id: tk.id, retry: false })} />
                      </Group>
                    </Table.Td>
                  </Table.Tr>
                ))}
              </Table.Tbody>
            </Table>
          </Paper>
        )}
    </Stack>
  );
}
