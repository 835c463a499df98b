import { Alert, Anchor, Badge, Button, Grid, Group, Paper, Select, Stack, Tabs, Text, Title } from '@mantine/core';
import { useHotkeys } from '@mantine/hooks';
import { Link, useParams } from '@tanstack/react-router';
import { useEffect, useRef, useState } from 'react';
import { useTranslation } from 'react-i18next';
import { PRIORITIES, type Priority, type Ticket, type TicketStatus } from '../../api/client';
import { AssigneeSelect } from '../../components/AssigneeSelect';
import { ConfirmButton } from '../../components/ConfirmButton';
import { IconLock } from '../../components/Icons';
import { AttachmentList } from '../../components/AttachmentList';
import { CannedPicker } from '../../components/CannedPicker';
import { appendText, commentBody, ReplyBox, type Draft, type ReplyBoxHandle, type ReplyMode } from '../../components/ReplyBox';
import { SlaLine } from '../../components/Sla';
import { ErrorState, ListSkeleton } from '../../components/States';
import { Thread } from '../../components/Thread';
import { Description, TicketHeader } from '../../components/TicketHeader';
import { absolute } from '../../components/Time';
import { useAddComment, useAssign, useChangeStatus, useSetPriority, useSetService } from '../../lib/actions';
import { useAudit, useComments, useServiceList, useTicket, useUserById } from '../../lib/queries';
import { useServices, useUser } from '../../lib/services';
import { canTriage } from './DeskLayout';

const ASSIGNABLE: TicketStatus[] = ['accepted', 'assigned', 'in_progress', 'waiting_customer'];

/** DeskTicket is the agent's ticket view: timeline, composer and workflow controls. */
export function DeskTicket() {
  const { t } = useTranslation();
  const { ticketId } = useParams({ from: '/desk/tickets/$ticketId' });
  const user = useUser();
  const { live } = useServices();
  const ticket = useTicket(ticketId);
  const comments = useComments(ticketId);
  const add = useAddComment(ticketId);
  const [draft, setDraft] = useState<Draft>({ html: '', text: '' });
  const [mode, setMode] = useState<ReplyMode>('public');
  const [newReply, setNewReply] = useState(false);
  const [tab, setTab] = useState<string | null>('conversation');
  const reply = useRef<ReplyBoxHandle>(null);

  // Someone else's reply while this agent reads or writes: say so, keep the draft.
  useEffect(() => live.subscribe((ev) => {
    if (ev.ticket_id === ticketId && ev.type === 'comment.added' && ev.actor_id !== user.id) setNewReply(true);
  }), [live, ticketId, user.id]);

  useHotkeys([
    ['r', () => { setTab('conversation'); reply.current?.focus('public'); }],
    ['n', () => { setTab('conversation'); reply.current?.focus('internal'); }],
  ]);

  if (ticket.isPending) return <ListSkeleton rows={6} />;
  if (ticket.isError) return <ErrorState error={ticket.error} onRetry={() => void ticket.refetch()} />;
  const tk = ticket.data;
  const readOnly = tk.status === 'closed' || tk.status === 'cancelled';
  const send = () =>
    add.mutate({ ...commentBody(draft), is_internal: mode === 'internal' }, { onSuccess: () => { setDraft({ html: '', text: '' }); setNewReply(false); } });
  const showLatest = () => {
    setNewReply(false);
    const all = document.querySelectorAll('[data-testid="thread"] > *');
    all[all.length - 1]?.scrollIntoView({ behavior: 'smooth', block: 'center' });
  };

  return (
    <Stack gap="md" data-testid="desk-ticket" data-status={tk.status}>
      <Button component={Link} to="/desk/tickets" variant="subtle" color="gray" w="fit-content" px={0}>← {t('desk.tickets')}</Button>
      <TicketHeader ticket={tk} />
      <Grid gap="lg">
        <Grid.Col span={{ base: 12, md: 8 }}>
          <Tabs value={tab} onChange={setTab} keepMounted={false}>
            <Tabs.List mb="md">
              <Tabs.Tab value="conversation">{t('desk.conversation')}</Tabs.Tab>
              <Tabs.Tab value="history">{t('desk.history')}</Tabs.Tab>
            </Tabs.List>
            <Tabs.Panel value="conversation">
              <Stack gap="md">
                <Description ticket={tk} />
                {comments.isPending ? <ListSkeleton rows={3} /> : comments.isError ? (
                  <ErrorState error={comments.error} onRetry={() => void comments.refetch()} />
                ) : comments.data.length === 0 ? <Text c="dimmed" size="sm">{t('thread.empty')}</Text> : (
                  <Thread comments={comments.data} meId={user.id} />
                )}
                {newReply && (
                  <Alert color="gold" variant="light" data-testid="new-reply" role="status" withCloseButton onClose={() => setNewReply(false)}>
                    <Group justify="space-between">
                      <Text size="sm">{draft.text.trim() ? t('desk.newReplyDraft') : t('desk.newReply')}</Text>
                      <Button size="xs" variant="light" onClick={showLatest}>{t('desk.showNewReply')}</Button>
                    </Group>
                  </Alert>
                )}
                {readOnly ? (
                  <Alert color="gray" icon={<IconLock />} data-testid="read-only">{t('ticket.readOnly', { status: t(`status.${tk.status}`) })}</Alert>
                ) : (
                  <ReplyBox ref={reply} draft={draft} onDraft={setDraft} mode={mode} onMode={setMode} onSend={send} busy={add.isPending}
                    tools={<CannedPicker ticketId={tk.id} onInsert={(text) => setDraft((d) => appendText(d, text))} />} />
                )}
              </Stack>
            </Tabs.Panel>
            <Tabs.Panel value="history">
              <History ticketId={tk.id} />
            </Tabs.Panel>
          </Tabs>
        </Grid.Col>
        <Grid.Col span={{ base: 12, md: 4 }}>
          <Stack gap="md">
            <Workflow ticket={tk} role={user.role} />
            <SlaPanel ticket={tk} />
            <AttachmentList ticketId={tk.id} canUpload={!readOnly} />
            <Requester id={tk.requester_id} />
            <AiPanel ticket={tk} />
          </Stack>
        </Grid.Col>
      </Grid>
    </Stack>
  );
}

