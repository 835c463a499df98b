import { ActionIcon, Button, Checkbox, Group, Stack, Text, TextInput } from '@mantine/core';
import { useTranslation } from 'react-i18next';

// A weekly schedule as the API keeps it (internal/businesstime.Schedule):
// weekday key → intervals of wall-clock "HH:MM" pairs; a missing or empty
// day is closed; an end at or before its start runs past midnight; "24:00"
// ends the day (which <input type="time"> cannot hold, hence text inputs).
export type Interval = [string, string];
export type Schedule = Partial<Record<Weekday, Interval[]>>;
export const WEEKDAYS = ['mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun'] as const;
export type Weekday = (typeof WEEKDAYS)[number];

const TIME = /^([01]\d|2[0-3]):[0-5]\d$/;
const DEFAULT: Interval = ['09:00', '17:00'];

/** officeHours is Monday to Friday, 09:00–17:00. */
export function officeHours(): Schedule {
  return Object.fromEntries(WEEKDAYS.slice(0, 5).map((d) => [d, [[...DEFAULT] as Interval]])) as Schedule;
}

/** scheduleErrors checks every interval; the keys are "mon.0.start" style. */
export function scheduleErrors(s: Schedule): Record<string, string> {
  const out: Record<string, string> = {};
  for (const d of WEEKDAYS) {
    (s[d] ?? []).forEach(([from, to], i) => {
      if (!TIME.test(from)) out[`${d}.${i}.start`] = 'HH:MM';
      if (!TIME.test(to) && to !== '24:00') out[`${d}.${i}.end`] = 'HH:MM';
      if (from === to) out[`${d}.${i}.end`] = 'same';
    });
  }
  return out;
}

/** compact drops closed days, as the API would store them anyway. */
export function compact(s: Schedule): Schedule {
  const out: Schedule = {};
  for (const d of WEEKDAYS) if (s[d]?.length) out[d] = s[d];
  return out;
}

/** openMinutes is how long the schedule is open in a week (overnight intervals included). */
export function openMinutes(s: Schedule): number {
  const min = (t: string) => +t.slice(0, 2) * 60 + +t.slice(3, 5);
  let total = 0;
  for (const d of WEEKDAYS) {
    for (const [from, to] of s[d] ?? []) {
      if (!TIME.test(from) || !(TIME.test(to) || to === '24:00')) continue;
      const a = min(from);
      const b = min(to);
      total += b > a ? b - a : 24 * 60 - a + b;
    }
  }
  return total;
}

/**
 * BusinessHoursEditor edits a weekly schedule: each day open or closed,
 * with one or more intervals (a lunch break is two).
 */
export function BusinessHoursEditor({ value, onChange, disabled }: {
  value: Schedule;
  onChange: (s: Schedule) => void;
  disabled?: boolean;
}) {
  const { t } = useTranslation();
  const errors = scheduleErrors(value);
  const setDay = (d: Weekday, ivs: Interval[]) => onChange({ ...value, [d]: ivs });
  const hours = openMinutes(value) / 60;
  return (
    <Stack gap={6} data-testid="business-hours">
      <Group gap="xs">
        <Button size="compact-xs" variant="light" disabled={disabled} onClick={() => onChange(officeHours())}>{t('hours.presetOffice')}</Button>
        <Button size="compact-xs" variant="light" disabled={disabled}
          onClick={() => onChange(Object.fromEntries(WEEKDAYS.map((d) => [d, [['00:00', '24:00']]])) as Schedule)}>{t('hours.presetAllDay')}</Button>
        <Button size="compact-xs" variant="subtle" color="gray" disabled={disabled} onClick={() => onChange({})}>{t('hours.clear')}</Button>
        <Text size="xs" c="dimmed" data-testid="hours-total">{t('hours.total', { hours: Number.isInteger(hours) ? hours : hours.toFixed(1) })}</Text>
      </Group>
      {WEEKDAYS.map((d) => {
        const ivs = value[d] ?? [];
        const open = ivs.length > 0;
        const dayName = t(`hours.days.${d}`);
        return (
          <Group key={d} gap="sm" align="flex-start" wrap="nowrap" data-testid={`day-${d}`} data-open={open}>
            <Checkbox w={110} mt={6} label={dayName} checked={open} disabled={disabled}
              onChange={(e) => setDay(d, e.currentTarget.checked ? [[...DEFAULT] as Interval] : [])} />
            {open ? (
              <Stack gap={4} style={{ flex: 1 }}>
                {ivs.map(([from, to], i) => (
                  <Group key={i} gap={6} wrap="nowrap">
                    <TextInput size="xs" w={90} value={from} placeholder="09:00" maxLength={5} disabled={disabled} error={!!errors[`${d}.${i}.start`]}
                      aria-label={t('hours.from', { day: dayName, n: i + 1 })}
                      onChange={(e) => setDay(d, ivs.map((iv, j) => (j === i ? [e.currentTarget.value, iv[1]] : iv)))} />
                    <Text size="xs" c="dimmed">–</Text>
                    <TextInput size="xs" w={90} value={to} disabled={disabled} error={!!errors[`${d}.${i}.end`]}
                      aria-label={t('hours.to', { day: dayName, n: i + 1 })} placeholder="17:00" maxLength={5}
                      onChange={(e) => setDay(d, ivs.map((iv, j) => (j === i ? [iv[0], e.currentTarget.value] : iv)))} />
                    {ivs.length > 1 && (
                      <ActionIcon variant="subtle" color="gray" size="sm" disabled={disabled} aria-label={t('hours.removeInterval', { day: dayName, n: i + 1 })}
                        onClick={() => setDay(d, ivs.filter((_, j) => j !== i))}>×</ActionIcon>
                    )}
                    {i === ivs.length - 1 && ivs.length < 4 && (
                      <Button size="compact-xs" variant="subtle" disabled={disabled}
                        aria-label={t('hours.addInterval', { day: dayName })}
                        onClick={() => setDay(d, [...ivs, [to === '24:00' ? '00:00' : to, '24:00'] as Interval])}>+</Button>
                    )}
                  </Group>
                ))}
                {ivs.some(([from, to]) => TIME.test(from) && TIME.test(to) && to < from) && (
                  <Text size="xs" c="dimmed">{t('hours.overnight')}</Text>
                )}
              </Stack>
            ) : (
              <Text size="sm" c="dimmed" mt={6}>{t('hours.closed')}</Text>
            )}
          </Group>
        );
      })}
    </Stack>
  );
}

