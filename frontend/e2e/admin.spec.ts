// The admin pages: an admin adds and manages a user, creates a service and
// an SLA policy (with its own business hours) through the UI; every admin
// page passes axe.
import { expect, test, type Page } from '@playwright/test';
import { axe, screenshot, signIn, unique, USERS } from './helpers';

test('an admin creates a service and an SLA policy; the admin pages pass axe', async ({ browser }) => {
  test.setTimeout(120_000);
  const service = unique('E2E Service');
  const policy = unique('E2E Policy');
  const { context, page } = await signIn(browser, USERS.admin);
  await page.getByRole('link', { name: 'Administration' }).click();

  // Users: add one, promote them, deactivate them.
  const email = `${unique('e2e-user').replace(/\s+/g, '-')}@acme.test`.toLowerCase();
  await page.getByRole('button', { name: 'New user' }).click();
  const udlg = page.getByRole('dialog', { name: 'New user' });
  await udlg.getByLabel('E-mail').fill(email);
  await udlg.getByLabel('Name').fill('Erin Example');
  await udlg.getByRole('button', { name: 'Save' }).click();
  await expect(udlg).toHaveCount(0);
  const urow = page.getByTestId('user-row').filter({ hasText: email });
  await expect(urow).toContainText('Erin Example');
  await urow.getByRole('textbox', { name: 'Role of Erin Example' }).or(urow.getByRole('combobox', { name: 'Role of Erin Example' })).first().click();
  await page.getByRole('option', { name: 'Agent' }).click();
  await expect(urow.getByRole('textbox', { name: 'Role of Erin Example' }).or(urow.getByRole('combobox', { name: 'Role of Erin Example' })).first())
    .toHaveValue('Agent');
  await urow.getByRole('button', { name: 'Deactivate' }).click();
  await page.getByRole('dialog').getByRole('button', { name: 'Deactivate' }).click();
  await expect(urow).toContainText('Inactive');
  await axe(page, 'admin users (managed)');

  // Services: create one.
  await tab(page, 'Services');
  await page.getByRole('button', { name: 'New service' }).click();
  const sdlg = page.getByRole('dialog', { name: 'New service' });
  await sdlg.getByLabel('Name').fill(service);
  await sdlg.getByLabel('Description').fill('Printers, copiers and scanners.');
  await axe(page, 'admin service form');
  await sdlg.getByRole('button', { name: 'Save' }).click();
  await expect(sdlg).toHaveCount(0);
  await expect(page.getByTestId('service-row').filter({ hasText: service })).toBeVisible();
  await screenshot(page, 'desk-admin-services');
  await axe(page, 'admin services');

  // SLA policies: one for that service, on its own office hours.
  await tab(page, 'SLA policies');
  await page.getByRole('button', { name: 'New SLA policy' }).click();
  const pdlg = page.getByRole('dialog', { name: 'New SLA policy' });
  await pdlg.getByLabel('Name').fill(policy);
  await pdlg.getByRole('textbox', { name: 'Service' }).or(pdlg.getByRole('combobox', { name: 'Service' })).first().click();
  await page.getByRole('option', { name: service }).click();
  await pdlg.getByLabel('First response target for High, minutes').fill('30');
  await pdlg.getByText('Own business hours').click();
  await pdlg.getByRole('button', { name: 'Mon–Fri 9–17' }).click();
  await pdlg.getByRole('button', { name: 'Add an interval on Friday' }).click(); // a late shift on Friday
  await pdlg.getByLabel('Friday opens (interval 2)').fill('18:00');
  await pdlg.getByLabel('Friday closes (interval 2)').fill('20:00');
  await expect(pdlg.getByTestId('hours-total')).toHaveText('42 h a week');
  await screenshot(page, 'desk-admin-sla-form');
  await axe(page, 'admin SLA policy form');
  await pdlg.getByRole('button', { name: 'Save' }).click();
  await expect(pdlg).toHaveCount(0);
  const row = page.getByTestId('sla-row').filter({ hasText: policy });
  await expect(row).toContainText(service);
  await expect(row).toContainText('High 30 min');
  await expect(row).toContainText('Own business hours');
  await screenshot(page, 'desk-admin-sla');
  await axe(page, 'admin SLA policies');

  // The stored policy has exactly those hours.
  const stored = await page.evaluate(async (name) => {
    const tok = await (await fetch('/api/v1/auth/refresh', { method: 'POST' })).json();
    const res = await fetch('/api/v1/sla/policies', { headers: { Authorization: `Bearer ${tok.access_token}` } });
    return ((await res.json()).items as { name: string; business_hours: Record<string, string[][]> }[]).find((p) => p.name === name);
  }, policy);
  expect(stored?.business_hours.fri).toEqual([['09:00', '17:00'], ['18:00', '20:00']]);
  expect(stored?.business_hours.sat).toBeUndefined();

  // The other admin pages render and pass axe.
  await tab(page, 'Organisation');
  await expect(page.getByTestId('org-form')).toBeVisible();
  await screenshot(page, 'desk-admin-organisation');
  await axe(page, 'admin organisation');
  await tab(page, 'Mailboxes');
  await expect(page.getByTestId('mailboxes').or(page.getByTestId('empty-state'))).toBeVisible();
  await page.getByRole('button', { name: 'New mailbox' }).click();
  await axe(page, 'admin mailbox form');
  await page.getByRole('dialog', { name: 'New mailbox' }).getByRole('button', { name: 'Cancel' }).click();
  await axe(page, 'admin mailboxes');
  await tab(page, 'Canned responses');
  await expect(page.getByTestId('canned').or(page.getByTestId('empty-state'))).toBeVisible();
  await axe(page, 'admin canned responses');
  await context.close();
});

async function tab(page: Page, name: string) {
  await page.getByRole('tab', { name }).click();
  await expect(page.getByRole('tab', { name, selected: true })).toBeVisible();
}
