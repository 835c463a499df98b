import { MantineProvider } from '@mantine/core';
import { Notifications } from '@mantine/notifications';
import { QueryClient, QueryClientProvider } from '@tanstack/react-query';
import { RouterProvider } from '@tanstack/react-router';
import { useState } from 'react';
import { I18nextProvider } from 'react-i18next';
import { ApiError, createApiClient } from './api/client';
import { createI18n } from './i18n';
import { Live } from './lib/live';
import { styleNonce } from './lib/nonce';
import { ServicesContext, type Services } from './lib/services';
import { Session } from './lib/session';
import { createAppRouter } from './router';
import { cssVariablesResolver, theme, withLabels } from './theme';

export function createServices(): Services {
  const session = new Session();
  return { session, api: createApiClient(session), live: new Live({ token: () => session.accessToken() }) };
}

export function createQueryClient() {
  return new QueryClient({
    defaultOptions: {
      queries: {
        staleTime: 10_000,
        // A 4xx will not change by asking again; network failures and 5xx may.
        retry: (n, err) => !(err instanceof ApiError && err.status < 500) && n < 2,
        refetchOnWindowFocus: true,
      },
    },
  });
}


export function App({ services }: { services: Services }) {
  const [queryClient] = useState(createQueryClient);
  const [i18n] = useState(() => createI18n());
  const [router] = useState(() => createAppRouter({ services, queryClient }));
  const [appTheme] = useState(() => withLabels(theme, i18n.t('action.close')));
  return (
    <I18nextProvider i18n={i18n}>
      <MantineProvider theme={appTheme} defaultColorScheme="dark" cssVariablesResolver={cssVariablesResolver} getStyleNonce={styleNonce}>
        <Notifications position="top-right" />
        <ServicesContext.Provider value={services}>
          <QueryClientProvider client={queryClient}>
            <RouterProvider router={router} />
          </QueryClientProvider>
        </ServicesContext.Provider>
      </MantineProvider>
    </I18nextProvider>
  );
}
