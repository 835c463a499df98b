// Who may see what: roles without access get the 403 page, anonymous
// visitors the sign-in page (and back afterwards), unknown things a 404.
import { expect, test } from '@playwright/test';
import { axe, PASSWORD, screenshot, signIn, USERS, watchConsole } from './helpers';

test('a customer opening the desk gets the 403 page', async ({ browser }) => {
  const { context, page } = await signIn(browser, USERS.customer);
  await page.goto('/desk');
  await expect(page.getByTestId('forbidden')).toBeVisible();
  await expect(page.getByRole('heading', { level: 1 })).toHaveText('403');
  await page.goto('/desk/tickets?queue=new');
  await expect(page.getByTestId('forbidden')).toBeVisible();
  await screenshot(page, 'forbidden');
  await axe(page, '403 page');
  await context.close();
});

test('an agent may not open the managers\' inbox', async ({ browser }) => {
  const { context, page } = await signIn(browser, USERS.agent);
  await expect(page.getByRole('link', { name: 'Inbox' })).toHaveCount(0);
  await page.goto('/desk/inbox');
  await expect(page.getByTestId('forbidden')).toBeVisible();
  await context.close();
});

test('anonymous visitors sign in and come back to where they were going', async ({ page }) => {
  watchConsole(page);
  await page.goto('/portal/new');
  await expect(page).toHaveURL(/\/login\?next=/);
  await page.getByLabel('E-mail').fill(USERS.customer);
  await page.getByRole('textbox', { name: 'Password' }).fill(PASSWORD);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await expect(page).toHaveURL(/\/portal\/new$/);
  await expect(page.getByRole('heading', { name: 'New ticket' })).toBeVisible();
});

test('a wrong password is refused with a message', async ({ page }) => {
  await page.goto('/login');
  await page.getByLabel('E-mail').fill('nobody@acme.test');
  await page.getByRole('textbox', { name: 'Password' }).fill('not-the-password');
  await page.getByRole('button', { name: 'Sign in' }).click();
  await expect(page.getByRole('alert')).toContainText('do not match');
  await expect(page).toHaveURL(/\/login/);
});

test('unknown pages and tickets answer 404', async ({ browser }) => {
  const { context, page } = await signIn(browser, USERS.agent);
  await page.goto('/no/such/page');
  await expect(page.getByTestId('not-found')).toBeVisible();
  await page.goto('/desk/tickets/0190c0de-0000-7000-8000-000000000000');
  await expect(page.getByTestId('not-found')).toBeVisible({ timeout: 20_000 });
  await context.close();
});

test('signing out ends the session', async ({ browser }) => {
  const { context, page } = await signIn(browser, USERS.customer);
  await page.getByTestId('user-menu').click();
  await page.getByRole('menuitem', { name: 'Sign out' }).click();
  await expect(page).toHaveURL(/\/$/);
  await page.goto('/portal');
  await expect(page).toHaveURL(/\/login/);
  await context.close();
});

test('administration is for admins only', async ({ browser }) => {
  const manager = await signIn(browser, USERS.manager);
  await expect(manager.page.getByRole('link', { name: 'Administration' })).toHaveCount(0);
  await manager.page.goto('/desk/admin');
  await expect(manager.page.getByTestId('forbidden')).toBeVisible();
  await manager.context.close();

  const admin = await signIn(browser, USERS.admin);
  await admin.page.getByRole('link', { name: 'Administration' }).click();
  await expect(admin.page.getByTestId('users')).toContainText('customer_user@acme.test');
  await axe(admin.page, 'admin users');
  await admin.page.getByRole('tab', { name: 'Pipeline tasks' }).click();
  await expect(admin.page.getByTestId('empty-state').or(admin.page.getByTestId('archived-tasks'))).toBeVisible();
  await screenshot(admin.page, 'desk-admin');
  await axe(admin.page, 'admin tasks');
  await admin.context.close();
});
