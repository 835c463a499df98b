// Filing with a service and a file: the portal lists the file (and it
// downloads), the desk shows the chosen service; a file added later shows
// live; a rich reply keeps its formatting on the customer's page.
import { expect, test } from '@playwright/test';
import { apiLogin, axe, screenshot, signIn, unique, USERS } from './helpers';

test('a service and a file chosen at filing show in the portal and the desk; rich replies', async ({ browser, request }) => {
  test.setTimeout(120_000);
  // A service to choose (the admin UI is covered by admin.spec.ts).
  const admin = await apiLogin(request, USERS.admin);
  const service = unique('Network');
  const created = await request.post('/api/v1/services', { headers: { Authorization: `Bearer ${admin}` }, data: { name: service } });
  expect(created.status(), await created.text()).toBe(201);

  const subject = unique('VPN drops');
  const customer = await signIn(browser, USERS.customer);
  const cp = customer.page;
  await cp.getByRole('link', { name: 'New ticket' }).first().click();
  await cp.getByRole('textbox', { name: 'Service' }).or(cp.getByRole('combobox', { name: 'Service' })).first().click();
  await cp.getByRole('option', { name: service }).click();
  await cp.getByLabel('Subject').fill(subject);
  await cp.getByLabel('Description').fill('The VPN disconnects every ten minutes.');
  await cp.locator('input[type=file]').setInputFiles({ name: 'vpn-log.txt', mimeType: 'text/plain', buffer: Buffer.from('tunnel reset 0x17\n') });
  await expect(cp.locator('[data-testid=upload-item][data-status=done]')).toHaveCount(1);
  await cp.getByRole('button', { name: 'Submit ticket' }).click();
  await cp.waitForURL(/\/portal\/tickets\/[0-9a-f-]{36}$/);
  const ticketId = cp.url().split('/').pop()!;

  // The portal lists the file and downloads it with the session's token.
  const file = cp.getByTestId('attachment').filter({ hasText: 'vpn-log.txt' });
  await expect(file).toBeVisible();
  await expect(cp.getByTestId('ticket-service')).toHaveText(service);
  const download = cp.waitForEvent('download');
  await file.getByRole('button', { name: 'Download vpn-log.txt' }).click();
  const dl = await download;
  expect(dl.suggestedFilename()).toBe('vpn-log.txt');
  expect((await import('node:fs')).readFileSync(await dl.path()).toString()).toContain('tunnel reset 0x17');

  // The desk shows the service chosen at filing, and the file.
  const agent = await signIn(browser, USERS.agent);
  const ap = agent.page;
  await ap.goto(`/desk/tickets/${ticketId}`);
  await expect(ap.getByTestId('service-select')).toHaveValue(service);
  await expect(ap.getByTestId('attachment').filter({ hasText: 'vpn-log.txt' })).toBeVisible();

  // The customer adds a file to the open ticket; the agent's page lists it live.
  await cp.getByTestId('attachments-panel').locator('input[type=file]')
    .setInputFiles({ name: 'later.txt', mimeType: 'text/plain', buffer: Buffer.from('one more log\n') });
  await expect(cp.getByTestId('attachment').filter({ hasText: 'later.txt' })).toBeVisible();
  await expect(ap.getByTestId('attachment').filter({ hasText: 'later.txt' })).toBeVisible();

  // A canned response, filled in for this ticket, starts the reply.
  await ap.getByRole('textbox', { name: 'Insert canned response' }).or(ap.getByRole('combobox', { name: 'Insert canned response' })).first().click();
  await ap.getByRole('option', { name: 'Greeting' }).click();
  const editor = ap.getByLabel('Reply', { exact: true });
  await expect(editor).toContainText('thank you for contacting Acme support');
  await expect(editor).toContainText('Casey Customer');
  await expect(editor).not.toContainText('{{');

  // Then rich text: bold and a list, written with the toolbar and shortcuts.
  await ap.locator('body').click({ position: { x: 5, y: 400 } }); // out of the editor, so r is a shortcut
  await ap.keyboard.press('r');
  await expect(editor).toBeFocused();
  await ap.keyboard.type('Please try ');
  await ap.keyboard.press('Control+b');
  await ap.keyboard.type('this first');
  await ap.keyboard.press('Control+b');
  await ap.keyboard.press('Enter');
  await ap.getByRole('button', { name: 'Bulleted list' }).click();
  await ap.keyboard.type('restart the client');
  await ap.keyboard.press('Enter');
  await ap.keyboard.type('update it');
  await screenshot(ap, 'desk-reply-editor');
  await axe(ap, 'desk ticket with rich editor');
  await ap.keyboard.press('Control+Enter');
  await expect(ap.getByTestId('comment').filter({ hasText: 'this first' }).locator('strong')).toHaveText('this first');

  // The customer's page shows it formatted, live.
  const reply = cp.getByTestId('comment').filter({ hasText: 'this first' });
  await expect(reply.locator('strong')).toHaveText('this first');
  await expect(reply.locator('li')).toHaveText(['restart the client', 'update it']);
  await expect(reply).toContainText('thank you for contacting Acme support');
  await screenshot(cp, 'portal-ticket-files');
  await axe(cp, 'portal ticket with files');

  await customer.context.close();
  await agent.context.close();
});
