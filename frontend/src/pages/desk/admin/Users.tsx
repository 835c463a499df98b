import { Badge, Button, Group, Modal, PasswordInput, Select, Stack, Table, Text, TextInput } from '@mantine/core';
import { useQuery } from '@tanstack/react-query';
import { useState } from 'react';
import { useTranslation } from 'react-i18next';
import { unwrap, type Role, type User } from '../../../api/client';
import { ConfirmButton } from '../../../components/ConfirmButton';
import { ErrorState, ListSkeleton } from '../../../components/States';
import { RelativeTime } from '../../../components/Time';
import { useSave } from '../../../lib/save';
import { useApi, useUser } from '../../../lib/services';
import { AdminTable } from './common';

const ROLES: Role[] = ['customer_user', 'customer_admin', 'agent', 'manager', 'admin'];
const usersKey = ['users'] as const;

/** grantable lists the roles a user of role may give: those strictly below their own (the server's auth.CanGrant). */
export function grantable(role: Role): Role[] {
  if (role === 'customer_admin') return ['customer_user'];
  return ROLES.slice(0, ROLES.indexOf(role));
}

/** Users: the organisation's accounts; admins add them, change roles below their own, deactivate and reactivate them. */
export function Users() {
  const { t } = useTranslation();
  const api = useApi();
  const me = useUser();
  const [creating, setCreating] = useState(false);
  const users = useQuery({
    queryKey: [...usersKey, 'all'],
    queryFn: ({ signal }) => unwrap(api.GET('/api/v1/users', { signal, params: { query: { limit: 200 } } })),
  });
  const roles = grantable(me.role);
  const patch = useSave(usersKey, (v: { id: string; role?: Role; is_active?: boolean }) =>
    unwrap(api.PATCH('/api/v1/users/{userID}', { params: { path: { userID: v.id } }, body: { role: v.role, is_active: v.is_active } })),
  t('users.saved'));
  const deactivate = useSave(usersKey, (id: string) => unwrap(api.DELETE('/api/v1/users/{userID}', { params: { path: { userID: id } } })),
    t('users.deactivated'));
  if (users.isPending) return <ListSkeleton />;
  if (users.isError) return <ErrorState error={users.error} onRetry={() => void users.refetch()} />;
  const manageable = (u: User) => u.id !== me.id && roles.includes(u.role);
  return (
    <Stack gap="md">
      <Group justify="space-between">
        <Text size="sm" c="dimmed" maw={640}>{t('users.hint')}</Text>
        <Button onClick={() => setCreating(true)}>{t('users.new')}</Button>
      </Group>
      <AdminTable testId="users" head={[t('admin.name'), t('login.email'), t('admin.role'), t('admin.state'), t('admin.lastLogin'), t('admin.actions')]}>
        {users.data.items.map((u) => (
          <Table.Tr key={u.id} data-testid="user-row">
            <Table.Td>{u.name}</Table.Td>
            <Table.Td c="dimmed">{u.email}</Table.Td>
            <Table.Td>
              {manageable(u) ? (
                <Select size="xs" w={170} value={u.role} allowDeselect={false} aria-label={t('users.roleOf', { name: u.name || u.email })}
                  data={roles.map((r) => ({ value: r, label: t(`role.${r}`) }))} comboboxProps={{ withinPortal: true }}
                  onChange={(v) => v && v !== u.role && patch.mutate({ id: u.id, role: v as Role })} />
              ) : t(`role.${u.role}`)}
            </Table.Td>
            <Table.Td>
              <Badge variant="light" color={u.is_active ? 'green' : 'gray'}>{u.is_active ? t('admin.active') : t('admin.inactive')}</Badge>
            </Table.Td>
            <Table.Td c="dimmed">{u.last_login_at ? <RelativeTime iso={u.last_login_at} /> : t('admin.never')}</Table.Td>
            <Table.Td>
              {manageable(u) && (u.is_active ? (
                <ConfirmButton size="xs" variant="subtle" color="red" label={t('users.deactivate')} title={t('users.deactivateTitle', { name: u.name || u.email })}
                  body={t('users.deactivateBody')} confirmLabel={t('users.deactivate')} onConfirm={() => deactivate.mutate(u.id)} />
              ) : (
                <Button size="xs" variant="light" onClick={() => patch.mutate({ id: u.id, is_active: true })}>{t('users.reactivate')}</Button>
              ))}
            </Table.Td>
          </Table.Tr>
        ))}
      </AdminTable>
      {creating && <UserForm roles={roles} onClose={() => setCreating(false)} />}
    </Stack>
  );
}

function UserForm({ roles, onClose }: { roles: Role[]; onClose: () => void }) {
  const { t } = useTranslation();
  const api = useApi();
  const [f, setF] = useState({ email: '', name: '', role: 'customer_user' as Role, password: '' });
  const save = useSave(usersKey, (v: typeof f) =>
    unwrap(api.POST('/api/v1/users', { body: { email: v.email.trim(), name: v.name.trim(), role: v.role, ...(v.password ? { password: v.password } : {}) } })),
  t('users.created'), onClose);
  const e = save.errors;
  return (
    <Modal opened onClose={onClose} title={t('users.new')}>
      <form onSubmit={(ev) => { ev.preventDefault(); save.mutate(f); }} noValidate>
        <Stack gap="sm">
          <TextInput label={t('login.email')} type="email" required value={f.email} error={e.email} data-autofocus
            onChange={(ev) => setF({ ...f, email: ev.currentTarget.value })} />
          <TextInput label={t('admin.name')} required value={f.name} error={e.name} onChange={(ev) => setF({ ...f, name: ev.currentTarget.value })} />
          <Select label={t('admin.role')} value={f.role} allowDeselect={false} error={e.role} comboboxProps={{ withinPortal: true }}
            data={roles.map((r) => ({ value: r, label: t(`role.${r}`) }))} onChange={(v) => v && setF({ ...f, role: v as Role })} />
          <PasswordInput label={t('users.password')} description={t('users.passwordHint')} value={f.password} error={e.password}
            autoComplete="new-password" onChange={(ev) => setF({ ...f, password: ev.currentTarget.value })} />
          <Group justify="flex-end">
            <Button variant="subtle" color="gray" onClick={onClose}>{t('action.cancel')}</Button>
            <Button type="submit" loading={save.isPending}>{t('action.save')}</Button>
          </Group>
        </Stack>
      </form>
    </Modal>
  );
}
