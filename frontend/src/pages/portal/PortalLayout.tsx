import { AppShell, Button, Container, Group } from '@mantine/core';
import { Link, Outlet } from '@tanstack/react-router';
import { useTranslation } from 'react-i18next';
import { IconPlus } from '../../components/Icons';
import { Wordmark } from '../../components/Logo';
import { ThemeToggle } from '../../components/ThemeToggle';
import { LiveIndicator, UserMenu } from '../../components/UserMenu';

export function PortalLayout() {
  const { t } = useTranslation();
  return (
    <AppShell header={{ height: 60 }} padding="md">
      <AppShell.Header className="atum-header">
        <Container size="lg" h="100%">
          <Group h="100%" justify="space-between" wrap="nowrap">
            <Group gap="lg" wrap="nowrap">
              <Link to="/portal" aria-label={t('portal.home')} className="atum-wordmark"><Wordmark size={26} /></Link>
              <Button component={Link} to="/portal" variant="subtle" color="gray" visibleFrom="sm"
                activeOptions={{ exact: true }}>{t('portal.myTickets')}</Button>
              <Button component={Link} to="/portal/kb" variant="subtle" color="gray" visibleFrom="sm">{t('kb.help')}</Button>
            </Group>
            <Group gap="sm" wrap="nowrap">
              <LiveIndicator />
              <ThemeToggle />
              <Button component={Link} to="/portal/new" leftSection={<IconPlus />} size="sm" visibleFrom="xs">{t('portal.newTicket')}</Button>
              <UserMenu />
            </Group>
          </Group>
        </Container>
      </AppShell.Header>
      <AppShell.Main>
        <Container size="lg" px={0}>
          <Outlet />
        </Container>
      </AppShell.Main>
    </AppShell>
  );
}
