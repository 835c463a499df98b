// The knowledge base: a manager writes an article with the rich editor and
// publishes it; the customer reads it in the portal; an internal article
// stays with staff.
import { expect, test } from '@playwright/test';
import { axe, screenshot, signIn, unique, USERS } from './helpers';

test('a manager publishes an article the customer then reads; internal ones stay internal', async ({ browser }) => {
  test.setTimeout(120_000);
  const title = unique('Resetting your VPN');
  const secret = unique('Internal escalation path');
  const manager = await signIn(browser, USERS.manager);
  const mp = manager.page;
  await mp.getByRole('link', { name: 'Knowledge base' }).click();
  await expect(mp.getByTestId('kb')).toBeVisible();
  await axe(mp, 'desk knowledge base');

  for (const [name, internal] of [[title, false], [secret, true]] as const) {
    await mp.goto('/desk/kb');
    await mp.getByRole('link', { name: 'New article' }).click();
    await mp.getByLabel('Title').fill(name);
    if (internal) await mp.getByRole('radiogroup', { name: 'Who can read it' }).getByText('Internal').click();
    const editor = mp.getByLabel('Content', { exact: true }).and(mp.locator('[contenteditable=true]'));
    await editor.click();
    await mp.keyboard.type('Open the client and choose ');
    await mp.keyboard.press('Control+b');
    await mp.keyboard.type('Reset');
    await mp.keyboard.press('Control+b');
    await mp.keyboard.type('.');
    if (!internal) await axe(mp, 'desk knowledge base editor');
    await mp.getByRole('button', { name: 'Save' }).click();
    await expect(mp.getByTestId('kb-article')).toBeVisible();
    await mp.getByRole('button', { name: 'Publish' }).click();
    await expect(mp.getByTestId('kb-article').getByText('Published', { exact: true })).toBeVisible();
  }
  await expect(mp.getByTestId('kb-content').locator('strong')).toHaveText('Reset');
  await screenshot(mp, 'desk-kb-article');

  const customer = await signIn(browser, USERS.customer);
  const cp = customer.page;
  await cp.getByRole('link', { name: 'Help articles' }).click();
  await cp.getByRole('textbox', { name: 'Search articles' }).fill(title.split(' ').slice(-1)[0]);
  await cp.getByTestId('kb-item').filter({ hasText: title }).click();
  await expect(cp.getByTestId('kb-content').locator('strong')).toHaveText('Reset');
  await screenshot(cp, 'portal-kb-article');
  await axe(cp, 'portal knowledge base article');
  await cp.goto('/portal/kb');
  await expect(cp.getByTestId('kb-item').filter({ hasText: title })).toBeVisible();
  await expect(cp.getByTestId('kb-item').filter({ hasText: secret })).toHaveCount(0);
  await axe(cp, 'portal knowledge base');

  await manager.context.close();
  await customer.context.close();
});
