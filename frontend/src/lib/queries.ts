// Query keys and hooks over the API. Live events invalidate by these keys
// (useLiveSync), so every view refreshes the same way.
import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query';
import { ApiError, unwrap, type Priority, type Ticket, type TicketStatus } from '../api/client';
import { useApi, useLiveStatus } from './services';

export const keys = {
  tickets: ['tickets'] as const,
  ticketList: (q: TicketQuery) => ['tickets', q] as const,
  ticket: (id: string) => ['ticket', id] as const,
  comments: (id: string) => ['comments', id] as const,
  csat: (id: string) => ['csat', id] as const,
  audit: (id: string) => ['audit', id] as const,
  staff: ['users', 'staff'] as const,
  attachments: (id: string) => ['attachments', id] as const,
  services: ['services'] as const,
};

export interface TicketQuery {
  queue?: 'all' | 'new' | 'mine' | 'unassigned';
  status?: TicketStatus[];
  priority?: Priority[];
  q?: string;
  order?: 'newest' | 'oldest';
  requester_id?: string;
  assigned_to?: string;
  limit?: number;
  after?: string;
}

/** usePollWhileOffline polls when the live stream is down, so views still refresh. */
function usePollWhileOffline() {
  return useLiveStatus() === 'live' ? false : 5_000;
}

export function useTickets(q: TicketQuery, opts: { onData?: () => void } = {}) {
  const api = useApi();
  const poll = usePollWhileOffline();
  return useQuery({
    queryKey: keys.ticketList(q),
    queryFn: async ({ signal }) => {
      const res = await unwrap(api.GET('/api/v1/tickets', {
        signal,
        params: {
          query: {
            queue: q.queue, q: q.q || undefined, order: q.order, requester_id: q.requester_id,
            assigned_to: q.assigned_to, limit: q.limit ?? 50, after: q.after,
            status: q.status?.length ? q.status.join(',') : undefined,
            priority: q.priority?.length ? q.priority.join(',') : undefined,
          },
        },
      }));
      opts.onData?.();
      return res;
    },
    refetchInterval: poll,
    placeholderData: (prev) => prev,
  });
}

/**
 * useTicket loads one ticket. A ticket filed a moment ago may still be on
 * its way through the pipeline (202 from intake): its 404 is retried briefly.
 */
export function useTicket(id: string) {
  const api = useApi();
  const poll = usePollWhileOffline();
  return useQuery({
    queryKey: keys.ticket(id),
    queryFn: ({ signal }) => unwrap(api.GET('/api/v1/tickets/{ticketID}', { signal, params: { path: { ticketID: id } } })),
    refetchInterval: poll,
    retry: (n, err) => (err instanceof ApiError && err.status === 404 ? n < 3 : !(err instanceof ApiError && err.status < 500) && n < 2),
    retryDelay: (n) => Math.min(500 * 2 ** n, 4000),
  });
}

export function useComments(id: string) {
  const api = useApi();
  const poll = usePollWhileOffline();
  return useQuery({
    queryKey: keys.comments(id),
    queryFn: ({ signal }) => unwrap(api.GET('/api/v1/tickets/{ticketID}/comments', {
      signal, params: { path: { ticketID: id }, query: { limit: 200 } },
    })).then((p) => p.items),
    refetchInterval: poll,
  });
}

export function useCsat(id: string, enabled: boolean) {
  const api = useApi();
  return useQuery({
    queryKey: keys.csat(id),
    enabled,
    queryFn: ({ signal }) => unwrap(api.GET('/api/v1/tickets/{ticketID}/csat', { signal, params: { path: { ticketID: id } } })),
  });
}

export function useAudit(id: string, enabled: boolean) {
  const api = useApi();
  return useQuery({
    queryKey: keys.audit(id),
    enabled,
    queryFn: ({ signal }) => unwrap(api.GET('/api/v1/tickets/{ticketID}/audit', {
      signal, params: { path: { ticketID: id }, query: { limit: 100 } },
    })).then((p) => p.items),
  });
}

/** useStaff lists the organisation's agents, managers and admins (assignees, names). */
export function useStaff(enabled = true) {
  const api = useApi();
  return useQuery({
    queryKey: keys.staff,
    enabled,
    staleTime: 5 * 60_000,
    queryFn: async ({ signal }) => {
      const res = await unwrap(api.GET('/api/v1/users', { signal, params: { query: { is_active: true, limit: 200 } } }));
      return res.items.filter((u) => u.role === 'agent' || u.role === 'manager' || u.role === 'admin');
    },
  });
}

/** useTicketMutation runs a change and stores the returned ticket. */
export function useTicketMutation<V>(id: string, fn: (v: V) => Promise<Ticket>) {
  const qc = useQueryClient();
  return useMutation({
    mutationFn: fn,
    onSuccess: (t) => {
      qc.setQueryData(keys.ticket(id), t);
      void qc.invalidateQueries({ queryKey: keys.tickets });
      void qc.invalidateQueries({ queryKey: keys.audit(id) });
    },
  });
}

export function useUserById(id: string | null | undefined) {
  const api = useApi();
  return useQuery({
    queryKey: ['user', id],
    enabled: !!id,
    staleTime: 5 * 60_000,
    queryFn: ({ signal }) => unwrap(api.GET('/api/v1/users/{userID}', { signal, params: { path: { userID: id! } } })),
  });
}

/** useAttachments lists the files of a ticket the viewer may see (no internal-note files for customers). */
export function useAttachments(id: string) {
  const api = useApi();
  const poll = usePollWhileOffline();
  return useQuery({
    queryKey: keys.attachments(id),
    queryFn: ({ signal }) => unwrap(api.GET('/api/v1/tickets/{ticketID}/attachments', {
      signal, params: { path: { ticketID: id }, query: { limit: 200 } },
    })).then((p) => p.items),
    refetchInterval: poll,
  });
}

/** useServices lists the organisation's services (customers get the active ones only). */
export function useServiceList(opts: { activeOnly?: boolean } = {}) {
  const api = useApi();
  return useQuery({
    queryKey: [...keys.services, opts.activeOnly ?? false],
    staleTime: 60_000,
    queryFn: ({ signal }) => unwrap(api.GET('/api/v1/services', {
      signal, params: { query: opts.activeOnly ? { is_active: true } : {} },
    })).then((p) => p.items),
  });
}
