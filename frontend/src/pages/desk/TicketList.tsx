import { Button, Group, MultiSelect, Paper, SegmentedControl, Select, Stack, Text, TextInput, Title } from '@mantine/core';
import { useDebouncedCallback, useHotkeys } from '@mantine/hooks';
import { useNavigate, useSearch } from '@tanstack/react-router';
import { memo, useEffect, useLayoutEffect, useRef, useState } from 'react';
import { useTranslation } from 'react-i18next';
import { PRIORITIES, STATUSES, type Ticket } from '../../api/client';
import { IconSearch } from '../../components/Icons';
import { ticketAtRisk } from '../../components/Sla';
import { EmptyState, ErrorState, ListSkeleton } from '../../components/States';
import { relative, useNow } from '../../components/Time';
import { useStaff, useTickets } from '../../lib/queries';
import type { TicketListSearch } from '../../router';

/**
 * TicketList: every filter lives in the URL (shareable, back-button safe).
 * j/k move the selection, Enter opens, / focuses the search.
 */
export function TicketList() {
  const { t, i18n } = useTranslation();
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
            {/* Plain elements, not a component per cell: 50 rows must render well under 100 ms. */}
            <table className="atum-table" data-testid="ticket-table" data-rows={items.length}>
              <thead>
                <tr>
                  <th style={{ width: 80 }}>{t('ticket.number')}</th>
                  <th>{t('ticket.subject')}</th>
                  <th style={{ width: 170 }}>{t('ticket.status')}</th>
                  <th style={{ width: 110 }}>{t('ticket.priority')}</th>
                  <th style={{ width: 170 }}>{t('ticket.assignee')}</th>
                  <th style={{ width: 140 }}>{t('ticket.updated')}</th>
                </tr>
              </thead>
              <tbody>
                {items.map((tk, i) => (
                  <Row key={tk.id} ticket={tk} index={i} selected={i === selected} onOpen={open}
                    labels={{
                      status: t(`status.${tk.status}`), priority: t(`priority.${tk.priority}`),
                      assignee: tk.assigned_to ? names.get(tk.assigned_to) ?? '—' : t('ticket.unassigned'),
                      risk: ticketAtRisk(tk, now) ? t('sla.atRisk') : '',
                      updated: relative(tk.updated_at, i18n.language, now),
                    }} />
                ))}
              </tbody>
            </table>
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

interface RowLabels { status: string; priority: string; assignee: string; risk: string; updated: string }

const Row = memo(function Row({ ticket: tk, index, selected, labels, onOpen }: {
  ticket: Ticket; index: number; selected: boolean; labels: RowLabels; onOpen: (t: Ticket) => void;
}) {
  return (
    <tr className="atum-row" data-selected={selected} data-row-index={index} data-ticket-id={tk.id} onClick={() => onOpen(tk)}>
      <td className="atum-dim">#{tk.number}</td>
      <td>
        <a href={`/desk/tickets/${tk.id}`} className="atum-subject" onClick={(e) => { e.preventDefault(); onOpen(tk); }}>{tk.subject}</a>
        {labels.risk && <div className="atum-risk">{labels.risk}</div>}
      </td>
      <td><span className="atum-badge" data-status={tk.status}>{labels.status}</span></td>
      <td><span className="atum-badge atum-badge-outline" data-priority={tk.priority}>{labels.priority}</span></td>
      <td className={tk.assigned_to ? undefined : 'atum-dim'}>{labels.assignee}</td>
      <td className="atum-dim"><time dateTime={tk.updated_at}>{labels.updated}</time></td>
    </tr>
  );
}, (a, b) => a.ticket === b.ticket && a.selected === b.selected && a.index === b.index &&
  a.labels.assignee === b.labels.assignee && a.labels.updated === b.labels.updated && a.labels.risk === b.labels.risk);
