// Ticket actions shared by the portal and the desk. Each shows a toast and
// refreshes what it changed; 409 answers carry the allowed transitions and
// simply refresh the ticket so the controls match the server again.
import { notifications } from '@mantine/notifications';
import { useMutation, useQueryClient } from '@tanstack/react-query';
import { useTranslation } from 'react-i18next';
import { ApiError, unwrap, type Priority, type TicketStatus } from '../api/client';
import { keys, useTicketMutation } from './queries';
import { useApi } from './services';

function useFailure(id: string) {
  const { t } = useTranslation();
  const qc = useQueryClient();
  return (e: unknown) => {
    if (e instanceof ApiError && e.status === 409) void qc.invalidateQueries({ queryKey: keys.ticket(id) });
    notifications.show({ color: 'red', title: t('error.actionFailed'), message: e instanceof ApiError ? e.message : t('error.network') });
  };
}

export function useAddComment(id: string) {
  const api = useApi();
  const qc = useQueryClient();
  const fail = useFailure(id);
  const { t } = useTranslation();
  return useMutation({
    mutationFn: (v: { content: string; content_html?: string; is_internal: boolean }) =>
      unwrap(api.POST('/api/v1/tickets/{ticketID}/comments', { params: { path: { ticketID: id } }, body: v })),
    onSuccess: (c) => {
      notifications.show({ color: 'green', message: c.is_internal ? t('reply.noteAdded') : t('reply.sent') });
      void qc.invalidateQueries({ queryKey: keys.comments(id) });
      void qc.invalidateQueries({ queryKey: keys.ticket(id) }); // a customer reply may reopen it
      void qc.invalidateQueries({ queryKey: keys.tickets });
    },
    onError: fail,
  });
}

export function useChangeStatus(id: string) {
  const api = useApi();
  const fail = useFailure(id);
  const { t } = useTranslation();
  const qc = useQueryClient();
  const m = useTicketMutation(id, (v: { status: TicketStatus; reason?: string }) =>
    v.status === 'accepted'
      ? unwrap(api.POST('/api/v1/tickets/{ticketID}/accept', { params: { path: { ticketID: id } } }))
      : unwrap(api.POST('/api/v1/tickets/{ticketID}/status', { params: { path: { ticketID: id } }, body: v })));
  return {
    ...m,
    mutate: (v: { status: TicketStatus; reason?: string }) =>
      m.mutate(v, {
        onSuccess: (tk) => {
          void qc.invalidateQueries({ queryKey: keys.csat(id) });
          notifications.show({ color: 'green', message: t('status.changed', { status: t(`status.${tk.status}`) }) });
        },
        onError: fail,
      }),
  };
}

export function useAssign(id: string) {
  const api = useApi();
  const fail = useFailure(id);
  const { t } = useTranslation();
  const m = useTicketMutation(id, (assignee: string) =>
    unwrap(api.POST('/api/v1/tickets/{ticketID}/assign', { params: { path: { ticketID: id } }, body: { assigned_to: assignee } })));
  return {
    ...m,
    mutate: (assignee: string) => m.mutate(assignee, { onSuccess: () => notifications.show({ color: 'green', message: t('assign.done') }), onError: fail }),
  };
}

export function useSetPriority(id: string) {
  const api = useApi();
  const fail = useFailure(id);
  const { t } = useTranslation();
  const m = useTicketMutation(id, (priority: Priority) =>
    unwrap(api.PATCH('/api/v1/tickets/{ticketID}', { params: { path: { ticketID: id } }, body: { priority } })));
  return {
    ...m,
    mutate: (p: Priority) => m.mutate(p, { onSuccess: () => notifications.show({ color: 'green', message: t('priority.changed') }), onError: fail }),
  };
}

export function useSetService(id: string) {
  const api = useApi();
  const fail = useFailure(id);
  const { t } = useTranslation();
  const m = useTicketMutation(id, (serviceId: string | null) =>
    unwrap(api.PATCH('/api/v1/tickets/{ticketID}', { params: { path: { ticketID: id } }, body: { service_id: serviceId } })));
  return {
    ...m,
    mutate: (v: string | null) => m.mutate(v, { onSuccess: () => notifications.show({ color: 'green', message: t('service.changed') }), onError: fail }),
  };
}
