import { Button, Group, MultiSelect, Paper, SegmentedControl, Select, Stack, Table, Text, TextInput, Title } from '@mantine/core';
import { useDebouncedCallback, useHotkeys } from '@mantine/hooks';
import { useNavigate, useSearch } from '@tanstack/react-router';
import { memo, useEffect, useLayoutEffect, useRef, useState } from 'react';
import { useTranslation } from 'react-i18next';
import { PRIORITIES, STATUSES, type Ticket } from '../../api/client';
import { PriorityBadge, StatusBadge } from '../../components/Badges';
import { IconSearch } from '../../components/Icons';
import { ticketAtRisk } from '../../components/Sla';
import { EmptyState, ErrorState, ListSkeleton } from '../../components/States';
import { RelativeTime, useNow } from '../../components/Time';
import { useStaff, useTickets } from '../../lib/queries';
import type { TicketListSearch } from '../../router';

/**
 * TicketList: every filter lives in the URL (shareable, back-button safe).
 * j/k move the selection, Enter opens, / focuses the search.
 */
export function TicketList() {
  const { t } = useTranslation();
  const search = useSearch({ from: '/desk/tickets' });
  const navigate = useNavigate({ from: '/desk/tickets' });
  const [selected, setSelected] = useState(0);
  const [text, setText] = useState(search.q ?? '');
  const searchRef = useRef<HTMLInputElement>(null);
  const staff = useStaff();
  const names = new Map((staff.data ?? []).map((u) => [u.id, u.name || u.email]));
  const now = useNow();

  const list = useTickets(
    { queue: search.queue ?? 'all', status: search.status, priority: search.priority, q: search.q, order: search.order, after: search.after },
    { onData: () => performance.mark('atum:list-data') },
  );
  const items = list.data?.items ?? [];

  // Budget probe: time from the data's arrival to the rows being in the DOM.
  useLayoutEffect(() => {
    if (!list.data || performance.getEntriesByName('atum:list-data').length === 0) return;
    performance.mark('atum:list-rendered');
    performance.measure('atum:list-render', 'atum:list-data', 'atum:list-rendered');
    performance.clearMarks('atum:list-data');
  }, [list.data]);

  const set = (patch: Partial<TicketListSearch>) =>
    void navigate({ search: (prev: TicketListSearch) => ({ ...prev, after: undefined, ...patch }) });
  const setQ = useDebouncedCallback((q: string) => set({ q: q.trim() || undefined }), 300);
  useEffect(() => setSelected(0), [list.data]);

  const open = (tk: Ticket | undefined) => tk && void navigate({ to: '/desk/tickets/$ticketId', params: { ticketId: tk.id } });
  useHotkeys([
    ['j', () => setSelected((i) => Math.min(i + 1, items.length - 1))],
    ['k', () => setSelected((i) => Math.max(i - 1, 0))],
    ['Enter', () => open(items[selected])],
    ['/', () => searchRef.current?.focus()],
  ]);
  useEffect(() => {
    document.querySelector(`[data-row-index="${selected}"]`)?.scrollIntoView({ block: 'nearest' });
  }, [selected]);

  return (
    <Stack gap="md">
      <Title order={1} size="h2">{t('desk.tickets')}</Title>
      <Group gap="sm" align="flex-end" wrap="wrap">
        <SegmentedControl value={search.queue ?? 'all'} onChange={(v) => set({ queue: v === 'all' ? undefined : (v as TicketListSearch['queue']) })}
          aria-label={t('list.queue')}
          data={(['all', 'mine', 'unassigned', 'new'] as const).map((q) => ({ value: q, label: t(`queue.${q}`) }))} />
        <MultiSelect label={t('ticket.status')} placeholder={t('list.any')} value={search.status ?? []} w={220} clearable
          data={STATUSES.map((s) => ({ value: s, label: t(`status.${s}`) }))}
          onChange={(v) => set({ status: v.length ? (v as TicketListSearch['status']) : undefined })} />
        <MultiSelect label={t('ticket.priority')} placeholder={t('list.any')} value={search.priority ?? []} w={200} clearable
          data={PRIORITIES.map((p) => ({ value: p, label: t(`priority.${p}`) }))}
          onChange={(v) => set({ priority: v.length ? (v as TicketListSearch['priority']) : undefined })} />
        <TextInput ref={searchRef} label={t('list.search')} placeholder={t('list.searchPlaceholder')} leftSection={<IconSearch size={16} />}
          value={text} w={240} onChange={(e) => { setText(e.currentTarget.value); setQ(e.currentTarget.value); }} />
        <Select label={t('list.order')} value={search.order ?? 'newest'} w={140} allowDeselect={false}
          data={[{ value: 'newest', label: t('list.newest') }, { value: 'oldest', label: t('list.oldest') }]}
          onChange={(v) => set({ order: v === 'oldest' ? 'oldest' : undefined })} />
      </Group>
      {list.isPending ? <ListSkeleton rows={10} /> : list.isError ? <ErrorState error={list.error} onRetry={() => void list.refetch()} /> :
        items.length === 0 ? <EmptyState title={t('list.emptyTitle')} description={t('list.emptyBody')} /> : (
          <Paper className="atum-panel" p={0} style={{ overflowX: 'auto' }}>
            <Table verticalSpacing="xs" highlightOnHover data-testid="ticket-table" data-rows={items.length}>
              <Table.Thead>
                <Table.Tr>
                  <Table.Th w={80}>{t('ticket.number')}</Table.Th>
                  <Table.Th>{t('ticket.subject')}</Table.Th>
                  <Table.Th w={150}>{t('ticket.status')}</Table.Th>
                  <Table.Th w={110}>{t('ticket.priority')}</Table.Th>
                  <Table.Th w={160}>{t('ticket.assignee')}</Table.Th>
                  <Table.Th w={150}>{t('ticket.updated')}</Table.Th>
                </Table.Tr>
              </Table.Thead>
              <Table.Tbody>
                {items.map((tk, i) => (
                  <Row key={tk.id} ticket={tk} index={i} selected={i === selected} atRisk={ticketAtRisk(tk, now)}
                    assignee={tk.assigned_to ? names.get(tk.assigned_to) ?? '—' : t('ticket.unassigned')} onOpen={open} />
                ))}
              </Table.Tbody>
            </Table>
          </Paper>
        )}
      <Group justify="space-between">
        <Text size="xs" c="dimmed">{t('list.shown', { count: items.length })}</Text>
        <Group gap="xs">
          {search.after && <Button variant="default" size="xs" onClick={() => set({ after: undefined })}>{t('list.first')}</Button>}
          {list.data?.next_cursor && (
            <Button variant="default" size="xs" onClick={() => set({ after: list.data!.next_cursor })}>{t('list.next')}</Button>
          )}
        </Group>
      </Group>
    </Stack>
  );
}

const Row = memo(function Row({ ticket: tk, index, selected, atRisk, assignee, onOpen }: {
  ticket: Ticket; index: number; selected: boolean; atRisk: boolean; assignee: string; onOpen: (t: Ticket) => void;
}) {
  const { t } = useTranslation();
  return (
    <Table.Tr className="atum-row" data-selected={selected} data-row-index={index} data-ticket-id={tk.id} onClick={() => onOpen(tk)}>
      <Table.Td c="dimmed">#{tk.number}</Table.Td>
      <Table.Td>
        <Text size="sm" fw={500} lineClamp={1}>{tk.subject}</Text>
        {atRisk && <Text size="xs" c="orange.4">{t('sla.atRisk')}</Text>}
      </Table.Td>
      <Table.Td><StatusBadge status={tk.status} /></Table.Td>
      <Table.Td><PriorityBadge priority={tk.priority} /></Table.Td>
      <Table.Td><Text size="sm" c={tk.assigned_to ? undefined : 'dimmed'}>{assignee}</Text></Table.Td>
      <Table.Td c="dimmed"><RelativeTime iso={tk.updated_at} /></Table.Td>
    </Table.Tr>
  );
});
