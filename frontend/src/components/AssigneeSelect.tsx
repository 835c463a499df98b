import { Select } from '@mantine/core';
import { useTranslation } from 'react-i18next';
import { useStaff } from '../lib/queries';

/** AssigneeSelect picks an agent, manager or admin of the organisation. */
export function AssigneeSelect({ value, onChange, disabled, label, placeholder, size }: {
  value: string | null; onChange: (id: string) => void; disabled?: boolean; label?: string; placeholder?: string; size?: 'xs' | 'sm';
}) {
  const { t } = useTranslation();
  const staff = useStaff();
  return (
    <Select label={label} aria-label={label ?? placeholder ?? t('assign.label')} placeholder={placeholder ?? t('assign.placeholder')}
      size={size} value={value} disabled={disabled || staff.isPending} searchable nothingFoundMessage={t('assign.none')}
      data={(staff.data ?? []).map((u) => ({ value: u.id, label: `${u.name || u.email} · ${t(`role.${u.role}`)}` }))}
      onChange={(v) => v && v !== value && onChange(v)} allowDeselect={false} comboboxProps={{ withinPortal: true }} />
  );
}
