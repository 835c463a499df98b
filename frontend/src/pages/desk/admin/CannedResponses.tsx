import { Badge, Button, Group, Modal, Stack, Switch, Table, Text, TextInput, Textarea } from '@mantine/core';
import { useQuery } from '@tanstack/react-query';
import { useState } from 'react';
import { useTranslation } from 'react-i18next';
import { unwrap } from '../../../api/client';
import type { paths } from '../../../api/schema';
import { ConfirmButton } from '../../../components/ConfirmButton';
import { EmptyState, ErrorState, ListSkeleton } from '../../../components/States';
import { useApi } from '../../../lib/services';
import { useSave } from '../../../lib/save';
import { AdminTable } from './common';

type Canned = paths['/api/v1/canned-responses']['get']['responses'][200]['content']['application/json']['items'][number];
const cannedKey = ['canned'] as const;
// What the server fills in (httpapi/canned.go); not translated.
const PLACEHOLDERS = '{{agent.name}} {{ticket.number}} {{ticket.subject}} {{requester.name}}';

/** CannedResponses: reusable replies; {{agent.name}}, {{ticket.number}}, {{ticket.subject}} and {{requester.name}} are filled in. */
export function CannedResponses() {
  const { t } = useTranslation();
  const api = useApi();
  const [editing, setEditing] = useState<Canned | 'new' | null>(null);
  const list = useQuery({
    queryKey: cannedKey,
    queryFn: ({ signal }) => unwrap(api.GET('/api/v1/canned-responses', { signal, params: { query: { limit: 200 } } })).then((p) => p.items),
  });
  const remove = useSave(cannedKey, (id: string) => unwrap(api.DELETE('/api/v1/canned-responses/{cannedID}', { params: { path: { cannedID: id } } })),
    t('canned.deleted'));
  return (
    <Stack gap="md">
      <Group justify="space-between">
        <Text size="sm" c="dimmed" maw={640}>{t('canned.hint')}</Text>
        <Button onClick={() => setEditing('new')}>{t('canned.new')}</Button>
      </Group>
      {list.isPending ? <ListSkeleton rows={3} /> : list.isError ? <ErrorState error={list.error} onRetry={() => void list.refetch()} /> :
        list.data.length === 0 ? <EmptyState title={t('canned.noneTitle')} description={t('canned.noneBody')} /> : (
          <AdminTable testId="canned" head={[t('canned.titleLabel'), t('canned.content'), t('canned.shared'), t('admin.actions')]}>
            {list.data.map((c) => (
              <Table.Tr key={c.id}>
                <Table.Td fw={500}>{c.title}</Table.Td>
                <Table.Td c="dimmed"><Text size="sm" lineClamp={2} style={{ whiteSpace: 'pre-wrap' }}>{c.content}</Text></Table.Td>
                <Table.Td>{c.is_shared ? <Badge variant="light">{t('canned.shared')}</Badge> : <Text size="xs" c="dimmed">{c.created_by_name}</Text>}</Table.Td>
                <Table.Td>
                  {c.can_edit && (
                    <Group gap="xs" wrap="nowrap">
                      <Button size="xs" variant="light" onClick={() => setEditing(c)} aria-label={t('admin.editNamed', { name: c.title })}>{t('admin.edit')}</Button>
                      <ConfirmButton size="xs" variant="subtle" color="red" label={t('admin.delete')} title={t('canned.deleteTitle', { name: c.title })}
                        body={t('canned.deleteBody')} confirmLabel={t('admin.delete')} onConfirm={() => remove.mutate(c.id)} />
                    </Group>
                  )}
                </Table.Td>
              </Table.Tr>
            ))}
          </AdminTable>
        )}
      {editing && <CannedForm canned={editing === 'new' ? null : editing} onClose={() => setEditing(null)} />}
    </Stack>
  );
}

function CannedForm({ canned, onClose }: { canned: Canned | null; onClose: () => void }) {
  const { t } = useTranslation();
  const api = useApi();
  const [f, setF] = useState({ title: canned?.title ?? '', content: canned?.content ?? '', is_shared: canned?.is_shared ?? true });
  const save = useSave(cannedKey, (v: typeof f) => canned
    ? unwrap(api.PATCH('/api/v1/canned-responses/{cannedID}', { params: { path: { cannedID: canned.id } }, body: v }))
    : unwrap(api.POST('/api/v1/canned-responses', { body: v })), t('canned.saved'), onClose);
  return (
    <Modal opened onClose={onClose} title={canned ? t('canned.edit') : t('canned.new')} size="lg">
      <form onSubmit={(e) => { e.preventDefault(); save.mutate(f); }} noValidate>
        <Stack gap="sm">
          <TextInput label={t('canned.titleLabel')} required value={f.title} maxLength={200} error={save.errors.title} data-autofocus
            onChange={(e) => setF({ ...f, title: e.currentTarget.value })} />
          <Textarea label={t('canned.content')} required value={f.content} autosize minRows={5} error={save.errors.content}
            description={`${t('canned.placeholders')} ${PLACEHOLDERS}`} onChange={(e) => setF({ ...f, content: e.currentTarget.value })} />
          <Switch label={t('canned.shareWithTeam')} checked={f.is_shared} onChange={(e) => setF({ ...f, is_shared: e.currentTarget.checked })} />
          <Group justify="flex-end">
            <Button variant="subtle" color="gray" onClick={onClose}>{t('action.cancel')}</Button>
            <Button type="submit" loading={save.isPending}>{t('action.save')}</Button>
          </Group>
        </Stack>
      </form>
    </Modal>
  );
}
