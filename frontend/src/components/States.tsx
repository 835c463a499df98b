// Empty, loading and failure states, shown the same way on every page.
import { Alert, Button, Center, EmptyState as MEmptyState, Skeleton, Stack, Text, Title } from '@mantine/core';
import { Link } from '@tanstack/react-router';
import { useTranslation } from 'react-i18next';
import { ApiError } from '../api/client';
import { IconAlert, IconLock, IconSearch } from './Icons';
import { SunDisc } from './Logo';

export function EmptyState({ title, description, action }: { title: string; description?: string; action?: React.ReactNode }) {
  return (
    <MEmptyState py="xl" icon={<SunDisc size={48} />} title={title} description={description} data-testid="empty-state">
      {action}
    </MEmptyState>
  );
}

export function ListSkeleton({ rows = 6 }: { rows?: number }) {
  return (
    <Stack gap="xs" data-testid="loading" aria-busy="true">
      {Array.from({ length: rows }, (_, i) => <Skeleton key={i} height={38} radius="sm" />)}
    </Stack>
  );
}

/** ErrorState shows a failed load honestly: gone, forbidden, offline or broken, with a retry. */
export function ErrorState({ error, onRetry }: { error: unknown; onRetry?: () => void }) {
  const { t } = useTranslation();
  if (error instanceof ApiError && error.status === 404) return <NotFoundPanel />;
  if (error instanceof ApiError && error.status === 403) return <ForbiddenPanel />;
  const offline = !(error instanceof ApiError);
  return (
    <Alert color="red" variant="light" icon={<IconAlert />} title={offline ? t('error.networkTitle') : t('error.title')} role="alert">
      <Stack gap="xs" align="flex-start">
        <Text size="sm">{offline ? t('error.network') : (error as ApiError).message}</Text>
        {onRetry && <Button size="xs" variant="outline" onClick={onRetry}>{t('action.retry')}</Button>}
      </Stack>
    </Alert>
  );
}

/** Panel is a full-page answer such as 403 or 404, with a way back. */
function Panel({ icon, code, name, testId }: { icon: React.ReactNode; code: string; name: 'forbidden' | 'notFound'; testId: string }) {
  const { t } = useTranslation();
  return (
    <Center py={80} data-testid={testId}>
      <Stack align="center" gap="sm" maw={460} ta="center">
        {icon}
        <Title order={1}>{code}</Title>
        <Title order={2} size="h3">{t(`${name}.title`)}</Title>
        <Text c="dimmed">{t(`${name}.body`)}</Text>
        <Button component={Link} to="/">{t('nav.home')}</Button>
      </Stack>
    </Center>
  );
}

export const ForbiddenPanel = () => <Panel icon={<IconLock size={48} />} code="403" name="forbidden" testId="forbidden" />;
export const NotFoundPanel = () => <Panel icon={<IconSearch size={48} />} code="404" name="notFound" testId="not-found" />;
