import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import en from './locales/en.json';
import { PRIORITIES, STATUSES } from './api/client';

function files(dir: string): string[] {
  return readdirSync(dir).flatMap((f) => {
    const p = join(dir, f);
    if (statSync(p).isDirectory()) return files(p);
    return /\.(ts|tsx)$/.test(f) && !/\.test\./.test(f) ? [p] : [];
  });
}

function has(key: string): boolean {
  let node: unknown = en;
  for (const part of key.split('.')) {
    if (typeof node !== 'object' || node === null) return false;
    const obj = node as Record<string, unknown>;
    // i18next plurals: list.shown → list.shown_one / list.shown_other
    node = part in obj ? obj[part] : obj[`${part}_other`];
  }
  return typeof node === 'string';
}

describe('English strings', () => {
  const src = files(join(__dirname));
  const literal = /\bt\(\s*'([a-zA-Z0-9_.]+)'/g;

  it('has every key the code asks for', () => {
    const missing: string[] = [];
    for (const f of src) {
      for (const m of readFileSync(f, 'utf8').matchAll(literal)) {
        if (!has(m[1])) missing.push(`${m[1]} (${f})`);
      }
    }
    expect(missing).toEqual([]);
  });

  it('names every status, priority, role, transition and live state', () => {
    const keys = [
      ...STATUSES.map((s) => `status.${s}`), ...STATUSES.map((s) => `transition.${s}`),
      ...PRIORITIES.map((p) => `priority.${p}`),
      ...['customer_user', 'customer_admin', 'agent', 'manager', 'admin'].map((r) => `role.${r}`),
      ...['off', 'connecting', 'live', 'down'].flatMap((s) => [`live.${s}`, `live.${s}Hint`]),
      ...['all', 'mine', 'unassigned', 'new'].map((q) => `queue.${q}`),
      ...['j', 'k', 'enter', 'r', 'n', 'search'].map((k) => `shortcuts.${k}`),
      ...['channels', 'live', 'sla', 'secure'].flatMap((f) => [`landing.features.${f}.title`, `landing.features.${f}.body`]),
    ];
    expect(keys.filter((k) => !has(k))).toEqual([]);
  });

  it('has no user-visible English literal in JSX text', () => {
    // A crude guard: text nodes of three or more words outside t() are suspicious.
    const offenders: string[] = [];
    for (const f of src.filter((x) => x.endsWith('.tsx'))) {
      for (const m of readFileSync(f, 'utf8').matchAll(/>\s*([A-Z][a-z]+(?: [a-z]+){2,})\s*</g)) offenders.push(`${m[1]} (${f})`);
    }
    expect(offenders).toEqual([]);
  });
});
