import { Badge, Group, Text } from '@mantine/core';
import { useTranslation } from 'react-i18next';
import type { Ticket } from '../api/client';
import { absolute, relative, useNow } from './Time';

const HOUR = 3_600_000;

export type SlaState = 'none' | 'ok' | 'risk' | 'breached' | 'met';

/** slaState classifies one due time: breached, at risk (< 1 h left), ok; met once done. */
export function slaState(due: string | null | undefined, doneAt: string | null | undefined, breached: boolean, now: number): SlaState {
  if (breached) return 'breached';
  if (!due) return 'none';
  if (doneAt) return 'met';
  const left = new Date(due).getTime() - now;
  if (left <= 0) return 'breached';
  return left < HOUR ? 'risk' : 'ok';
}

export function ticketAtRisk(t: Ticket, now: number): boolean {
  const a = slaState(t.first_response_due_at, t.first_responded_at, t.first_response_breached, now);
  const b = slaState(t.resolution_due_at, t.resolved_at, t.resolution_breached, now);
  return a === 'risk' || a === 'breached' || b === 'risk' || b === 'breached';
}

const color: Record<SlaState, string> = { none: 'gray', ok: 'green', risk: 'orange', breached: 'red', met: 'teal' };

export function SlaLine({ label, due, doneAt, breached }: { label: string; due?: string | null; doneAt?: string | null; breached: boolean }) {
  const { t, i18n } = useTranslation();
  const now = useNow(15_000);
  const st = slaState(due, doneAt, breached, now);
  return (
    <Group justify="space-between" wrap="nowrap" data-testid="sla" data-state={st}>
      <Text size="sm">{label}</Text>
      {st === 'none' ? <Text size="sm" c="dimmed">{t('sla.none')}</Text> : (
        <Badge color={color[st]} variant="light" title={due ? absolute(due, i18n.language) : undefined}>
          {st === 'met' ? t('sla.met') : st === 'breached' ? t('sla.breached') : relative(due!, i18n.language, now)}
        </Badge>
      )}
    </Group>
  );
}
