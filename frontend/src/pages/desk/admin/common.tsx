// Shared pieces of the admin pages: a table panel; the styles of the inputs
// only these pages use load with them.
import '@mantine/core/styles/Checkbox.css';
import '@mantine/core/styles/CheckboxIndicator.css';
import '@mantine/core/styles/Switch.css';
import '@mantine/core/styles/NumberInput.css';
import { Paper, Table } from '@mantine/core';
import type { ReactNode } from 'react';

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
