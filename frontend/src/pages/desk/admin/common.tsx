// Shared pieces of the admin pages: saving with a toast and the server's
// field errors, and a table panel. The styles of the inputs only these
// pages use load with them.
import '@mantine/core/styles/Checkbox.css';
import '@mantine/core/styles/CheckboxIndicator.css';
import '@mantine/core/styles/Switch.css';
import '@mantine/core/styles/NumberInput.css';
import { Paper, Table } from '@mantine/core';
import { notifications } from '@mantine/notifications';
import { useMutation, useQueryClient, type QueryKey } from '@tanstack/react-query';
import { useState, type ReactNode } from 'react';
import { useTranslation } from 'react-i18next';
import { ApiError } from '../../../api/client';

export type FieldErrors = Record<string, string>;

/**
 * useSave runs a change: a toast on success, the problem's per-field
 * messages (422) kept for the form, the lists under key refreshed.
 */
export function useSave<V, R>(key: QueryKey, fn: (v: V) => Promise<R>, success: string, onDone?: (r: R) => void) {
  const { t } = useTranslation();
  const qc = useQueryClient();
  const [errors, setErrors] = useState<FieldErrors>({});
  const m = useMutation({
    mutationFn: fn,
    onMutate: () => setErrors({}),
    onSuccess: (r) => {
      notifications.show({ color: 'green', message: success });
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

/** AdminTable is a scrollable panel holding a table with a header row. */
export function AdminTable({ head, children, testId }: { head: string[]; children: ReactNode; testId: string }) {
  return (
    <Paper className="atum-panel" p={0} style={{ overflowX: 'auto' }}>
      <Table verticalSpacing="sm" data-testid={testId}>
        <Table.Thead>
          <Table.Tr>{head.map((h, i) => <Table.Th key={i}>{h}</Table.Th>)}</Table.Tr>
        </Table.Thead>
        <Table.Tbody>{children}</Table.Tbody>
      </Table>
    </Paper>
  );
}
