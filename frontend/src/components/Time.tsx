import { useSyncExternalStore } from 'react';
import { useTranslation } from 'react-i18next';

const units: [Intl.RelativeTimeFormatUnit, number][] = [
  ['year', 31536000], ['month', 2592000], ['week', 604800], ['day', 86400], ['hour', 3600], ['minute', 60],
];

// Creating an Intl formatter costs far more than using one: a list of 50
// rows would build 100 of them per render.
const relFormats = new Map<string, Intl.RelativeTimeFormat>();
const absFormats = new Map<string, Intl.DateTimeFormat>();

/** relative renders "3 minutes ago" / "in 2 hours" in the UI language. */
export function relative(iso: string, lng: string, now = Date.now()): string {
  const secs = Math.round((new Date(iso).getTime() - now) / 1000);
  let rtf = relFormats.get(lng);
  if (!rtf) relFormats.set(lng, (rtf = new Intl.RelativeTimeFormat(lng, { numeric: 'auto' })));
  for (const [unit, s] of units) {
    if (Math.abs(secs) >= s) return rtf.format(Math.trunc(secs / s), unit);
  }
  return rtf.format(secs, 'second');
}

export function absolute(iso: string, lng: string, timeZone?: string | null): string {
  const key = `${lng}|${timeZone ?? ''}`;
  let f = absFormats.get(key);
  if (!f) absFormats.set(key, (f = new Intl.DateTimeFormat(lng, { dateStyle: 'medium', timeStyle: 'short', timeZone: timeZone ?? undefined })));
  return f.format(new Date(iso));
}

// One clock for every "x minutes ago" on the page, not one timer per row.
function clock(interval: number) {
  let now = Date.now();
  const listeners = new Set<() => void>();
  let timer: ReturnType<typeof setInterval> | null = null;
  return {
    get: () => now,
    subscribe(l: () => void) {
      listeners.add(l);
      timer ??= setInterval(() => {
        now = Date.now();
        listeners.forEach((f) => f());
      }, interval);
      return () => {
        listeners.delete(l);
        if (listeners.size === 0 && timer) {
          clearInterval(timer);
          timer = null;
        }
      };
    },
  };
}
const clocks = new Map<number, ReturnType<typeof clock>>();

/** useNow is a shared clock ticking every interval ms (countdowns, "x minutes ago"). */
export function useNow(interval = 30_000) {
  let c = clocks.get(interval);
  if (!c) clocks.set(interval, (c = clock(interval)));
  return useSyncExternalStore(c.subscribe, c.get);
}

export function RelativeTime({ iso }: { iso: string }) {
  const { i18n } = useTranslation();
  useNow(); // re-render on the shared tick
  // The exact time is shown on hover; formatting it for every row up front
  // would cost more than the row itself.
  return (
    <time dateTime={iso} onMouseEnter={(e) => { e.currentTarget.title = absolute(iso, i18n.language); }}>
      {relative(iso, i18n.language)}
    </time>
  );
}

/** warmIntl builds the formatters while the browser is idle (the first one loads locale data). */
export function warmIntl(lng: string) {
  const run = () => {
    relative(new Date().toISOString(), lng);
    absolute(new Date().toISOString(), lng);
  };
  if ('requestIdleCallback' in window) requestIdleCallback(run, { timeout: 2000 });
  else setTimeout(run, 200);
}
