import { Tooltip } from '@mantine/core';
import { useTranslation } from 'react-i18next';
import { useEffect, useState } from 'react';

const units: [Intl.RelativeTimeFormatUnit, number][] = [
  ['year', 31536000], ['month', 2592000], ['week', 604800], ['day', 86400], ['hour', 3600], ['minute', 60],
];

/** relative renders "3 minutes ago" / "in 2 hours" in the UI language. */
export function relative(iso: string, lng: string, now = Date.now()): string {
  const secs = Math.round((new Date(iso).getTime() - now) / 1000);
  const rtf = new Intl.RelativeTimeFormat(lng, { numeric: 'auto' });
  for (const [unit, s] of units) {
    if (Math.abs(secs) >= s) return rtf.format(Math.trunc(secs / s), unit);
  }
  return rtf.format(secs, 'second');
}

export function absolute(iso: string, lng: string, timeZone?: string | null): string {
  return new Intl.DateTimeFormat(lng, { dateStyle: 'medium', timeStyle: 'short', timeZone: timeZone ?? undefined })
    .format(new Date(iso));
}

/** useNow ticks every interval ms (countdowns, "x minutes ago"). */
export function useNow(interval = 30_000) {
  const [now, setNow] = useState(() => Date.now());
  useEffect(() => {
    const id = setInterval(() => setNow(Date.now()), interval);
    return () => clearInterval(id);
  }, [interval]);
  return now;
}

export function RelativeTime({ iso }: { iso: string }) {
  const { i18n } = useTranslation();
  const now = useNow();
  return (
    <Tooltip label={absolute(iso, i18n.language)} openDelay={400}>
      <time dateTime={iso}>{relative(iso, i18n.language, now)}</time>
    </Tooltip>
  );
}
