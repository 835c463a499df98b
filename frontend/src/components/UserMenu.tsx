import { Avatar, Badge, Group, Menu, Text, Tooltip, UnstyledButton, VisuallyHidden } from '@mantine/core';
import { useQueryClient } from '@tanstack/react-query';
import { useNavigate } from '@tanstack/react-router';
import { useTranslation } from 'react-i18next';
import { useLiveStatus, useServices, useUser } from '../lib/services';

export function LiveIndicator() {
  const { t } = useTranslation();
  const status = useLiveStatus();
  const color = status === 'live' ? 'green' : status === 'connecting' ? 'gray' : 'orange';
  return (
    <Tooltip label={t(`live.${status}Hint`)}>
      <Badge variant="dot" color={color} data-testid="live-indicator" data-live={status}>{t(`live.${status}`)}</Badge>
    </Tooltip>
  );
}

export function UserMenu() {
  const { t } = useTranslation();
  const user = useUser();
  const { session } = useServices();
  const qc = useQueryClient();
  const navigate = useNavigate();
  const display = user.name || user.email;
  const initials = display.split(/\s+/).map((p) => p[0]).join('').slice(0, 2).toUpperCase();
  return (
    <Menu position="bottom-end" width={220}>
      <Menu.Target>
        <UnstyledButton data-testid="user-menu" title={t('user.menu')}>
          <Group gap="xs" wrap="nowrap">
            <Avatar color="gold" radius="xl" size="sm" aria-hidden>{initials}</Avatar>
            <Text size="sm" visibleFrom="sm">{display}</Text>
            <VisuallyHidden hiddenFrom="sm">{display}</VisuallyHidden>
          </Group>
        </UnstyledButton>
      </Menu.Target>
      <Menu.Dropdown>
        <Menu.Label>{user.email}</Menu.Label>
        <Menu.Label>{t(`role.${user.role}`)}</Menu.Label>
        <Menu.Divider />
        <Menu.Item onClick={async () => {
          await session.logout();
          qc.clear();
          void navigate({ to: '/' });
        }}>{t('action.signOut')}</Menu.Item>
      </Menu.Dropdown>
    </Menu>
  );
}
