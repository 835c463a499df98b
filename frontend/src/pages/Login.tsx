import { Alert, Anchor, Button, Center, Paper, PasswordInput, Stack, Text, TextInput, Title } from '@mantine/core';
import { Link, useNavigate, useSearch } from '@tanstack/react-router';
import { useEffect, useState, type FormEvent } from 'react';
import { useTranslation } from 'react-i18next';
import { IconAlert } from '../components/Icons';
import { Wordmark } from '../components/Logo';
import { homeFor, isStaff, LoginError } from '../lib/session';
import { useServices, useSession } from '../lib/services';

/** Login is the one sign-in page for every role; it routes by role afterwards. */
export function Login() {
  const { t } = useTranslation();
  const { session } = useServices();
  const state = useSession();
  const navigate = useNavigate();
  const { next } = useSearch({ from: '/login' });
  const [email, setEmail] = useState('');
  const [password, setPassword] = useState('');
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);

  useEffect(() => {
    void session.ready();
  }, [session]);

  // Already signed in: straight to where they were going.
  useEffect(() => {
    if (state.status === 'authenticated') void navigate({ href: target(next, state.user), replace: true });
  }, [state, next, navigate]);

  async function submit(e: FormEvent) {
    e.preventDefault();
    setBusy(true);
    setError(null);
    try {
      await session.login(email.trim(), password);
    } catch (err) {
      if (err instanceof LoginError && err.status === 429) {
        setError(t('login.locked', { minutes: Math.max(1, Math.ceil((err.retryAfter ?? 900) / 60)) }));
      } else if (err instanceof LoginError && (err.status === 401 || err.status === 422)) {
        setError(t('login.invalid'));
      } else {
        setError(t('error.network'));
      }
      setBusy(false);
    }
  }

  return (
    <Center mih="100vh" p="md" className="atum-hero" component="main">
      <Paper w="100%" maw={420} p="xl" className="atum-panel">
        <form onSubmit={submit} noValidate>
          <Stack gap="md">
            <Anchor component={Link} to="/" aria-label={t('brand.home')} underline="never"><Wordmark size={30} /></Anchor>
            <Title order={1} size="h2">{t('login.title')}</Title>
            <Text c="dimmed" size="sm">{t('login.subtitle')}</Text>
            {state.status === 'anonymous' && state.expired && (
              <Alert color="gold" variant="light" role="status">{t('login.expired')}</Alert>
            )}
            {error && <Alert color="red" variant="light" icon={<IconAlert />} role="alert">{error}</Alert>}
            <TextInput label={t('login.email')} type="email" autoComplete="username" required value={email}
              onChange={(e) => setEmail(e.currentTarget.value)} autoFocus />
            <PasswordInput label={t('login.password')} autoComplete="current-password" required value={password}
              onChange={(e) => setPassword(e.currentTarget.value)} />
            <Button type="submit" loading={busy} disabled={!email || !password} fullWidth>{t('action.signIn')}</Button>
          </Stack>
        </form>
      </Paper>
    </Center>
  );
}

function target(next: string | undefined, user: { role: string }): string {
  // A customer asked to go to the desk, or staff to the portal, get their own home.
  if (next && (next.startsWith('/desk') ? isStaff(user) : next.startsWith('/portal') ? !isStaff(user) : true)) return next;
  return homeFor(user);
}
