// The seed's Test 2: two browser contexts on the same ticket; a comment
// written in one appears in the other within 2 s, without a reload.
import { expect, test, type Page } from '@playwright/test';
import { apiCreateTicket, apiLogin, recordBudget, signIn, unique, USERS } from './helpers';

test('Test 2: a comment appears in the other browser within 2 s', async ({ browser, request }) => {
  const token = await apiLogin(request, USERS.customer);
  const tk = await apiCreateTicket(request, token, unique('Live update check'));

  const customer = await signIn(browser, USERS.customer);
  const agent = await signIn(browser, USERS.agent);
  await customer.page.goto(`/portal/tickets/${tk.id}`);
  await agent.page.goto(`/desk/tickets/${tk.id}`);
  for (const p of [customer.page, agent.page]) {
    await expect(p.getByTestId('live-indicator')).toHaveAttribute('data-live', 'live');
  }
  const navigations: string[] = [];
  agent.page.on('framenavigated', (f) => f === agent.page.mainFrame() && navigations.push(f.url()));

  // Customer → agent: the agent's draft survives and the indicator shows.
  await agent.page.keyboard.press('r');
  await agent.page.getByLabel('Reply', { exact: true }).fill('Half-written answer');
  const text1 = `Customer says hello ${Date.now()}`;
  await customer.page.getByLabel('Reply', { exact: true }).fill(text1);
  const t0 = Date.now();
  await customer.page.getByRole('button', { name: 'Send reply' }).click();
  await appears(agent.page, text1);
  const customerToAgent = Date.now() - t0;
  await expect(agent.page.getByTestId('comment').filter({ hasText: text1 })).toBeVisible();
  await expect(agent.page.getByTestId('new-reply')).toBeVisible();
  // The reply box is the rich editor (contenteditable): the draft is its text.
  await expect(agent.page.getByLabel('Reply', { exact: true })).toHaveText('Half-written answer');

  // Agent → customer.
  const text2 = `Agent answers ${Date.now()}`;
  await agent.page.getByLabel('Reply', { exact: true }).fill(text2);
  const t1 = Date.now();
  await agent.page.getByRole('button', { name: 'Send reply' }).click();
  await appears(customer.page, text2);
  const agentToCustomer = Date.now() - t1;
  await expect(customer.page.getByTestId('comment').filter({ hasText: text2 })).toBeVisible();

  expect(navigations, 'no reload').toEqual([]);
  recordBudget('live comment latency ms (click to visible in the other browser)', { customerToAgent, agentToCustomer, limit: 2000 });
  await customer.context.close();
  await agent.context.close();
});

/** appears waits (checking every frame, at most 2 s) until a comment with text is in the thread. */
async function appears(page: Page, text: string) {
  await page.waitForFunction(
    (t) => [...document.querySelectorAll('[data-testid="comment"]')].some((el) => el.textContent?.includes(t)),
    text, { polling: 'raf', timeout: 2_000 });
}
