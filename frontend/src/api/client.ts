// The typed API client: openapi-fetch over the types generated from
// httpapi/openapi.yaml (npm run gen:api). Every call carries the session's
// access token; a 401 triggers one silent refresh and a retry.
import createClient, { type Middleware } from 'openapi-fetch';
import type { components, paths } from './schema';
import type { Session } from '../lib/session';

export type Ticket = components['schemas']['Ticket'];
export type Comment = components['schemas']['Comment'];
export type User = components['schemas']['User'];
export type TicketStatus = components['schemas']['TicketStatus'];
export type Priority = components['schemas']['Priority'];
export type Role = components['schemas']['Role'];
export type CSAT = components['schemas']['CSAT'];
export type AuditEntry = components['schemas']['AuditEntry'];
export type Attachment = components['schemas']['Attachment'];
export type TicketAttachment = paths['/api/v1/tickets/{ticketID}/attachments']['get']['responses'][200]['content']['application/json']['items'][number];
export type Problem = components['schemas']['Problem'];
export type LiveEvent = components['schemas']['Event'];

export const STATUSES: TicketStatus[] = [
  'new', 'accepted', 'assigned', 'in_progress', 'waiting_customer', 'resolved', 'closed', 'cancelled',
];
export const PRIORITIES: Priority[] = ['low', 'medium', 'high', 'critical'];

/** ApiError is a failed call with its RFC 9457 problem (or a synthetic one for network errors). */
export class ApiError extends Error {
  readonly status: number;
  readonly problem: Problem;
  constructor(status: number, problem: Problem) {
    super(problem.detail || problem.title);
    this.status = status;
    this.problem = problem;
  }
}

export function isProblem(v: unknown): v is Problem {
  return typeof v === 'object' && v !== null && 'status' in v && 'title' in v;
}

/** unwrap turns an openapi-fetch result into its data or throws an ApiError. */
export async function unwrap<T>(p: Promise<{ data?: T; error?: unknown; response: Response }>): Promise<T> {
  const { data, error, response } = await p;
  if (response.ok) return data as T;
  const problem: Problem = isProblem(error)
    ? error
    : { type: 'about:blank', title: response.statusText || 'Error', status: response.status };
  throw new ApiError(response.status, problem);
}

export type ApiClient = ReturnType<typeof createApiClient>;

export function createApiClient(session: Session, baseUrl = window.location.origin) {
  const pending = new WeakMap<Request, Request>();
  const auth: Middleware = {
    async onRequest({ request }) {
      const token = await session.accessToken();
      if (token) request.headers.set('Authorization', `Bearer ${token}`);
      // Keep a copy to replay once after a refresh (the body is consumed).
      pending.set(request, request.clone());
      return request;
    },
    async onResponse({ request, response }) {
      const copy = pending.get(request);
      pending.delete(request);
      if (response.status !== 401 || !copy || !request.headers.has('Authorization')) return response;
      if (!(await session.refresh())) {
        session.expire();
        return response;
      }
      const token = await session.accessToken();
      copy.headers.set('Authorization', `Bearer ${token}`);
      return fetch(copy);
    },
  };
  const client = createClient<paths>({ baseUrl });
  client.use(auth);
  return client;
}
