// The public pages, the serving of the app (CSP, caching, fallback) and
// accessibility of the landing and sign-in pages.
import { expect, test } from '@playwright/test';
import { axe, screenshot, signIn, USERS, watchConsole } from './helpers';

test('landing and sign-in pages', async ({ page }) => {
  watchConsole(page);
  await page.goto('/');
  await expect(page.getByRole('heading', { level: 1 })).toHaveText('ATUM DESK');
  await screenshot(page, 'landing');
  await axe(page, 'landing');
  await page.getByRole('link', { name: 'Sign in' }).first().click();
  await expect(page).toHaveURL(/\/login$/);
  await screenshot(page, 'login');
  await axe(page, 'login');
});

test('the app is served with a strict CSP, long-cached assets and an SPA fallback', async ({ request }) => {
  const index = await request.get('/desk/tickets?queue=mine');
  expect(index.status()).toBe(200);
  const csp = index.headers()['content-security-policy'];
  expect(csp).toContain("default-src 'none'");
  expect(csp).toContain("script-src 'self';");
  expect(csp).toMatch(/style-src-elem 'self' 'nonce-[A-Za-z0-9+/=]{24}'/);
  expect(csp).not.toMatch(/script-src[^;]*unsafe-inline/);
  expect(csp).not.toMatch(/https?:/); // no third-party origin
  expect(index.headers()['cache-control']).toBe('no-cache');
  const html = await index.text();
  expect(html).not.toMatch(/<script(?![^>]*\bsrc=)[^>]*>/); // no inline script
  expect(html).not.toContain('__CSP_NONCE__');
  const nonce = /nonce-([^']+)'/.exec(csp)![1];
  expect(html).toContain(`content="${nonce}"`);
  expect(html).not.toMatch(/https?:\/\/(?!127\.0\.0\.1)/); // nothing from a CDN

  const js = /src="(\/assets\/[^"]+\.js)"/.exec(html)![1];
  const asset = await request.get(js, { headers: { 'Accept-Encoding': 'gzip' } });
  expect(asset.status()).toBe(200);
  expect(asset.headers()['cache-control']).toBe('public, max-age=31536000, immutable');
  expect(asset.headers()['content-type']).toContain('javascript');
  expect((await request.get('/assets/missing-0000.js')).status()).toBe(404);
  expect((await request.get('/favicon.svg')).headers()['content-type']).toContain('image/svg+xml');
  expect((await request.get('/manifest.webmanifest')).headers()['content-type']).toContain('manifest+json');

  // The API and operational routes are untouched by the fallback.
  const api = await request.get('/api/v1/no-such-route');
  expect(api.status()).toBe(404);
  expect(api.headers()['content-type']).toContain('application/problem+json');
  expect((await request.get('/healthz')).status()).toBe(200);
  expect((await request.get('/metrics')).status()).toBe(200);
});

test('the portal works on a phone', async ({ browser }) => {
  const { context, page } = await signIn(browser, USERS.customer);
  await page.setViewportSize({ width: 390, height: 844 });
  await page.goto('/portal');
  await expect(page.getByRole('heading', { name: 'My tickets' })).toBeVisible();
  await screenshot(page, 'portal-phone');
  await axe(page, 'portal on a phone');
  await context.close();
});
