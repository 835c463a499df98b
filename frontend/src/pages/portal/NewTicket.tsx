import { Button, Group, Paper, SegmentedControl, Select, Stack, Text, TextInput, Textarea, Title } from '@mantine/core';
import { notifications } from '@mantine/notifications';
import { useMutation, useQueryClient } from '@tanstack/react-query';
import { useNavigate } from '@tanstack/react-router';
import { useState, type FormEvent } from 'react';
import { useTranslation } from 'react-i18next';
import { ApiError, PRIORITIES, unwrap, type Priority } from '../../api/client';
import { FileDrop, useUploads } from '../../components/FileDrop';
import { keys, useServiceList } from '../../lib/queries';
import { useApi } from '../../lib/services';

export function NewTicket() {
  const { t } = useTranslation();
  const api = useApi();
  const qc = useQueryClient();
  const navigate = useNavigate();
  const uploads = useUploads();
  const [subject, setSubject] = useState('');
  const [description, setDescription] = useState('');
  const [priority, setPriority] = useState<Priority>('medium');
  const [priorityTouched, setPriorityTouched] = useState(false);
  const [serviceId, setServiceId] = useState<string | null>(null);
  const services = useServiceList({ activeOnly: true });
  const [fieldErrors, setFieldErrors] = useState<Record<string, string>>({});
  // One key per form: a double click or a retry after a lost answer files one ticket.
  const [idemKey] = useState(() => crypto.randomUUID());

  const create = useMutation({
    mutationFn: async () => {
      const { data, error, response } = await api.POST('/api/v1/tickets', {
        params: { header: { Prefer: 'wait=5', 'Idempotency-Key': idemKey } },
        body: {
          subject: subject.trim(), description: description.trim(), priority, service_id: serviceId ?? undefined,
          attachment_ids: uploads.ids.length ? uploads.ids : undefined,
        },
      });
      if (!response.ok) return (await unwrap(Promise.resolve({ error, response }))) as string;
      // 201: the stored ticket; 202: queued, its id is final either way.
      return data && 'ticket_id' in data ? data.ticket_id : (data as { id: string }).id;
    },
    onSuccess: (id) => {
      void qc.invalidateQueries({ queryKey: keys.tickets });
      notifications.show({ color: 'green', message: t('newTicket.created') });
      void navigate({ to: '/portal/tickets/$ticketId', params: { ticketId: id } });
    },
    onError: (e) => {
      if (e instanceof ApiError && e.problem.errors) setFieldErrors(e.problem.errors);
      notifications.show({ color: 'red', title: t('newTicket.failed'), message: e instanceof ApiError ? e.message : t('error.network') });
    },
  });

  function submit(e: FormEvent) {
    e.preventDefault();
    const errs: Record<string, string> = {};
    if (!subject.trim()) errs.subject = t('newTicket.subjectRequired');
    if (!description.trim()) errs.description = t('newTicket.descriptionRequired');
    setFieldErrors(errs);
    if (Object.keys(errs).length === 0) create.mutate();
  }

  return (
    <Stack gap="lg" maw={760}>
      <Title order={1} size="h2">{t('portal.newTicket')}</Title>
      <Paper p="lg" className="atum-panel">
        <form onSubmit={submit} noValidate>
          <Stack gap="md">
            {(services.data?.length ?? 0) > 0 && (
              <Select label={t('ticket.service')} placeholder={t('newTicket.servicePlaceholder')} value={serviceId} clearable searchable
                data-testid="new-service" error={fieldErrors.service_id}
                data={services.data!.map((sv) => ({ value: sv.id, label: sv.name }))}
                onChange={(v) => {
                  setServiceId(v);
                  // The service's usual priority, unless the customer already chose one.
                  const sv = services.data!.find((x) => x.id === v);
                  if (sv?.default_priority && !priorityTouched) setPriority(sv.default_priority);
                }} />
            )}
            <TextInput label={t('ticket.subject')} required value={subject} maxLength={300}
              onChange={(e) => setSubject(e.currentTarget.value)} error={fieldErrors.subject} />
            <Textarea label={t('ticket.description')} required value={description} autosize minRows={6}
              onChange={(e) => setDescription(e.currentTarget.value)} error={fieldErrors.description}
              description={t('newTicket.descriptionHint')} />
            <Stack gap={4}>
              <Text size="sm" fw={500} id="priority-label">{t('ticket.priority')}</Text>
              <div role="radiogroup" aria-labelledby="priority-label">
                <SegmentedControl value={priority} onChange={(v) => { setPriority(v as Priority); setPriorityTouched(true); }} fullWidth
                  data={PRIORITIES.map((p) => ({ value: p, label: t(`priority.${p}`) }))} />
              </div>
              {fieldErrors.priority && <Text size="xs" c="var(--atum-danger)">{fieldErrors.priority}</Text>}
            </Stack>
            <Stack gap={4}>
              <Text size="sm" fw={500}>{t('newTicket.attachments')}</Text>
              <FileDrop uploads={uploads} />
              {fieldErrors.attachment_ids && <Text size="xs" c="var(--atum-danger)">{fieldErrors.attachment_ids}</Text>}
            </Stack>
            <Group justify="flex-end">
              <Button type="submit" loading={create.isPending} disabled={uploads.busy}>{t('newTicket.submit')}</Button>
            </Group>
          </Stack>
        </form>
      </Paper>
    </Stack>
  );
}
