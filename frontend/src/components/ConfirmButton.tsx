import { Button, Group, Modal, Text, type ButtonProps } from '@mantine/core';
import { useDisclosure } from '@mantine/hooks';
import { useTranslation } from 'react-i18next';

/** ConfirmButton asks before a destructive action. */
export function ConfirmButton({ label, title, body, confirmLabel, onConfirm, loading, ...props }:
  ButtonProps & { label: string; title: string; body: string; confirmLabel: string; onConfirm: () => void; loading?: boolean }) {
  const { t } = useTranslation();
  const [opened, { open, close }] = useDisclosure(false);
  return (
    <>
      <Button {...props} onClick={open} loading={loading}>{label}</Button>
      <Modal opened={opened} onClose={close} title={title} centered>
        <Text size="sm" mb="lg">{body}</Text>
        <Group justify="flex-end">
          <Button variant="default" onClick={close}>{t('action.keep')}</Button>
          <Button color="red" onClick={() => { close(); onConfirm(); }}>{confirmLabel}</Button>
        </Group>
      </Modal>
    </>
  );
}
