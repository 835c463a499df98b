import { describe, expect, it, vi } from 'vitest';
import { homeFor, isStaff, LoginError, Session } from './session';

const me = { id: 'u1', org_id: 'o1', email: 'c@acme.test', name: 'Casey', role: 'customer_user', is_active: true, totp_enabled: false, created_at: '', updated_at: '' };
const tokens = (n = 1) => ({ access_token: `tok${n}`, token_type: 'Bearer', expires_in: 900, refresh_token: 'r' });
const json = (body: unknown, status = 200) => new Response(JSON.stringify(body), { status, headers: { 'Content-Type': 'application/json' } });

describe('Session', () => {
  it('restores a session with one refresh and loads the user', async () => {
    const fetchFn = vi.fn(async (url: RequestInfo | URL) => (String(url).endsWith('/refresh') ? json(tokens()) : json(me)));
    const s = new Session(fetchFn as typeof fetch);
    const st = await s.ready();
    expect(st.status).toBe('authenticated');
    expect(await s.accessToken()).toBe('tok1');
    expect(fetchFn).toHaveBeenCalledTimes(2);
  });

  it('is anonymous when the refresh cookie is refused', async () => {
    const s = new Session((async () => json({ title: 'Unauthorized', status: 401 }, 401)) as typeof fetch);
    expect((await s.ready()).status).toBe('anonymous');
    expect(await s.accessToken()).toBeNull();
  });

  it('runs concurrent refreshes once (a refresh token is single-use)', async () => {
    let calls = 0;
    const fetchFn = vi.fn(async (url: RequestInfo | URL) => {
      if (String(url).endsWith('/refresh')) {
        calls++;
        await new Promise((r) => setTimeout(r, 10));
        return json(tokens(calls));
      }
      return json(me);
    });
    const s = new Session(fetchFn as typeof fetch);
    const all = await Promise.all([s.refresh(), s.refresh(), s.refresh()]);
    expect(all).toEqual([true, true, true]);
    expect(calls).toBe(1);
  });

  it('reports lockout with its Retry-After', async () => {
    const s = new Session((async () => new Response('{"detail":"locked"}', { status: 429, headers: { 'Retry-After': '600' } })) as typeof fetch);
    const err = await s.login('a@b.c', 'x').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(LoginError);
    expect((err as LoginError).status).toBe(429);
    expect((err as LoginError).retryAfter).toBe(600);
  });

  it('expires an authenticated session and says so', async () => {
    const s = new Session((async (url: RequestInfo | URL) => (String(url).endsWith('/login') ? json(tokens()) : json(me))) as typeof fetch);
    await s.login('c@acme.test', 'pw');
    const seen: string[] = [];
    s.subscribe(() => seen.push(s.getState().status));
    s.expire();
    expect(s.getState()).toEqual({ status: 'anonymous', user: null, expired: true });
    expect(seen).toEqual(['anonymous']);
  });
});

describe('roles', () => {
  it('sends staff to the desk and customers to the portal', () => {
    expect(homeFor({ role: 'agent' })).toBe('/desk');
    expect(homeFor({ role: 'admin' })).toBe('/desk');
    expect(homeFor({ role: 'customer_admin' })).toBe('/portal');
    expect(isStaff({ role: 'customer_user' })).toBe(false);
    expect(isStaff(null)).toBe(false);
  });
});
