import { Button, Container, Group } from '@mantine/core';
import { Link } from '@tanstack/react-router';
import { useTranslation } from 'react-i18next';
import { homeFor } from '../lib/session';
import { useSession } from '../lib/services';
import { Wordmark } from './Logo';
import { ThemeToggle } from './ThemeToggle';

export function PublicHeader() {
  const { t } = useTranslation();
  const s = useSession();
  return (
    <header>
      <Container size="lg" py="md">
        <Group justify="space-between">
          <Link to="/" aria-label={t('brand.home')} className="atum-wordmark"><Wordmark size={30} /></Link>
          <Group gap="sm">
            <ThemeToggle />
            {s.status === 'authenticated' ? (
              <Button component={Link} to={homeFor(s.user)} variant="outline">{t('landing.open')}</Button>
            ) : (
              <Button component={Link} to="/login" variant="outline">{t('action.signIn')}</Button>
            )}
          </Group>
        </Group>
      </Container>
    </header>
  );
}
