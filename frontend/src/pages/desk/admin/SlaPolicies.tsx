import { Badge, Button, Checkbox, Group, Modal, NumberInput, SegmentedControl, Select, Stack, Switch, Table, Text, TextInput, Title } from '@mantine/core';
import { useQuery } from '@tanstack/react-query';
import { useMemo, useState } from 'react';
import { useTranslation } from 'react-i18next';
import { PRIORITIES, unwrap, type Priority } from '../../../api/client';
import type { operations, paths } from '../../../api/schema';
import { BusinessHoursEditor, compact, officeHours, scheduleErrors, type Schedule } from '../../../components/BusinessHoursEditor';
import { ConfirmButton } from '../../../components/ConfirmButton';
import { EmptyState, ErrorState, ListSkeleton } from '../../../components/States';
import { useServiceList } from '../../../lib/queries';
import { useApi } from '../../../lib/services';
import { useSave } from '../../../lib/save';
import { AdminTable } from './common';
import { timeZones } from './Organization';

type Policy = paths['/api/v1/sla/policies']['get']['responses'][200]['content']['application/json']['items'][number];
const slaKey = ['sla', 'policies'] as const;
type PolicyBody = operations['createSLAPolicy']['requestBody']['content']['application/json'] &
  operations['patchSLAPolicy']['requestBody']['content']['application/json'];

/** minutesLabel writes a target as people read it: 45 min, 4 h, 1 h 30 min. */
export function minutesLabel(m: number): string {
  const h = Math.floor(m / 60);
  const r = m % 60;
  if (h === 0) return `${r} min`;
  return r ? `${h} h ${r} min` : `${h} h`;
}

interface TargetRow { on: boolean; first: number; resolution: number }
const DEFAULT_TARGETS: Record<Priority, TargetRow> = {
  low: { on: true, first: 480, resolution: 2880 },
  medium: { on: true, first: 240, resolution: 1440 },
  high: { on: true, first: 60, resolution: 480 },
  critical: { on: true, first: 15, resolution: 240 },
};

/** SlaPolicies: targets per priority, scope, and the calendar the clock runs on. */
export function SlaPolicies() {
  const { t } = useTranslation();
  const api = useApi();
  const services = useServiceList();
  const [editing, setEditing] = useState<Policy | 'new' | null>(null);
  const list = useQuery({
    queryKey: slaKey,
    queryFn: ({ signal }) => unwrap(api.GET('/api/v1/sla/policies', { signal, params: { query: { include_inactive: true } } })).then((p) => p.items),
  });
  const deactivate = useSave(slaKey, (id: string) => unwrap(api.DELETE('/api/v1/sla/policies/{policyID}', { params: { path: { policyID: id } } })),
    t('slaAdmin.deactivated'));
  const serviceName = (id?: string | null) => (id ? services.data?.find((s) => s.id === id)?.name ?? '…' : t('slaAdmin.anyService'));
  return (
    <Stack gap="md">
      <Group justify="space-between">
        <Text size="sm" c="dimmed" maw={640}>{t('slaAdmin.hint')}</Text>
        <Button onClick={() => setEditing('new')}>{t('slaAdmin.new')}</Button>
      </Group>
      {list.isPending ? <ListSkeleton rows={3} /> : list.isError ? <ErrorState error={list.error} onRetry={() => void list.refetch()} /> :
        list.data.length === 0 ? <EmptyState title={t('slaAdmin.none')} description={t('slaAdmin.noneBody')} /> : (
          <AdminTable testId="sla-policies" head={[t('admin.name'), t('slaAdmin.scope'), t('slaAdmin.targets'), t('slaAdmin.calendar'), t('admin.state'), t('admin.actions')]}>
            {list.data.map((p) => (
              <Table.Tr key={p.id} data-testid="sla-row">
                <Table.Td fw={500}>{p.name}</Table.Td>
                <Table.Td>
                  <Text size="sm">{serviceName(p.service_id)}</Text>
                  <Text size="xs" c="dimmed">{p.priority ? t(`priority.${p.priority}`) : t('slaAdmin.anyPriority')}</Text>
                </Table.Td>
                <Table.Td>
                  {p.targets.map((x) => (
                    <Text key={x.priority} size="xs">
                      <b>{t(`priority.${x.priority}`)}</b> {minutesLabel(x.first_response_minutes)} / {minutesLabel(x.resolution_minutes)}
                    </Text>
                  ))}
                </Table.Td>
                <Table.Td c="dimmed">
                  <Text size="xs">{!p.use_business_hours ? t('slaAdmin.allDay') : p.business_hours ? t('slaAdmin.ownHours') : t('slaAdmin.orgHours')}</Text>
                  <Text size="xs">{t(`slaAdmin.clock.${p.clock_start}`)}</Text>
                </Table.Td>
                <Table.Td><Badge variant="light" color={p.is_active ? 'green' : 'gray'}>{p.is_active ? t('admin.active') : t('admin.inactive')}</Badge></Table.Td>
                <Table.Td>
                  <Group gap="xs" wrap="nowrap">
                    <Button size="xs" variant="light" onClick={() => setEditing(p)} aria-label={t('admin.editNamed', { name: p.name })}>{t('admin.edit')}</Button>
                    {p.is_active && (
                      <ConfirmButton size="xs" variant="subtle" color="red" label={t('slaAdmin.deactivate')} title={t('slaAdmin.deactivateTitle', { name: p.name })}
                        body={t('slaAdmin.deactivateBody')} confirmLabel={t('slaAdmin.deactivate')} onConfirm={() => deactivate.mutate(p.id)} />
                    )}
                  </Group>
                </Table.Td>
              </Table.Tr>
            ))}
          </AdminTable>
        )}
      {editing && <PolicyForm policy={editing === 'new' ? null : editing} onClose={() => setEditing(null)} />}
    </Stack>
  );
}

