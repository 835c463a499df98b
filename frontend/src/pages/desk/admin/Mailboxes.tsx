import { Badge, Button, Group, Modal, NumberInput, PasswordInput, Select, Stack, Switch, Table, Text, TextInput } from '@mantine/core';
import { useQuery } from '@tanstack/react-query';
import { useState } from 'react';
import { useTranslation } from 'react-i18next';
import { unwrap } from '../../../api/client';
import type { operations, paths } from '../../../api/schema';
import { ConfirmButton } from '../../../components/ConfirmButton';
import { EmptyState, ErrorState, ListSkeleton } from '../../../components/States';
import { RelativeTime } from '../../../components/Time';
import { useApi } from '../../../lib/services';
import { useSave } from '../../../lib/save';
import { AdminTable } from './common';

type Mailbox = paths['/api/v1/admin/mailboxes']['get']['responses'][200]['content']['application/json']['items'][number];
const mbKey = ['mailboxes'] as const;
type MailboxBody = operations['createMailbox']['requestBody']['content']['application/json'] &
  operations['patchMailbox']['requestBody']['content']['application/json'];
const TLS = ['tls', 'starttls', 'none'] as const;
const PORTS: Record<string, number> = { tls: 993, starttls: 143, none: 143 };

interface Form {
  name: string; address: string; imap_host: string; imap_port: number; imap_tls: string; imap_username: string;
  password: string; folder: string; after_ingest: string; is_active: boolean;
}

/** Mailboxes: the IMAP inboxes polled for tickets (passwords are write-only). */
export function Mailboxes() {
  const { t } = useTranslation();
  const api = useApi();
  const [editing, setEditing] = useState<Mailbox | 'new' | null>(null);
  const list = useQuery({
    queryKey: mbKey,
    queryFn: ({ signal }) => unwrap(api.GET('/api/v1/admin/mailboxes', { signal })).then((p) => p.items),
  });
  const remove = useSave(mbKey, (id: string) => unwrap(api.DELETE('/api/v1/admin/mailboxes/{mailboxID}', { params: { path: { mailboxID: id } } })),
    t('mailboxes.deleted'));
  return (
    <Stack gap="md">
      <Group justify="space-between">
        <Text size="sm" c="dimmed" maw={640}>{t('mailboxes.hint')}</Text>
        <Button onClick={() => setEditing('new')}>{t('mailboxes.new')}</Button>
      </Group>
      {list.isPending ? <ListSkeleton rows={3} /> : list.isError ? <ErrorState error={list.error} onRetry={() => void list.refetch()} /> :
        list.data.length === 0 ? <EmptyState title={t('mailboxes.none')} description={t('mailboxes.noneBody')} /> : (
          <AdminTable testId="mailboxes" head={[t('mailboxes.address'), t('mailboxes.server'), t('mailboxes.lastPoll'), t('admin.state'), t('admin.actions')]}>
            {list.data.map((m) => (
              <Table.Tr key={m.id} data-testid="mailbox-row">
                <Table.Td>
                  <Text size="sm" fw={500}>{m.address}</Text>
                  {m.name && <Text size="xs" c="dimmed">{m.name}</Text>}
                </Table.Td>
                <Table.Td>
                  <Text size="sm" ff="monospace">{m.imap_host}:{m.imap_port}</Text>
                  <Text size="xs" c="dimmed">{m.imap_tls} · {m.folder}</Text>
                </Table.Td>
                <Table.Td>
                  <Text size="sm" c="dimmed">{m.last_polled_at ? <RelativeTime iso={m.last_polled_at} /> : t('admin.never')}</Text>
                  {m.last_error && <Text size="xs" c="var(--atum-danger)" lineClamp={2} style={{ overflowWrap: 'anywhere' }}>{m.last_error}</Text>}
                </Table.Td>
                <Table.Td>
                  <Group gap={4}>
                    <Badge variant="light" color={m.is_active ? 'green' : 'gray'}>{m.is_active ? t('admin.active') : t('admin.inactive')}</Badge>
                    {m.polling && <Badge variant="light" color="gold">{t('mailboxes.polling')}</Badge>}
                  </Group>
                </Table.Td>
                <Table.Td>
                  <Group gap="xs" wrap="nowrap">
                    <Button size="xs" variant="light" onClick={() => setEditing(m)} aria-label={t('admin.editNamed', { name: m.address })}>{t('admin.edit')}</Button>
                    <ConfirmButton size="xs" variant="subtle" color="red" label={t('admin.delete')} title={t('mailboxes.deleteTitle', { address: m.address })}
                      body={t('mailboxes.deleteBody')} confirmLabel={t('admin.delete')} onConfirm={() => remove.mutate(m.id)} />
                  </Group>
                </Table.Td>
              </Table.Tr>
            ))}
          </AdminTable>
        )}
      {editing && <MailboxForm mailbox={editing === 'new' ? null : editing} onClose={() => setEditing(null)} />}
    </Stack>
  );
}

