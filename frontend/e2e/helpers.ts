import { expect, type APIRequestContext, type Browser, type BrowserContext, type Page } from '@playwright/test';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import AxeBuilderSource from 'axe-core';

const HERE = path.dirname(fileURLToPath(import.meta.url));

export const PASSWORD = process.env.E2E_PASSWORD ?? '';
export const USERS = {
  customer: 'customer_user@acme.test',
  customerAdmin: 'customer_admin@acme.test',
  agent: 'agent@acme.test',
  manager: 'manager@acme.test',
  admin: 'admin@acme.test',
} as const;

export const ARTIFACTS = path.resolve(HERE, '..', 'test-results');
const SHOTS = path.join(ARTIFACTS, 'screenshots');
// The screenshots the README shows (docs/screenshots/, refreshed with E2E_UPDATE_SCREENSHOTS=1).
const README_SHOTS = ['landing', 'portal-ticket', 'desk-ticket', 'desk-list'];

/** signIn opens /login in a fresh context and signs in through the form. */
export async function signIn(browser: Browser, email: string): Promise<{ context: BrowserContext; page: Page }> {
  const context = await browser.newContext();
  const page = await context.newPage();
  watchConsole(page);
  await page.goto('/login');
  await page.getByLabel('E-mail').fill(email);
  await page.getByRole('textbox', { name: 'Password' }).fill(PASSWORD);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.waitForURL(/\/(desk|portal)/);
  return { context, page };
}

/** watchConsole fails the test on a CSP violation or an uncaught error in the page. */
export function watchConsole(page: Page) {
  page.on('console', (msg) => {
    const text = msg.text();
    if (/Content.Security.Policy|Refused to/i.test(text)) throw new Error(`CSP violation: ${text}`);
  });
  page.on('pageerror', (err) => {
    throw new Error(`page error: ${err.message}`);
  });
}

export async function screenshot(page: Page, name: string) {
  fs.mkdirSync(SHOTS, { recursive: true });
  await page.screenshot({ path: path.join(SHOTS, `${name}.png`), fullPage: false });
  if (process.env.E2E_UPDATE_SCREENSHOTS === '1' && README_SHOTS.includes(name)) {
    const docs = path.resolve(HERE, '..', '..', 'docs', 'screenshots');
    fs.mkdirSync(docs, { recursive: true });
    fs.copyFileSync(path.join(SHOTS, `${name}.png`), path.join(docs, `${name}.png`));
  }
}

/** axe runs axe-core in the page and fails on serious or critical violations. */
export async function axe(page: Page, label: string) {
  await page.evaluate(AxeBuilderSource.source);
  const result = await page.evaluate(async () => {
    const w = window as unknown as { axe: { run: (ctx: Document, opts: object) => Promise<{ violations: { id: string; impact: string; help: string; nodes: { target: string[]; html: string }[] }[] }> } };
    return w.axe.run(document, { resultTypes: ['violations'] });
  });
  const bad = result.violations.filter((v) => v.impact === 'serious' || v.impact === 'critical');
  const summary = bad.map((v) => `${v.impact} ${v.id}: ${v.help} — ${v.nodes.slice(0, 3).map((n) => `${n.target.join(' ')} ${n.html.slice(0, 160)}`).join(', ')}`);
  recordBudget(`axe:${label}`, { serious_or_critical: bad.length, all: result.violations.length });
  expect(summary, `axe on ${label}`).toEqual([]);
}

/** recordBudget appends a measured figure to test-results/budgets.json. */
export function recordBudget(name: string, value: unknown) {
  fs.mkdirSync(ARTIFACTS, { recursive: true });
  const file = path.join(ARTIFACTS, 'budgets.json');
  const all = fs.existsSync(file) ? JSON.parse(fs.readFileSync(file, 'utf8')) : {};
  all[name] = value;
  fs.writeFileSync(file, JSON.stringify(all, null, 2) + '\n');
  console.log(`[budget] ${name}: ${JSON.stringify(value)}`);
}

/** apiLogin returns an access token for direct API calls (test setup only). */
export async function apiLogin(request: APIRequestContext, email: string): Promise<string> {
  const res = await request.post('/api/v1/auth/login', { data: { email, password: PASSWORD } });
  expect(res.status()).toBe(200);
  return (await res.json()).access_token as string;
}

export async function apiCreateTicket(request: APIRequestContext, token: string, subject: string, description = 'Filed by the e2e suite.') {
  const res = await request.post('/api/v1/tickets', {
    headers: { Authorization: `Bearer ${token}`, Prefer: 'wait=5' },
    data: { subject, description },
  });
  expect(res.status(), await res.text()).toBe(201);
  return (await res.json()) as { id: string; number: number };
}

export function unique(prefix: string) {
  return `${prefix} ${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 6)}`;
}
