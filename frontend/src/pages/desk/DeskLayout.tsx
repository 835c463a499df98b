import { AppShell, Box, Burger, Group, Kbd, Modal, NavLink, Stack, Table, Text } from '@mantine/core';
import { useDisclosure, useHotkeys } from '@mantine/hooks';
import { Link, Outlet, useRouterState } from '@tanstack/react-router';
import { useTranslation } from 'react-i18next';
import { IconBook, IconGauge, IconInbox, IconList, IconLock } from '../../components/Icons';
import { Wordmark } from '../../components/Logo';
import { PublicHeader } from '../../components/PublicHeader';
import { ForbiddenPanel } from '../../components/States';
import { ThemeToggle } from '../../components/ThemeToggle';
import { LiveIndicator, UserMenu } from '../../components/UserMenu';
import { isStaff } from '../../lib/session';
import { useUser } from '../../lib/services';

export const canTriage = (role: string) => role === 'manager' || role === 'admin';

/** DeskLayout is the agents' shell; other roles get the 403 page. */
export function DeskLayout() {
  const user = useUser();
  if (!isStaff(user)) {
    return (
      <Box mih="100vh">
        <PublicHeader />
        <main><ForbiddenPanel /></main>
      </Box>
    );
  }
  return <DeskShell role={user.role} />;
}

function DeskShell({ role }: { role: string }) {
  const { t } = useTranslation();
  const [opened, { toggle, close }] = useDisclosure();
  const [help, helpCtl] = useDisclosure(false);
  const path = useRouterState({ select: (s) => s.location.pathname });
  useHotkeys([['shift+?', helpCtl.open]]);
  const nav = [
    { to: '/desk', label: t('desk.dashboard'), icon: <IconGauge />, active: path === '/desk' || path === '/desk/' },
    ...(canTriage(role) ? [{ to: '/desk/inbox', label: t('desk.inbox'), icon: <IconInbox />, active: path.startsWith('/desk/inbox') }] : []),
    { to: '/desk/tickets', label: t('desk.tickets'), icon: <IconList />, active: path.startsWith('/desk/tickets') },
    { to: '/desk/kb', label: t('kb.title'), icon: <IconBook />, active: path.startsWith('/desk/kb') },
    ...(role === 'admin' ? [{ to: '/desk/admin', label: t('admin.title'), icon: <IconLock />, active: path.startsWith('/desk/admin') }] : []),
  ] as const;
  return (
    <AppShell header={{ height: 60 }} navbar={{ width: 230, breakpoint: 'sm', collapsed: { mobile: !opened } }} padding="lg">
      <AppShell.Header className="atum-header">
        <Group h="100%" px="md" justify="space-between" wrap="nowrap">
          <Group gap="sm" wrap="nowrap">
            <Burger opened={opened} onClick={toggle} hiddenFrom="sm" size="sm" aria-label={t('nav.toggle')} />
            <Link to="/desk" aria-label={t('desk.home')} className="atum-wordmark"><Wordmark size={26} /></Link>
          </Group>
          <Group gap="sm" wrap="nowrap">
            <LiveIndicator />
            <ThemeToggle />
            <UserMenu />
          </Group>
        </Group>
      </AppShell.Header>
      <AppShell.Navbar p="sm" className="atum-nav" aria-label={t('desk.navigation')}>
        <Stack gap={4}>
          {nav.map((n) => (
            <NavLink key={n.to} component={Link} to={n.to} label={n.label} leftSection={n.icon} active={n.active}
              activeOptions={{ exact: true }} activeProps={{ 'data-status': undefined }} onClick={close} variant="light" />
          ))}
        </Stack>
        <Text size="xs" c="dimmed" mt="auto" p="xs">
          {t('desk.shortcutsHint')} <Kbd size="xs">?</Kbd>
        </Text>
      </AppShell.Navbar>
      <AppShell.Main>
        <Outlet />
      </AppShell.Main>
      <Modal opened={help} onClose={helpCtl.close} title={t('shortcuts.title')}>
        <Table>
          <Table.Tbody>
            {(['j', 'k', 'enter', 'r', 'n', '/'] as const).map((k) => (
              <Table.Tr key={k}>
                <Table.Td><Kbd>{k === 'enter' ? '↵' : k}</Kbd></Table.Td>
                <Table.Td>{t(`shortcuts.${k === '/' ? 'search' : k}`)}</Table.Td>
              </Table.Tr>
            ))}
          </Table.Tbody>
        </Table>
      </Modal>
    </AppShell>
  );
}