function MailboxForm({ mailbox: m, onClose }: { mailbox: Mailbox | null; onClose: () => void }) {
  const { t } = useTranslation();
  const api = useApi();
  const [f, setF] = useState<Form>({
    name: m?.name ?? '', address: m?.address ?? '', imap_host: m?.imap_host ?? '', imap_port: m?.imap_port ?? 993,
    imap_tls: m?.imap_tls ?? 'tls', imap_username: m?.imap_username ?? '', password: '', folder: m?.folder ?? 'INBOX',
    after_ingest: m?.after_ingest ?? 'seen', is_active: m?.is_active ?? true,
  });
  const set = (patch: Partial<Form>) => setF({ ...f, ...patch });
  const save = useSave(mbKey, (v: Form) => {
    // The password is write-only: sent only when typed.
    const { password, ...rest } = v;
    const body = (password ? { ...rest, password } : rest) as MailboxBody;
    return m
      ? unwrap(api.PATCH('/api/v1/admin/mailboxes/{mailboxID}', { params: { path: { mailboxID: m.id } }, body }))
      : unwrap(api.POST('/api/v1/admin/mailboxes', { body }));
  }, m ? t('mailboxes.saved') : t('mailboxes.created'), onClose);
  const e = save.errors;
  return (
    <Modal opened onClose={onClose} title={m ? t('mailboxes.edit') : t('mailboxes.new')} size="lg">
      <form onSubmit={(ev) => { ev.preventDefault(); save.mutate(f); }} noValidate data-testid="mailbox-form">
        <Stack gap="sm">
          <Group grow align="flex-start">
            <TextInput label={t('mailboxes.address')} required value={f.address} error={e.address} data-autofocus
              onChange={(ev) => set({ address: ev.currentTarget.value })} />
            <TextInput label={t('admin.name')} value={f.name} error={e.name} onChange={(ev) => set({ name: ev.currentTarget.value })} />
          </Group>
          <Group grow align="flex-start">
            <TextInput label={t('mailboxes.host')} required value={f.imap_host} error={e.imap_host} onChange={(ev) => set({ imap_host: ev.currentTarget.value })} />
            <NumberInput label={t('mailboxes.port')} min={1} max={65535} value={f.imap_port} error={e.imap_port} allowDecimal={false}
              onChange={(v) => set({ imap_port: typeof v === 'number' ? v : 0 })} />
            <Select label={t('mailboxes.security')} value={f.imap_tls} allowDeselect={false} error={e.imap_tls} comboboxProps={{ withinPortal: true }}
              data={TLS.map((x) => ({ value: x, label: t(`mailboxes.tls.${x}`) }))}
              onChange={(v) => v && set({ imap_tls: v, imap_port: f.imap_port === PORTS[f.imap_tls] ? PORTS[v] : f.imap_port })} />
          </Group>
          <Group grow align="flex-start">
            <TextInput label={t('mailboxes.username')} required value={f.imap_username} error={e.imap_username}
              onChange={(ev) => set({ imap_username: ev.currentTarget.value })} />
            <PasswordInput label={t('mailboxes.password')} required={!m} value={f.password} error={e.password} autoComplete="new-password"
              description={m?.has_password ? t('mailboxes.passwordKept') : undefined} onChange={(ev) => set({ password: ev.currentTarget.value })} />
          </Group>
          <Group grow align="flex-start">
            <TextInput label={t('mailboxes.folder')} value={f.folder} error={e.folder} onChange={(ev) => set({ folder: ev.currentTarget.value })} />
            <TextInput label={t('mailboxes.afterIngest')} description={t('mailboxes.afterIngestHint')} value={f.after_ingest} error={e.after_ingest}
              onChange={(ev) => set({ after_ingest: ev.currentTarget.value })} />
          </Group>
          <Switch label={t('admin.active')} checked={f.is_active} onChange={(ev) => set({ is_active: ev.currentTarget.checked })} />
          <Group justify="flex-end">
            <Button variant="subtle" color="gray" onClick={onClose}>{t('action.cancel')}</Button>
            <Button type="submit" loading={save.isPending}>{t('action.save')}</Button>
          </Group>
        </Stack>
      </form>
    </Modal>
  );
}