function PolicyForm({ policy, onClose }: { policy: Policy | null; onClose: () => void }) {
  const { t } = useTranslation();
  const api = useApi();
  const services = useServiceList();
  const zones = useMemo(timeZones, []);
  const [name, setName] = useState(policy?.name ?? '');
  const [serviceId, setServiceId] = useState<string | null>(policy?.service_id ?? null);
  const [priority, setPriority] = useState<Priority | null>((policy?.priority ?? null) as Priority | null);
  const [clockStart, setClockStart] = useState<string>(policy?.clock_start ?? 'accepted');
  const [useHours, setUseHours] = useState(policy?.use_business_hours ?? true);
  const [ownHours, setOwnHours] = useState(!!policy?.business_hours);
  const [hours, setHours] = useState<Schedule>((policy?.business_hours as Schedule | null) ?? officeHours());
  const [zone, setZone] = useState<string | null>(policy?.timezone ?? null);
  const [active, setActive] = useState(policy?.is_active ?? true);
  const [targets, setTargets] = useState<Record<Priority, TargetRow>>(() => {
    if (!policy) return DEFAULT_TARGETS;
    const out = Object.fromEntries(PRIORITIES.map((p) => [p, { ...DEFAULT_TARGETS[p], on: false }])) as Record<Priority, TargetRow>;
    for (const x of policy.targets) out[x.priority as Priority] = { on: true, first: x.first_response_minutes, resolution: x.resolution_minutes };
    return out;
  });
  const save = useSave(slaKey, (body: PolicyBody) => policy
    ? unwrap(api.PATCH('/api/v1/sla/policies/{policyID}', { params: { path: { policyID: policy.id } }, body }))
    : unwrap(api.POST('/api/v1/sla/policies', { body })), policy ? t('slaAdmin.saved') : t('slaAdmin.created'), onClose);
  const hourErrors = useHours && ownHours ? scheduleErrors(hours) : {};
  const setTarget = (p: Priority, patch: Partial<TargetRow>) => setTargets({ ...targets, [p]: { ...targets[p], ...patch } });
  const submit = () => save.mutate({
    name: name.trim(), service_id: serviceId, priority, clock_start: clockStart as PolicyBody['clock_start'], use_business_hours: useHours,
    business_hours: useHours && ownHours ? compact(hours) : null, timezone: zone, is_active: active,
    targets: PRIORITIES.filter((p) => targets[p].on).map((p) => ({
      priority: p, first_response_minutes: targets[p].first, resolution_minutes: targets[p].resolution,
    })),
  });
  const err = (k: string) => save.errors[k];
  return (
    <Modal opened onClose={onClose} title={policy ? t('slaAdmin.edit') : t('slaAdmin.new')} size="xl">
      <form onSubmit={(e) => { e.preventDefault(); submit(); }} noValidate data-testid="sla-form">
        <Stack gap="sm">
          <TextInput label={t('admin.name')} required value={name} maxLength={200} error={err('name')} data-autofocus
            onChange={(e) => setName(e.currentTarget.value)} />
          <Group grow align="flex-start">
            <Select label={t('slaAdmin.service')} clearable value={serviceId} placeholder={t('slaAdmin.anyService')} error={err('service_id')}
              data={(services.data ?? []).map((s) => ({ value: s.id, label: s.name }))} onChange={setServiceId} comboboxProps={{ withinPortal: true }} />
            <Select label={t('slaAdmin.priority')} clearable value={priority} placeholder={t('slaAdmin.anyPriority')} error={err('priority')}
              data={PRIORITIES.map((p) => ({ value: p, label: t(`priority.${p}`) }))} onChange={(v) => setPriority(v as Priority | null)}
              comboboxProps={{ withinPortal: true }} />
          </Group>
          <Stack gap={4}>
            <Text size="sm" fw={500} id="clock-start-label">{t('slaAdmin.clockStart')}</Text>
            <div role="radiogroup" aria-labelledby="clock-start-label">
              <SegmentedControl value={clockStart} onChange={setClockStart}
                data={[{ value: 'accepted', label: t('slaAdmin.clock.accepted') }, { value: 'created', label: t('slaAdmin.clock.created') }]} />
            </div>
          </Stack>
          <Title order={3} size="h6" mt="xs">{t('slaAdmin.targets')}</Title>
          {err('targets') && <Text size="xs" c="var(--atum-danger)">{err('targets')}</Text>}
          <Table withRowBorders={false} verticalSpacing={4} data-testid="sla-targets">
            <Table.Thead>
              <Table.Tr>
                <Table.Th>{t('slaAdmin.priority')}</Table.Th>
                <Table.Th>{t('slaAdmin.firstResponseMinutes')}</Table.Th>
                <Table.Th>{t('slaAdmin.resolutionMinutes')}</Table.Th>
              </Table.Tr>
            </Table.Thead>
            <Table.Tbody>
              {PRIORITIES.map((p, i) => {
                const row = targets[p];
                const idx = PRIORITIES.filter((q) => targets[q].on).indexOf(p);
                return (
                  <Table.Tr key={p}>
                    <Table.Td><Checkbox label={t(`priority.${p}`)} checked={row.on} onChange={(e) => setTarget(p, { on: e.currentTarget.checked })} /></Table.Td>
                    <Table.Td>
                      <NumberInput size="xs" min={1} max={525600} value={row.first} disabled={!row.on} w={140} allowDecimal={false}
                        aria-label={t('slaAdmin.firstResponseFor', { priority: t(`priority.${p}`) })} data-row={i}
                        error={idx >= 0 ? err(`targets[${idx}].first_response_minutes`) : undefined}
                        description={row.on ? minutesLabel(row.first) : undefined}
                        onChange={(v) => setTarget(p, { first: typeof v === 'number' ? v : 0 })} />
                    </Table.Td>
                    <Table.Td>
                      <NumberInput size="xs" min={1} max={525600} value={row.resolution} disabled={!row.on} w={140} allowDecimal={false}
                        aria-label={t('slaAdmin.resolutionFor', { priority: t(`priority.${p}`) })}
                        error={idx >= 0 ? err(`targets[${idx}].resolution_minutes`) : undefined}
                        description={row.on ? minutesLabel(row.resolution) : undefined}
                        onChange={(v) => setTarget(p, { resolution: typeof v === 'number' ? v : 0 })} />
                    </Table.Td>
                  </Table.Tr>
                );
              })}
            </Table.Tbody>
          </Table>
          <Title order={3} size="h6" mt="xs">{t('slaAdmin.calendar')}</Title>
          <Switch label={t('slaAdmin.useBusinessHours')} description={t('slaAdmin.useBusinessHoursHint')} checked={useHours}
            onChange={(e) => setUseHours(e.currentTarget.checked)} />
          {useHours && (
            <>
              <SegmentedControl w="fit-content" size="xs" value={ownHours ? 'own' : 'org'} onChange={(v) => setOwnHours(v === 'own')}
                aria-label={t('slaAdmin.hoursSource')}
                data={[{ value: 'org', label: t('slaAdmin.orgHours') }, { value: 'own', label: t('slaAdmin.ownHours') }]} />
              {ownHours && <BusinessHoursEditor value={hours} onChange={setHours} />}
              {err('business_hours') && <Text size="xs" c="var(--atum-danger)">{err('business_hours')}</Text>}
              <Select label={t('org.timezone')} clearable searchable value={zone} placeholder={t('slaAdmin.orgZone')} data={zones} limit={50}
                onChange={setZone} error={err('timezone')} comboboxProps={{ withinPortal: true }} />
            </>
          )}
          <Switch label={t('admin.active')} checked={active} onChange={(e) => setActive(e.currentTarget.checked)} />
          {Object.entries(save.errors).filter(([k]) => !/^(name|service_id|priority|targets|business_hours|timezone)/.test(k)).map(([k, v]) => (
            <Text key={k} size="xs" c="var(--atum-danger)">{k}: {v}</Text>
          ))}
          <Group justify="flex-end">
            <Button variant="subtle" color="gray" onClick={onClose}>{t('action.cancel')}</Button>
            <Button type="submit" loading={save.isPending} disabled={Object.keys(hourErrors).length > 0}>{t('action.save')}</Button>
          </Group>
        </Stack>
      </form>
    </Modal>
  );
}
