import { Badge, Button, Group, Modal, Select, Stack, Switch, Table, Text, TextInput, Textarea } from '@mantine/core';
import { useQuery } from '@tanstack/react-query';
import { useState } from 'react';
import { useTranslation } from 'react-i18next';
import { PRIORITIES, unwrap, type Priority } from '../../../api/client';
import type { paths } from '../../../api/schema';
import { ConfirmButton } from '../../../components/ConfirmButton';
import { EmptyState, ErrorState, ListSkeleton } from '../../../components/States';
import { keys } from '../../../lib/queries';
import { useApi } from '../../../lib/services';
import { useSave } from '../../../lib/save';
import { AdminTable } from './common';

export type Service = paths['/api/v1/services']['get']['responses'][200]['content']['application/json']['items'][number];
interface Form { name: string; description: string; default_priority: Priority | null; is_active: boolean }
const blank: Form = { name: '', description: '', default_priority: null, is_active: true };

/** Services: the lines of support customers file against; deleting one in use deactivates it. */
export function Services() {
  const { t } = useTranslation();
  const api = useApi();
  const [editing, setEditing] = useState<Service | 'new' | null>(null);
  const list = useQuery({
    queryKey: [...keys.services, 'admin'],
    queryFn: ({ signal }) => unwrap(api.GET('/api/v1/services', { signal })).then((p) => p.items),
  });
  const remove = useSave(keys.services, (id: string) => unwrap(api.DELETE('/api/v1/services/{serviceID}', { params: { path: { serviceID: id } } })),
    t('services.deleted'));
  return (
    <Stack gap="md">
      <Group justify="space-between">
        <Text size="sm" c="dimmed">{t('services.hint')}</Text>
        <Button onClick={() => setEditing('new')}>{t('services.new')}</Button>
      </Group>
      {list.isPending ? <ListSkeleton rows={3} /> : list.isError ? <ErrorState error={list.error} onRetry={() => void list.refetch()} /> :
        list.data.length === 0 ? <EmptyState title={t('services.none')} description={t('services.noneBody')} /> : (
          <AdminTable testId="services" head={[t('admin.name'), t('services.description'), t('services.defaultPriority'), t('admin.state'), t('admin.actions')]}>
            {list.data.map((sv) => (
              <Table.Tr key={sv.id} data-testid="service-row">
                <Table.Td fw={500}>{sv.name}</Table.Td>
                <Table.Td c="dimmed"><Text size="sm" lineClamp={2}>{sv.description}</Text></Table.Td>
                <Table.Td>{sv.default_priority ? t(`priority.${sv.default_priority}`) : '—'}</Table.Td>
                <Table.Td><Badge variant="light" color={sv.is_active ? 'green' : 'gray'}>{sv.is_active ? t('admin.active') : t('admin.inactive')}</Badge></Table.Td>
                <Table.Td>
                  <Group gap="xs" wrap="nowrap">
                    <Button size="xs" variant="light" onClick={() => setEditing(sv)} aria-label={t('admin.editNamed', { name: sv.name })}>{t('admin.edit')}</Button>
                    {sv.is_active && (
                      <ConfirmButton size="xs" variant="subtle" color="red" label={t('admin.delete')} title={t('services.deleteTitle', { name: sv.name })}
                        body={t('services.deleteBody')} confirmLabel={t('admin.delete')} onConfirm={() => remove.mutate(sv.id)} />
                    )}
                  </Group>
                </Table.Td>
              </Table.Tr>
            ))}
          </AdminTable>
        )}
      {editing && <ServiceForm service={editing === 'new' ? null : editing} onClose={() => setEditing(null)} />}
    </Stack>
  );
}

function ServiceForm({ service, onClose }: { service: Service | null; onClose: () => void }) {
  const { t } = useTranslation();
  const api = useApi();
  const [f, setF] = useState<Form>(service ? {
    name: service.name, description: service.description, default_priority: (service.default_priority ?? null) as Priority | null, is_active: service.is_active,
  } : blank);
  const save = useSave(keys.services, (v: Form) => service
    ? unwrap(api.PATCH('/api/v1/services/{serviceID}', { params: { path: { serviceID: service.id } }, body: v }))
    : unwrap(api.POST('/api/v1/services', { body: v })), service ? t('services.saved') : t('services.created'), onClose);
  return (
    <Modal opened onClose={onClose} title={service ? t('services.edit') : t('services.new')}>
      <form onSubmit={(e) => { e.preventDefault(); save.mutate({ ...f, name: f.name.trim() }); }} noValidate>
        <Stack gap="sm">
          <TextInput label={t('admin.name')} required value={f.name} maxLength={200} error={save.errors.name} data-autofocus
            onChange={(e) => setF({ ...f, name: e.currentTarget.value })} />
          <Textarea label={t('services.description')} value={f.description} maxLength={2000} autosize minRows={2} error={save.errors.description}
            onChange={(e) => setF({ ...f, description: e.currentTarget.value })} />
          <Select label={t('services.defaultPriority')} clearable value={f.default_priority} placeholder={t('services.noDefault')}
            data={PRIORITIES.map((p) => ({ value: p, label: t(`priority.${p}`) }))} error={save.errors.default_priority}
            onChange={(v) => setF({ ...f, default_priority: (v as Priority) ?? null })} comboboxProps={{ withinPortal: true }} />
          <Switch label={t('admin.active')} checked={f.is_active} onChange={(e) => setF({ ...f, is_active: e.currentTarget.checked })} />
          <Group justify="flex-end">
            <Button variant="subtle" color="gray" onClick={onClose}>{t('action.cancel')}</Button>
            <Button type="submit" loading={save.isPending}>{t('action.save')}</Button>
          </Group>
        </Stack>
      </form>
    </Modal>
  );
}
