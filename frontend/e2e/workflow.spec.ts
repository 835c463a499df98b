// The seed's Test 1 through the UI: a customer files a ticket with an
// attachment in the portal; a manager accepts and assigns it in the desk;
// the agent writes an internal note and a public reply; the customer's open
// page shows the reply live and never the note; waiting for the customer,
// the customer's reply reopens work; resolved; the customer rates it and
// closes it; closed is read-only on both sides.
import { expect, test, type Page } from '@playwright/test';
import { axe, screenshot, signIn, unique, USERS } from './helpers';

test('Test 1: ticket lifecycle through the portal and the desk', async ({ browser }) => {
  test.setTimeout(180_000);
  const subject = unique('Printer on fire');
  const canary = `CANARY-${Math.random().toString(36).slice(2)}`;

  // The customer files the ticket with an attachment.
  const customer = await signIn(browser, USERS.customer);
  const cp = customer.page;
  await expect(cp).toHaveURL(/\/portal$/);
  await cp.getByRole('link', { name: 'New ticket' }).first().click();
  await cp.getByLabel('Subject').fill(subject);
  await cp.getByLabel('Description').fill('Smoke is coming out of the second-floor printer.\nIt smells of toner.');
  await cp.locator('label').filter({ hasText: /^High$/ }).click();
  const upload = cp.waitForResponse((r) => r.url().endsWith('/api/v1/attachments') && r.request().method() === 'POST');
  await cp.locator('input[type=file]').setInputFiles({ name: 'printer-log.txt', mimeType: 'text/plain', buffer: Buffer.from('E42 fuser overheat\n') });
  const attachmentId = ((await (await upload).json()) as { id: string }).id;
  await expect(cp.locator('[data-testid=upload-item][data-status=done]')).toHaveCount(1);
  await screenshot(cp, 'portal-new-ticket');
  await axe(cp, 'portal new ticket');
  await cp.getByRole('button', { name: 'Submit ticket' }).click();
  await cp.waitForURL(/\/portal\/tickets\/[0-9a-f-]{36}$/);
  const ticketId = cp.url().split('/').pop()!;
  await expect(cp.getByTestId('ticket-subject')).toHaveText(subject);
  await expect(cp.getByTestId('portal-ticket')).toHaveAttribute('data-status', 'new');

  // The manager accepts it from the inbox and assigns the agent.
  const manager = await signIn(browser, USERS.manager);
  const mp = manager.page;
  await expect(mp).toHaveURL(/\/desk$/);
  await mp.getByRole('link', { name: 'Inbox' }).click();
  const row = mp.locator(`tr[data-ticket-id="${ticketId}"]`);
  await expect(row).toBeVisible();
  await screenshot(mp, 'desk-inbox');
  await axe(mp, 'desk inbox');
  await row.getByRole('button', { name: 'Accept', exact: true }).click();
  await expect(row).toHaveCount(0);
  await mp.goto(`/desk/tickets/${ticketId}`);
  await expect(mp.getByTestId('desk-ticket')).toHaveAttribute('data-status', 'accepted');
  await pick(mp, 'Assignee', /Alex Agent/);
  await expect(mp.getByTestId('desk-ticket')).toHaveAttribute('data-status', 'assigned');
  // The customer's page follows without a reload.
  await expect(cp.getByTestId('portal-ticket')).toHaveAttribute('data-status', 'assigned');

  // The agent finds it under Mine, starts work, writes a note and a reply.
  const agent = await signIn(browser, USERS.agent);
  const ap = agent.page;
  await ap.goto('/desk/tickets?queue=mine');
  await ap.locator(`tr[data-ticket-id="${ticketId}"]`).click();
  await expect(ap.getByTestId('desk-ticket')).toHaveAttribute('data-status', 'assigned');
  await ap.getByRole('button', { name: 'Start work' }).click();
  await expect(ap.getByTestId('desk-ticket')).toHaveAttribute('data-status', 'in_progress');
  await ap.keyboard.press('n');
  await ap.getByLabel('Internal note (staff only)').fill(`Internal: the fuser is toast. ${canary}`);
  await ap.getByRole('button', { name: 'Add internal note' }).click();
  await expect(ap.getByTestId('internal-note')).toContainText(canary);
  await ap.getByLabel('Internal note (staff only)').blur();
  await ap.keyboard.press('r');
  await ap.getByLabel('Reply', { exact: true }).fill('We are sending a technician with a new fuser unit.');
  await ap.getByRole('button', { name: 'Send reply' }).click();
  await expect(ap.getByTestId('comment').filter({ hasText: 'new fuser unit' })).toBeVisible();
  await screenshot(ap, 'desk-ticket');
  await axe(ap, 'desk ticket');

  // The customer sees the reply live, never the note.
  await expect(cp.getByTestId('comment').filter({ hasText: 'new fuser unit' })).toBeVisible();
  await expect(cp.getByTestId('internal-note')).toHaveCount(0);
  expect(await cp.content()).not.toContain(canary);
  await screenshot(cp, 'portal-ticket');
  await axe(cp, 'portal ticket');

  // The attachment was filed with the ticket: staff can download it.
  const dl = await ap.request.get(`/api/v1/attachments/${attachmentId}`, {
    headers: { Authorization: `Bearer ${await token(ap)}` },
  });
  expect(dl.status()).toBe(200);
  expect(await dl.text()).toContain('E42 fuser overheat');

  // Waiting for the customer; the customer's reply moves it back to work.
  await ap.getByRole('button', { name: 'Wait for customer' }).click();
  await expect(cp.getByTestId('portal-ticket')).toHaveAttribute('data-status', 'waiting_customer');
  await cp.getByLabel('Reply', { exact: true }).fill('The technician fixed it, thanks!');
  await cp.getByRole('button', { name: 'Send reply' }).click();
  await expect(ap.getByTestId('desk-ticket')).toHaveAttribute('data-status', 'in_progress');
  await expect(ap.getByTestId('comment').filter({ hasText: 'technician fixed it' })).toBeVisible();

  // Resolved: the survey appears on the customer's page; they rate and close.
  await ap.getByRole('button', { name: 'Resolve' }).click();
  await expect(cp.getByTestId('portal-ticket')).toHaveAttribute('data-status', 'resolved');
  const csat = cp.getByTestId('csat');
  await expect(csat).toHaveAttribute('data-state', 'pending');
  const star = await csat.locator('input[type=radio][value="5"]').getAttribute('id'); // the fifth star
  await csat.locator(`label[for="${star}"]`).click();
  await csat.getByLabel('Anything to add? (optional)').fill('Fast and friendly.');
  await csat.getByRole('button', { name: 'Send rating' }).click();
  await expect(csat).toHaveAttribute('data-state', 'responded');
  await expect(csat).toContainText('You rated 5 of 5');
  await screenshot(cp, 'portal-csat');
  await cp.getByRole('button', { name: 'Close ticket' }).click();
  await expect(cp.getByTestId('portal-ticket')).toHaveAttribute('data-status', 'closed');

  // Closed is read-only for both.
  await expect(cp.getByTestId('read-only')).toBeVisible();
  await expect(cp.getByRole('button', { name: 'Send reply' })).toHaveCount(0);
  await expect(ap.getByTestId('desk-ticket')).toHaveAttribute('data-status', 'closed');
  await expect(ap.getByTestId('read-only')).toBeVisible();
  await expect(ap.getByTestId('workflow').getByRole('button', { name: /Resolve|Start work|Cancel ticket/ })).toHaveCount(0);

  // A reload keeps the session (refresh cookie) and still never shows the note.
  await cp.reload();
  await expect(cp.getByTestId('portal-ticket')).toHaveAttribute('data-status', 'closed');
  expect(await cp.content()).not.toContain(canary);

  await customer.context.close();
  await manager.context.close();
  await agent.context.close();
});

/** pick chooses an option of a Mantine Select by its label. */
async function pick(page: Page, label: string, option: RegExp) {
  await page.getByRole('textbox', { name: label }).or(page.getByRole('combobox', { name: label })).first().click();
  await page.getByRole('option', { name: option }).click();
}

/** token reads a fresh access token the way the app does (refresh cookie). */
async function token(page: Page): Promise<string> {
  const res = await page.request.post('/api/v1/auth/refresh');
  expect(res.status()).toBe(200);
  return ((await res.json()) as { access_token: string }).access_token;
}
