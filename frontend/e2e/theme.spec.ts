// The light theme (dark is the default): the toggle switches it, the choice
// survives a reload and signing in, and the main pages still pass axe.
import { expect, test } from '@playwright/test';
import { apiCreateTicket, apiLogin, axe, screenshot, signIn, unique, USERS, watchConsole } from './helpers';

test('the light theme is one click away and passes axe', async ({ browser, request }) => {
  test.setTimeout(120_000);
  const context = await browser.newContext();
  const page = await context.newPage();
  watchConsole(page);
  await page.goto('/');
  const html = page.locator('html');
  await expect(html).toHaveAttribute('data-mantine-color-scheme', 'dark');
  await page.getByRole('button', { name: 'Switch to the light theme' }).click();
  await expect(html).toHaveAttribute('data-mantine-color-scheme', 'light');
  await page.reload();
  await expect(html).toHaveAttribute('data-mantine-color-scheme', 'light');
  await screenshot(page, 'landing-light');
  await axe(page, 'landing (light)');
  await context.close();

  // Signed in: the portal's ticket page and the desk's ticket page, light.
  const token = await apiLogin(request, USERS.customer);
  const tk = await apiCreateTicket(request, token, unique('Light theme'));
  const customer = await signIn(browser, USERS.customer);
  await customer.page.getByRole('button', { name: 'Switch to the light theme' }).click();
  await customer.page.goto(`/portal/tickets/${tk.id}`);
  await expect(customer.page.getByTestId('portal-ticket')).toBeVisible();
  await expect(customer.page.getByTestId('reply-editor')).toBeVisible();
  await screenshot(customer.page, 'portal-ticket-light');
  await axe(customer.page, 'portal ticket (light)');
  const agent = await signIn(browser, USERS.agent);
  await agent.page.getByRole('button', { name: 'Switch to the light theme' }).click();
  await agent.page.goto(`/desk/tickets/${tk.id}`);
  await expect(agent.page.getByTestId('desk-ticket')).toBeVisible();
  await agent.page.keyboard.press('n');
  await expect(agent.page.getByTestId('reply-box')).toHaveAttribute('data-internal', 'true');
  await screenshot(agent.page, 'desk-ticket-light');
  await axe(agent.page, 'desk ticket (light)');
  await agent.page.goto('/desk/tickets');
  await expect(agent.page.locator('tr[data-ticket-id]').first()).toBeVisible();
  await axe(agent.page, 'desk ticket list (light)');
  await customer.context.close();
  await agent.context.close();
});
