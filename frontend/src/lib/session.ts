// The browser session: the access token lives in memory only; the refresh
// token is an HttpOnly cookie scoped to /api/v1/auth that no script can
// read. A page load restores the session with one refresh.
import type { components } from '../api/schema';

type User = components['schemas']['User'];
type TokenPair = components['schemas']['TokenPair'];

export type SessionState =
  | { status: 'unknown'; user: null }
  | { status: 'anonymous'; user: null; expired?: boolean }
  | { status: 'authenticated'; user: User };

const STAFF = new Set(['agent', 'manager', 'admin']);

export function isStaff(user: { role: string } | null | undefined): boolean {
  return !!user && STAFF.has(user.role);
}

/** homeFor is where a user lands after signing in. */
export function homeFor(user: { role: string }): string {
  return isStaff(user) ? '/desk' : '/portal';
}

/** LoginError carries the API's status (401 bad credentials, 429 locked out). */
export class LoginError extends Error {
  constructor(readonly status: number, message: string, readonly retryAfter?: number) {
    super(message);
  }
}

// Refresh tokens are single-use: two tabs refreshing with the same cookie at
// once would look like a replay and revoke the family. A Web Lock serialises
// refreshes across tabs; the second one then sends the rotated cookie.
async function exclusive<T>(fn: () => Promise<T>): Promise<T> {
  const locks = typeof navigator !== 'undefined' ? navigator.locks : undefined;
  if (!locks) return fn();
  return locks.request('atumdesk-refresh', fn) as Promise<T>;
}

export class Session {
  private token: string | null = null;
  private expiresAt = 0;
  private refreshing: Promise<boolean> | null = null;
  private initialising: Promise<SessionState> | null = null;
  private state: SessionState = { status: 'unknown', user: null };
  private listeners = new Set<() => void>();
  private readonly fetchFn: typeof fetch;

  constructor(fetchFn: typeof fetch = (...a) => fetch(...a)) {
    this.fetchFn = fetchFn;
  }

  subscribe = (l: () => void) => {
    this.listeners.add(l);
    return () => {
      this.listeners.delete(l);
    };
  };

  getState = (): SessionState => this.state;

  private set(s: SessionState) {
    this.state = s;
    this.listeners.forEach((l) => l());
  }

  private take(pair: TokenPair) {
    this.token = pair.access_token;
    this.expiresAt = Date.now() + pair.expires_in * 1000;
  }

  /** ready resolves once the session is known (restored or anonymous). */
  ready(): Promise<SessionState> {
    if (this.state.status !== 'unknown') return Promise.resolve(this.state);
    this.initialising ??= (async () => {
      const ok = await this.refresh();
      const user = ok ? await this.loadMe() : null;
      this.set(user ? { status: 'authenticated', user } : { status: 'anonymous', user: null });
      return this.state;
    })();
    return this.initialising;
  }

  /** accessToken returns a token valid for at least 30 s more, refreshing if needed. */
  async accessToken(): Promise<string | null> {
    if (this.token && this.expiresAt - Date.now() > 30_000) return this.token;
    if (!this.token && this.state.status !== 'authenticated') return null;
    return (await this.refresh()) ? this.token : null;
  }

  /** refresh rotates the refresh cookie for a new access token (deduplicated). */
  refresh(): Promise<boolean> {
    this.refreshing ??= exclusive(async () => {
      try {
        const res = await this.fetchFn('/api/v1/auth/refresh', { method: 'POST', credentials: 'same-origin' });
        if (!res.ok) {
          this.token = null;
          return false;
        }
        this.take((await res.json()) as TokenPair);
        return true;
      } catch {
        return false;
      }
    }).finally(() => {
      this.refreshing = null;
    });
    return this.refreshing;
  }

  private async loadMe(): Promise<User | null> {
    const res = await this.fetchFn('/api/v1/me', { headers: { Authorization: `Bearer ${this.token}` } });
    return res.ok ? ((await res.json()) as User) : null;
  }

  async login(email: string, password: string): Promise<User> {
    const res = await this.fetchFn('/api/v1/auth/login', {
      method: 'POST',
      credentials: 'same-origin',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ email, password }),
    });
    if (!res.ok) {
      const retry = Number(res.headers.get('Retry-After')) || undefined;
      let detail = '';
      try {
        detail = ((await res.json()) as { detail?: string }).detail ?? '';
      } catch {
        /* not a problem document */
      }
      throw new LoginError(res.status, detail, retry);
    }
    this.take((await res.json()) as TokenPair);
    const user = await this.loadMe();
    if (!user) throw new LoginError(res.status, '');
    this.set({ status: 'authenticated', user });
    return user;
  }

  async logout(): Promise<void> {
    try {
      await this.fetchFn('/api/v1/auth/logout', { method: 'POST', credentials: 'same-origin' });
    } finally {
      this.token = null;
      this.set({ status: 'anonymous', user: null });
    }
  }

  /** expire ends a session the server no longer accepts (the refresh failed). */
  expire() {
    if (this.state.status !== 'authenticated') return;
    this.token = null;
    this.set({ status: 'anonymous', user: null, expired: true });
  }
}