function Workflow({ ticket: tk, role }: { ticket: Ticket; role: string }) {
  const { t } = useTranslation();
  const status = useChangeStatus(tk.id);
  const assign = useAssign(tk.id);
  const priority = useSetPriority(tk.id);
  const service = useSetService(tk.id);
  const services = useServiceList();
  const readOnly = tk.status === 'closed' || tk.status === 'cancelled';
  const moves = tk.allowed_transitions.filter((s) => s !== 'assigned' && s !== 'cancelled');
  return (
    <Paper p="md" className="atum-panel" data-testid="workflow">
      <Stack gap="sm">
        <Title order={2} size="h5">{t('desk.workflow')}</Title>
        {moves.length > 0 && (
          <Group gap="xs">
            {moves.map((s) => (
              <Button key={s} size="xs" variant={s === 'resolved' || s === 'accepted' ? 'filled' : 'light'} loading={status.isPending}
                onClick={() => status.mutate({ status: s })} data-transition={s}>{t(`transition.${s}`)}</Button>
            ))}
          </Group>
        )}
        {tk.allowed_transitions.includes('cancelled') && (
          <ConfirmButton size="xs" variant="subtle" color="red" w="fit-content" label={t('transition.cancelled')}
            title={t('desk.cancelTitle')} body={t('desk.cancelBody', { number: tk.number })} confirmLabel={t('transition.cancelled')}
            onConfirm={() => status.mutate({ status: 'cancelled' })} />
        )}
        {tk.allowed_transitions.length === 0 && !readOnly && <Text size="xs" c="dimmed">{t('desk.noTransitions')}</Text>}
        <Select label={t('ticket.priority')} value={tk.priority} disabled={readOnly || priority.isPending} allowDeselect={false}
          data={PRIORITIES.map((p) => ({ value: p, label: t(`priority.${p}`) }))}
          onChange={(v) => v && v !== tk.priority && priority.mutate(v as Priority)} />
        <Select label={t('ticket.service')} value={tk.service_id ?? null} disabled={readOnly || service.isPending} clearable
          placeholder={t('ticket.noService')} data-testid="service-select"
          data={(services.data ?? []).filter((sv) => sv.is_active || sv.id === tk.service_id).map((sv) => ({ value: sv.id, label: sv.name }))}
          onChange={(v) => (v ?? null) !== (tk.service_id ?? null) && service.mutate(v ?? null)} />
        {canTriage(role) && ASSIGNABLE.includes(tk.status) ? (
          <AssigneeSelect label={t('ticket.assignee')} value={tk.assigned_to ?? null} onChange={(id) => assign.mutate(id)} disabled={assign.isPending} />
        ) : (
          <AssigneeName id={tk.assigned_to} />
        )}
      </Stack>
    </Paper>
  );
}

