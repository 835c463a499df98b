import { Select } from '@mantine/core';
import { notifications } from '@mantine/notifications';
import { useQuery } from '@tanstack/react-query';
import { useState } from 'react';
import { useTranslation } from 'react-i18next';
import { ApiError, unwrap } from '../api/client';
import { useApi } from '../lib/services';

/** CannedPicker inserts a canned response, filled in for the ticket, into the reply. */
export function CannedPicker({ ticketId, onInsert }: { ticketId: string; onInsert: (text: string) => void }) {
  const { t } = useTranslation();
  const api = useApi();
  const [busy, setBusy] = useState(false);
  const list = useQuery({
    queryKey: ['canned'],
    staleTime: 60_000,
    queryFn: ({ signal }) => unwrap(api.GET('/api/v1/canned-responses', { signal, params: { query: { limit: 200 } } })).then((p) => p.items),
  });
  const pick = async (id: string | null) => {
    if (!id) return;
    setBusy(true);
    try {
      const r = await unwrap(api.GET('/api/v1/canned-responses/{cannedID}/render', {
        params: { path: { cannedID: id }, query: { ticket_id: ticketId } },
      }));
      onInsert(r.content);
    } catch (e) {
      notifications.show({ color: 'red', title: t('error.actionFailed'), message: e instanceof ApiError ? e.message : t('error.network') });
    } finally {
      setBusy(false);
    }
  };
  if (!list.data?.length) return null;
  return (
    <Select size="xs" w={220} searchable clearable={false} value={null} onChange={(v) => void pick(v)} disabled={busy}
      aria-label={t('canned.insert')} placeholder={t('canned.insert')} data-testid="canned-picker" nothingFoundMessage={t('canned.none')}
      data={list.data.map((c) => ({ value: c.id, label: c.title }))} comboboxProps={{ withinPortal: true }} />
  );
}