/** Holiday closes a date (or the same date every year) unless it gives special hours. */
export interface Holiday { date?: string; yearly?: string; name?: string; hours?: Interval[] }

/** holidayDay is how a holiday is typed in: YYYY-MM-DD once, MM-DD every year. */
export const holidayDay = (h: Holiday) => h.date ?? h.yearly ?? '';
export function withDay(h: Holiday, day: string): Holiday {
  const { date: _d, yearly: _y, ...rest } = h;
  return /^\d{2}-\d{2}$/.test(day) ? { ...rest, yearly: day } : { ...rest, date: day };
}

/** HolidaysEditor lists closed dates; special hours already set are kept as they are. */
export function HolidaysEditor({ value, onChange, disabled }: { value: Holiday[]; onChange: (h: Holiday[]) => void; disabled?: boolean }) {
  const { t } = useTranslation();
  const bad = (d: string) => d !== '' && !/^(\d{4}-)?\d{2}-\d{2}$/.test(d);
  return (
    <Stack gap={6} data-testid="holidays">
      {value.length === 0 && <Text size="sm" c="dimmed">{t('hours.noHolidays')}</Text>}
      {value.map((h, i) => (
        <Group key={i} gap={6} wrap="nowrap">
          <TextInput size="xs" w={130} value={holidayDay(h)} placeholder="2026-12-24" disabled={disabled} error={bad(holidayDay(h))}
            aria-label={t('hours.holidayDate', { n: i + 1 })}
            onChange={(e) => onChange(value.map((x, j) => (j === i ? withDay(x, e.currentTarget.value.trim()) : x)))} />
          <TextInput size="xs" style={{ flex: 1 }} value={h.name ?? ''} placeholder={t('hours.holidayNamePlaceholder')} disabled={disabled}
            aria-label={t('hours.holidayName', { n: i + 1 })}
            onChange={(e) => onChange(value.map((x, j) => (j === i ? { ...x, name: e.currentTarget.value } : x)))} />
          {h.hours?.length ? <Text size="xs" c="dimmed">{h.hours.map((iv) => iv.join('–')).join(', ')}</Text> : null}
          <ActionIcon variant="subtle" color="gray" size="sm" disabled={disabled} aria-label={t('hours.removeHoliday', { n: i + 1 })}
            onClick={() => onChange(value.filter((_, j) => j !== i))}>×</ActionIcon>
        </Group>
      ))}
      <Button size="compact-xs" variant="subtle" w="fit-content" disabled={disabled} onClick={() => onChange([...value, { date: '' }])}>
        {t('hours.addHoliday')}
      </Button>
      <Text size="xs" c="dimmed">{t('hours.holidayHint')}</Text>
    </Stack>
  );
}
