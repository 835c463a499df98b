// The route tree (code-based TanStack Router). Portal and desk pages load
// lazily so a customer's first load carries no desk code. Search params of
// the desk's ticket list are typed and validated here: the URL is the
// filter state.
import {
  createRootRouteWithContext, createRoute, createRouter, lazyRouteComponent, redirect,
} from '@tanstack/react-router';
import type { QueryClient } from '@tanstack/react-query';
import { PRIORITIES, STATUSES, type Priority, type TicketStatus } from './api/client';
import type { Services } from './lib/services';
import { Root } from './pages/Root';
import { Landing } from './pages/Landing';
import { Login } from './pages/Login';
import { NotFoundPanel } from './components/States';

export interface RouterContext {
  services: Services;
  queryClient: QueryClient;
}

const rootRoute = createRootRouteWithContext<RouterContext>()({
  component: Root,
  notFoundComponent: NotFoundPanel,
});

/** requireSession sends anonymous visitors to /login and back afterwards. */
async function requireSession({ context, location }: { context: RouterContext; location: { href: string } }) {
  const s = await context.services.session.ready();
  if (s.status !== 'authenticated') {
    throw redirect({ to: '/login', search: { next: location.href } });
  }
}

const landingRoute = createRoute({ getParentRoute: () => rootRoute, path: '/', component: Landing });

export interface LoginSearch { next?: string }
const loginRoute = createRoute({
  getParentRoute: () => rootRoute,
  path: 'login',
  validateSearch: (s: Record<string, unknown>): LoginSearch => ({
    // Only same-site paths: never an open redirect.
    next: typeof s.next === 'string' && s.next.startsWith('/') && !s.next.startsWith('//') ? s.next : undefined,
  }),
  component: Login,
});

const portalRoute = createRoute({
  getParentRoute: () => rootRoute,
  path: 'portal',
  beforeLoad: requireSession,
  component: lazyRouteComponent(() => import('./pages/portal/PortalLayout'), 'PortalLayout'),
});
const portalIndexRoute = createRoute({
  getParentRoute: () => portalRoute,
  path: '/',
  component: lazyRouteComponent(() => import('./pages/portal/MyTickets'), 'MyTickets'),
});
const portalNewRoute = createRoute({
  getParentRoute: () => portalRoute,
  path: 'new',
  component: lazyRouteComponent(() => import('./pages/portal/NewTicket'), 'NewTicket'),
});
const portalTicketRoute = createRoute({
  getParentRoute: () => portalRoute,
  path: 'tickets/$ticketId',
  component: lazyRouteComponent(() => import('./pages/portal/PortalTicket'), 'PortalTicket'),
});

const deskRoute = createRoute({
  getParentRoute: () => rootRoute,
  path: 'desk',
  beforeLoad: requireSession,
  component: lazyRouteComponent(() => import('./pages/desk/DeskLayout'), 'DeskLayout'),
});
const deskIndexRoute = createRoute({
  getParentRoute: () => deskRoute,
  path: '/',
  component: lazyRouteComponent(() => import('./pages/desk/Dashboard'), 'Dashboard'),
});
const deskInboxRoute = createRoute({
  getParentRoute: () => deskRoute,
  path: 'inbox',
  component: lazyRouteComponent(() => import('./pages/desk/Inbox'), 'Inbox'),
});

export const ADMIN_TABS = ['users', 'organization', 'services', 'sla', 'mailboxes', 'canned', 'tasks'] as const;
export type AdminTab = (typeof ADMIN_TABS)[number];
export interface AdminSearch { tab?: AdminTab }
const deskAdminRoute = createRoute({
  getParentRoute: () => deskRoute,
  path: 'admin',
  validateSearch: (s: Record<string, unknown>): AdminSearch => ({
    tab: ADMIN_TABS.includes(s.tab as AdminTab) ? (s.tab as AdminTab) : undefined,
  }),
  component: lazyRouteComponent(() => import('./pages/desk/Admin'), 'Admin'),
});

export type Queue = 'all' | 'new' | 'mine' | 'unassigned';
export interface TicketListSearch {
  queue?: Queue;
  status?: TicketStatus[];
  priority?: Priority[];
  q?: string;
  order?: 'newest' | 'oldest';
  after?: string;
}

function listOf<T extends string>(v: unknown, allowed: readonly T[]): T[] | undefined {
  const raw = Array.isArray(v) ? v : typeof v === 'string' ? v.split(',') : [];
  const out = raw.filter((x): x is T => typeof x === 'string' && (allowed as readonly string[]).includes(x));
  return out.length ? out : undefined;
}

export function parseTicketListSearch(s: Record<string, unknown>): TicketListSearch {
  const queues: Queue[] = ['all', 'new', 'mine', 'unassigned'];
  return {
    queue: queues.includes(s.queue as Queue) ? (s.queue as Queue) : undefined,
    status: listOf(s.status, STATUSES),
    priority: listOf(s.priority, PRIORITIES),
    q: typeof s.q === 'string' && s.q.trim() ? s.q.slice(0, 500) : undefined,
    order: s.order === 'oldest' ? 'oldest' : undefined,
    after: typeof s.after === 'string' && /^[0-9a-f-]{36}$/i.test(s.after) ? s.after : undefined,
  };
}

const deskTicketsRoute = createRoute({
  getParentRoute: () => deskRoute,
  path: 'tickets',
  validateSearch: parseTicketListSearch,
  component: lazyRouteComponent(() => import('./pages/desk/TicketList'), 'TicketList'),
});
const deskTicketRoute = createRoute({
  getParentRoute: () => deskRoute,
  path: 'tickets/$ticketId',
  component: lazyRouteComponent(() => import('./pages/desk/DeskTicket'), 'DeskTicket'),
});

const portalKbRoute = createRoute({
  getParentRoute: () => portalRoute,
  path: 'kb',
  component: lazyRouteComponent(() => import('./pages/kb/routes'), 'PortalKb'),
});
const portalKbArticleRoute = createRoute({
  getParentRoute: () => portalRoute,
  path: 'kb/$articleId',
  component: lazyRouteComponent(() => import('./pages/kb/routes'), 'PortalKbArticle'),
});
const deskKbRoute = createRoute({
  getParentRoute: () => deskRoute,
  path: 'kb',
  component: lazyRouteComponent(() => import('./pages/kb/routes'), 'DeskKb'),
});
const deskKbNewRoute = createRoute({
  getParentRoute: () => deskRoute,
  path: 'kb/new',
  component: lazyRouteComponent(() => import('./pages/kb/Knowledge'), 'KbNewPage'),
});
const deskKbArticleRoute = createRoute({
  getParentRoute: () => deskRoute,
  path: 'kb/$articleId',
  component: lazyRouteComponent(() => import('./pages/kb/routes'), 'DeskKbArticle'),
});

export const routeTree = rootRoute.addChildren([
  landingRoute,
  loginRoute,
  portalRoute.addChildren([portalIndexRoute, portalNewRoute, portalTicketRoute, portalKbRoute, portalKbArticleRoute]),
  deskRoute.addChildren([deskIndexRoute, deskInboxRoute, deskTicketsRoute, deskTicketRoute, deskAdminRoute,
    deskKbRoute, deskKbNewRoute, deskKbArticleRoute]),
]);

export function createAppRouter(context: RouterContext) {
  return createRouter({
    routeTree,
    context,
    defaultPreload: 'intent',
    defaultPreloadStaleTime: 0,
    scrollRestoration: true,
  });
}

declare module '@tanstack/react-router' {
  interface Register {
    router: ReturnType<typeof createAppRouter>;
  }
}
