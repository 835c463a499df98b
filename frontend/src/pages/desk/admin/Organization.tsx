import { Button, Group, Paper, Select, Stack, Switch, Text, TextInput, Textarea, Title } from '@mantine/core';
import { useQuery } from '@tanstack/react-query';
import { useMemo, useState } from 'react';
import { useTranslation } from 'react-i18next';
import { unwrap } from '../../../api/client';
import type { operations, paths } from '../../../api/schema';
import {
  BusinessHoursEditor, compact, HolidaysEditor, officeHours, scheduleErrors, type Holiday, type Schedule,
} from '../../../components/BusinessHoursEditor';
import { ErrorState, ListSkeleton } from '../../../components/States';
import { useApi } from '../../../lib/services';
import { useSave } from '../../../lib/save';

type Org = paths['/api/v1/organizations']['get']['responses'][200]['content']['application/json']['items'][number];
const orgKey = ['organization'] as const;
type OrgBody = operations['patchOrganization']['requestBody']['content']['application/json'];

/** timeZones lists the browser's IANA zones (for the time zone pickers). */
export function timeZones(): string[] {
  const intl = Intl as unknown as { supportedValuesOf?: (k: string) => string[] };
  const zones = intl.supportedValuesOf?.('timeZone') ?? [];
  return zones.includes('UTC') ? zones : ['UTC', ...zones];
}

/** Organization: name, time zone and the business calendar SLA policies inherit. */
export function Organization() {
  const api = useApi();
  const org = useQuery({
    queryKey: orgKey,
    queryFn: ({ signal }) => unwrap(api.GET('/api/v1/organizations', { signal })).then((p) => p.items[0]),
  });
  if (org.isPending) return <ListSkeleton rows={4} />;
  if (org.isError) return <ErrorState error={org.error} onRetry={() => void org.refetch()} />;
  return <OrgForm org={org.data} key={org.data.updated_at} />;
}

function OrgForm({ org }: { org: Org }) {
  const { t } = useTranslation();
  const api = useApi();
  const zones = useMemo(timeZones, []);
  const initialHours = (org.business_hours ?? null) as Schedule | null;
  const [name, setName] = useState(org.name);
  const [timezone, setTimezone] = useState(org.timezone);
  const [allDay, setAllDay] = useState(initialHours === null);
  const [hours, setHours] = useState<Schedule>(initialHours ?? officeHours());
  const [holidays, setHolidays] = useState<Holiday[]>((org.holidays ?? []) as Holiday[]);
  const [ips, setIps] = useState(((org.allowed_ips ?? []) as string[] | null)?.join('\n') ?? '');
  const save = useSave(orgKey, (body: OrgBody) =>
    unwrap(api.PATCH('/api/v1/organizations/{orgID}', { params: { path: { orgID: org.id } }, body })), t('org.saved'));
  const hourErrors = allDay ? {} : scheduleErrors(hours);
  const submit = () => save.mutate({
    name: name.trim(), timezone, business_hours: allDay ? null : compact(hours),
    holidays: holidays.filter((h) => h.date || h.yearly),
    allowed_ips: ips.split(/[\s,]+/).map((s) => s.trim()).filter(Boolean),
  });
  return (
    <form onSubmit={(e) => { e.preventDefault(); submit(); }} noValidate data-testid="org-form">
      <Stack gap="md" maw={820}>
        <Paper p="md" className="atum-panel">
          <Stack gap="sm">
            <Title order={2} size="h5">{t('org.general')}</Title>
            <TextInput label={t('admin.name')} value={name} onChange={(e) => setName(e.currentTarget.value)} error={save.errors.name} maxLength={200} />
            <Text size="xs" c="dimmed">{t('org.slug', { slug: org.slug })}</Text>
            <Select label={t('org.timezone')} searchable value={timezone} data={zones} allowDeselect={false} error={save.errors.timezone}
              onChange={(v) => v && setTimezone(v)} comboboxProps={{ withinPortal: true }} limit={50} />
          </Stack>
        </Paper>
        <Paper p="md" className="atum-panel">
          <Stack gap="sm">
            <Title order={2} size="h5">{t('org.businessHours')}</Title>
            <Text size="sm" c="dimmed">{t('org.businessHoursHint')}</Text>
            <Switch label={t('org.allDay')} checked={allDay} onChange={(e) => setAllDay(e.currentTarget.checked)} />
            {!allDay && <BusinessHoursEditor value={hours} onChange={setHours} />}
            {save.errors.business_hours && <Text size="xs" c="var(--atum-danger)">{save.errors.business_hours}</Text>}
            <Title order={3} size="h6" mt="xs">{t('org.holidays')}</Title>
            <HolidaysEditor value={holidays} onChange={setHolidays} />
            {save.errors.holidays && <Text size="xs" c="var(--atum-danger)">{save.errors.holidays}</Text>}
          </Stack>
        </Paper>
        <Paper p="md" className="atum-panel">
          <Stack gap="sm">
            <Title order={2} size="h5">{t('org.security')}</Title>
            <Textarea label={t('org.allowedIps')} description={t('org.allowedIpsHint')} value={ips} autosize minRows={2}
              onChange={(e) => setIps(e.currentTarget.value)} error={save.errors.allowed_ips} />
          </Stack>
        </Paper>
        <Group justify="flex-end">
          <Button type="submit" loading={save.isPending} disabled={Object.keys(hourErrors).length > 0}>{t('action.save')}</Button>
        </Group>
      </Stack>
    </form>
  );
}
