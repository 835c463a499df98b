import { Alert } from '@mantine/core';
import { useNetwork } from '@mantine/hooks';
import { Outlet, useNavigate, useRouterState } from '@tanstack/react-router';
import { useEffect, useRef } from 'react';
import { useTranslation } from 'react-i18next';
import { IconAlert } from '../components/Icons';
import { warmIntl } from '../components/Time';
import { useSession } from '../lib/services';
import { useLiveSync } from '../lib/useLiveSync';

/** Root wraps every page: live sync while signed in, offline notice, session expiry. */
export function Root() {
  const { t, i18n } = useTranslation();
  const session = useSession();
  const navigate = useNavigate();
  const network = useNetwork();
  const status = useRouterState({ select: (s) => s.status });
  const href = useRouterState({ select: (s) => s.location.href });
  const marked = useRef(false);

  useLiveSync(session.status === 'authenticated');

  // Budget probe: when the first route has rendered (read by the e2e suite).
  useEffect(() => {
    if (marked.current || status !== 'idle') return;
    marked.current = true;
    requestAnimationFrame(() => performance.mark('atum:interactive'));
    warmIntl(i18n.language);
  }, [status, i18n]);

  const expired = session.status === 'anonymous' && session.expired;
  useEffect(() => {
    if (expired && !href.startsWith('/login')) {
      void navigate({ to: '/login', search: { next: href } });
    }
  }, [expired, href, navigate]);

  return (
    <>
      {!network.online && (
        <Alert color="orange" variant="filled" radius={0} icon={<IconAlert />} role="status" py={6}
          style={{ position: 'fixed', bottom: 0, left: 0, right: 0, zIndex: 400 }}>
          {t('error.offline')}
        </Alert>
      )}
      <Outlet />
    </>
  );
}