function AssigneeName({ id }: { id?: string | null }) {
  const { t } = useTranslation();
  const u = useUserById(id);
  return (
    <Group justify="space-between">
      <Text size="sm">{t('ticket.assignee')}</Text>
      <Text size="sm" c={id ? undefined : 'dimmed'}>{id ? u.data?.name ?? '…' : t('ticket.unassigned')}</Text>
    </Group>
  );
}

function SlaPanel({ ticket: tk }: { ticket: Ticket }) {
  const { t } = useTranslation();
  return (
    <Paper p="md" className="atum-panel">
      <Stack gap="xs">
        <Title order={2} size="h5">{t('sla.title')}</Title>
        <SlaLine label={t('sla.firstResponse')} due={tk.first_response_due_at} doneAt={tk.first_responded_at} breached={tk.first_response_breached} />
        <SlaLine label={t('sla.resolution')} due={tk.resolution_due_at} doneAt={tk.resolved_at ?? tk.closed_at} breached={tk.resolution_breached} />
        {tk.sla_paused_at && <Text size="xs" c="dimmed">{t('sla.paused')}</Text>}
      </Stack>
    </Paper>
  );
}

function Requester({ id }: { id: string }) {
  const { t } = useTranslation();
  const u = useUserById(id);
  return (
    <Paper p="md" className="atum-panel">
      <Stack gap={2}>
        <Title order={2} size="h5">{t('ticket.requester')}</Title>
        <Text size="sm">{u.data?.name ?? '…'}</Text>
        <Text size="xs" c="dimmed">{u.data?.email}</Text>
      </Stack>
    </Paper>
  );
}

function AiPanel({ ticket: tk }: { ticket: Ticket }) {
  const { t } = useTranslation();
  if (!tk.ai_suggested_at && !tk.is_duplicate_of) return null;
  return (
    <Paper p="md" className="atum-panel" data-testid="ai-panel">
      <Stack gap="xs">
        <Title order={2} size="h5">{t('ai.title')}</Title>
        {tk.ai_suggested_priority && (
          <Group justify="space-between">
            <Text size="sm">{t('ai.priority')}</Text>
            <Badge variant="light">{t(`priority.${tk.ai_suggested_priority}`)}</Badge>
          </Group>
        )}
        {tk.ai_suggested_category && (
          <Group justify="space-between"><Text size="sm">{t('ai.category')}</Text><Text size="sm">{tk.ai_suggested_category}</Text></Group>
        )}
        {tk.ai_confidence != null && (
          <Text size="xs" c="dimmed">{t('ai.confidence', { value: Math.round(tk.ai_confidence * 100) })}</Text>
        )}
        {tk.is_duplicate_of && (
          <Link to="/desk/tickets/$ticketId" params={{ ticketId: tk.is_duplicate_of }}><Anchor component="span" size="sm">{t('ai.duplicateOf')}</Anchor></Link>
        )}
      </Stack>
    </Paper>
  );
}

function History({ ticketId }: { ticketId: string }) {
  const { t, i18n } = useTranslation();
  const audit = useAudit(ticketId, true);
  if (audit.isPending) return <ListSkeleton rows={4} />;
  if (audit.isError) return <ErrorState error={audit.error} onRetry={() => void audit.refetch()} />;
  if (audit.data.length === 0) return <Text c="dimmed" size="sm">{t('history.empty')}</Text>;
  return (
    <Stack gap="xs" data-testid="history">
      {audit.data.map((a) => (
        <Paper key={a.id} p="sm" className="atum-panel">
          <Group justify="space-between" wrap="nowrap">
            <Text size="sm" fw={500}>{t(`history.actions.${a.action}`, { defaultValue: a.action })}</Text>
            <Text size="xs" c="dimmed">{absolute(a.created_at, i18n.language)}</Text>
          </Group>
          {a.after != null && typeof a.after === 'object' && (
            <Text size="xs" c="dimmed" ff="monospace" style={{ overflowWrap: 'anywhere' }}>
              {Object.entries(a.after as Record<string, unknown>).map(([k, v]) => `${k}: ${typeof v === 'object' ? JSON.stringify(v) : String(v)}`).join(' · ')}
            </Text>
          )}
        </Paper>
      ))}
    </Stack>
  );
}
