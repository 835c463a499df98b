import { MantineProvider } from '@mantine/core';
import { render } from '@testing-library/react';
import type { ReactElement } from 'react';
import { I18nextProvider } from 'react-i18next';
import { createI18n } from '../i18n';
import { theme } from '../theme';

/** renderUI renders with the app's theme and English strings. */
export function renderUI(ui: ReactElement) {
  const i18n = createI18n();
  return render(
    <I18nextProvider i18n={i18n}>
      <MantineProvider theme={theme} forceColorScheme="dark">{ui}</MantineProvider>
    </I18nextProvider>,
  );
}
