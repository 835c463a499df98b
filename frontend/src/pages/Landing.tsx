import { Box, Button, Container, Group, SimpleGrid, Stack, Text, ThemeIcon, Title } from '@mantine/core';
import { Link } from '@tanstack/react-router';
import { useTranslation } from 'react-i18next';
import { IconGauge, IconInbox, IconLock, IconTicket } from '../components/Icons';
import { SunDisc } from '../components/Logo';
import { PublicHeader } from '../components/PublicHeader';

const features = [
  { key: 'channels', icon: <IconInbox size={22} /> },
  { key: 'live', icon: <IconTicket size={22} /> },
  { key: 'sla', icon: <IconGauge size={22} /> },
  { key: 'secure', icon: <IconLock size={22} /> },
] as const;

export function Landing() {
  const { t } = useTranslation();
  return (
    <Box mih="100vh">
      <Box className="atum-hero">
        <PublicHeader />
        <Container size="lg" component="main" pt={60} pb={90}>
          <Stack align="center" ta="center" gap="lg">
            <SunDisc size={112} />
            <Title order={1} fz={{ base: 34, sm: 52 }} lts={3}>{t('landing.title')}</Title>
            <Text size="xl" c="dimmed" maw={640}>{t('landing.subtitle')}</Text>
            <Group justify="center" mt="md">
              <Button size="lg" component={Link} to="/login">{t('action.signIn')}</Button>
              <Button size="lg" variant="outline" component={Link} to="/portal/new">{t('landing.submit')}</Button>
            </Group>
          </Stack>
        </Container>
      </Box>
      <Container size="lg" py={60}>
        <SimpleGrid cols={{ base: 1, sm: 2, md: 4 }} spacing="lg">
          {features.map((f) => (
            <Stack key={f.key} className="atum-panel" p="lg" gap="sm">
              <ThemeIcon variant="light" size={40} radius="md">{f.icon}</ThemeIcon>
              <Title order={2} size="h4">{t(`landing.features.${f.key}.title`)}</Title>
              <Text size="sm" c="dimmed">{t(`landing.features.${f.key}.body`)}</Text>
            </Stack>
          ))}
        </SimpleGrid>
      </Container>
      <Container size="lg" component="footer" py="xl">
        <Text size="sm" c="dimmed" ta="center">{t('landing.footer')}</Text>
      </Container>
    </Box>
  );
}
