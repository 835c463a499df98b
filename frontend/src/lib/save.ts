// useSave: how every form saves (admin pages, knowledge base).
import { notifications } from '@mantine/notifications';
import { useMutation, useQueryClient, type QueryKey } from '@tanstack/react-query';
import { useState } from 'react';
import { useTranslation } from 'react-i18next';
import { ApiError } from '../api/client';

export type FieldErrors = Record<string, string>;

/**
 * useSave runs a change: a toast on success, the problem's per-field
 * messages (422) kept for the form, the lists under key refreshed.
 */
export function useSave<V, R>(key: QueryKey, fn: (v: V) => Promise<R>, success: string | ((r: R) => string), onDone?: (r: R) => void) {
  const { t } = useTranslation();
  const qc = useQueryClient();
  const [errors, setErrors] = useState<FieldErrors>({});
  const m = useMutation({
    mutationFn: fn,
    onMutate: () => setErrors({}),
    onSuccess: (r) => {
      notifications.show({ color: 'green', message: typeof success === 'function' ? success(r) : success });
      onDone?.(r);
    },
    onError: (e) => {
      if (e instanceof ApiError && e.problem.errors) setErrors(e.problem.errors);
      notifications.show({ color: 'red', title: t('error.actionFailed'), message: e instanceof ApiError ? e.message : t('error.network') });
    },
    onSettled: () => void qc.invalidateQueries({ queryKey: key }),
  });
  return { ...m, errors, setErrors };
}
