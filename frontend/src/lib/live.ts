// Live updates over the API's server-sent events. One EventSource per tab;
// EventSource cannot set headers, so the access token rides in the query
// (the server moves it out of the URL before anything logs it). On any
// error the stream is reopened with a fresh token and the last event id, so
// nothing is missed; an "reset" answer means the gap was too old and every
// view refetches.
import type { LiveEvent } from '../api/client';

export type LiveStatus = 'off' | 'connecting' | 'live' | 'down';

type Listener = (ev: LiveEvent) => void;

export interface LiveDeps {
  token: () => Promise<string | null>;
  open?: (url: string) => EventSource;
}

export class Live {
  private es: EventSource | null = null;
  private lastId = '';
  private status: LiveStatus = 'off';
  private attempts = 0;
  private timer: ReturnType<typeof setTimeout> | null = null;
  private listeners = new Set<Listener>();
  private resetListeners = new Set<() => void>();
  private statusListeners = new Set<() => void>();
  private readonly deps: LiveDeps;
  private running = false;

  constructor(deps: LiveDeps) {
    this.deps = deps;
  }

  getStatus = () => this.status;

  onStatus = (l: () => void) => {
    this.statusListeners.add(l);
    return () => {
      this.statusListeners.delete(l);
    };
  };

  /** subscribe receives every domain event the caller may see. */
  subscribe(l: Listener) {
    this.listeners.add(l);
    return () => {
      this.listeners.delete(l);
    };
  }

  /** onReset is told when events may have been missed: refetch everything. */
  onReset(l: () => void) {
    this.resetListeners.add(l);
    return () => {
      this.resetListeners.delete(l);
    };
  }

  private setStatus(s: LiveStatus) {
    if (s === this.status) return;
    this.status = s;
    this.statusListeners.forEach((l) => l());
  }

  start() {
    if (this.running) return;
    this.running = true;
    void this.connect();
  }

  stop() {
    this.running = false;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    this.es?.close();
    this.es = null;
    this.lastId = '';
    this.setStatus('off');
  }

  private async connect() {
    if (!this.running) return;
    this.setStatus(this.attempts > 0 ? 'down' : 'connecting');
    const token = await this.deps.token();
    if (!this.running) return;
    if (!token) {
      this.retry();
      return;
    }
    const q = new URLSearchParams({ access_token: token });
    if (this.lastId) q.set('last_event_id', this.lastId);
    const open = this.deps.open ?? ((u: string) => new EventSource(u));
    const es = open(`/api/v1/stream?${q}`);
    this.es = es;
    es.addEventListener('ready', () => {
      this.attempts = 0;
      this.setStatus('live');
    });
    es.addEventListener('reset', (e) => {
      this.attempts = 0;
      this.lastId = (e as MessageEvent).lastEventId || this.lastId;
      this.setStatus('live');
      this.resetListeners.forEach((l) => l());
    });
    es.onmessage = (e: MessageEvent) => {
      if (e.lastEventId) this.lastId = e.lastEventId;
      let ev: LiveEvent;
      try {
        ev = JSON.parse(e.data as string) as LiveEvent;
      } catch {
        return;
      }
      this.listeners.forEach((l) => l(ev));
    };
    es.onerror = () => {
      // Reopen ourselves: the browser's own retry would reuse an expired token.
      es.close();
      if (this.es === es) this.es = null;
      this.retry();
    };
  }

  private retry() {
    if (!this.running) return;
    this.attempts++;
    this.setStatus('down');
    const delay = Math.min(15_000, 500 * 2 ** Math.min(this.attempts - 1, 5));
    this.timer = setTimeout(() => void this.connect(), delay);
  }
}
