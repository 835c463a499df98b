// The knowledge base, one set of pages for both sides: customers read the
// published public articles (portal); staff also see drafts and internal
// articles, write them with the same rich editor as replies, and managers
// and admins publish them (desk).
import { Alert, Badge, Button, Group, Paper, SegmentedControl, Select, Stack, Text, TextInput, Title } from '@mantine/core';
import { useDebouncedValue } from '@mantine/hooks';
import { useQuery } from '@tanstack/react-query';
import { Link, useNavigate, useParams } from '@tanstack/react-router';
import { lazy, Suspense, useState } from 'react';
import { useTranslation } from 'react-i18next';
import { unwrap } from '../../api/client';
import type { components } from '../../api/schema';
import { ConfirmButton } from '../../components/ConfirmButton';
import { IconSearch } from '../../components/Icons';
import type { Draft } from '../../components/RichEditor';
import { RichText } from '../../components/RichText';
import { EmptyState, ErrorState, ListSkeleton } from '../../components/States';
import { RelativeTime } from '../../components/Time';
import { isStaff } from '../../lib/session';
import { useApi, useUser } from '../../lib/services';
import { useSave } from '../../lib/save';

type Article = components['schemas']['KBArticle'];
type Summary = components['schemas']['KBArticleSummary'];
type Visibility = components['schemas']['KBVisibility'];
type Side = 'portal' | 'desk';
const kbKey = ['kb'] as const;
const RichEditor = lazy(() => import('../../components/RichEditor'));

const canPublish = (role: string) => role === 'manager' || role === 'admin';

function useCategories() {
  const api = useApi();
  return useQuery({
    queryKey: [...kbKey, 'categories'],
    staleTime: 60_000,
    queryFn: ({ signal }) => unwrap(api.GET('/api/v1/kb/categories', { signal })).then((p) => p.items),
  });
}

/** KnowledgeBase lists articles with search and a category filter. */
export function KnowledgeBase({ side }: { side: Side }) {
  const { t } = useTranslation();
  const api = useApi();
  const user = useUser();
  const staff = isStaff(user);
  const [q, setQ] = useState('');
  const [query] = useDebouncedValue(q.trim(), 250);
  const [category, setCategory] = useState<string | null>(null);
  const [status, setStatus] = useState<'all' | 'draft' | 'published'>('all');
  const cats = useCategories();
  const list = useQuery({
    queryKey: [...kbKey, 'articles', query, category, status],
    queryFn: ({ signal }) => unwrap(api.GET('/api/v1/kb/articles', {
      signal,
      params: { query: { q: query || undefined, category_id: category ?? undefined, status: staff && status !== 'all' ? status : undefined, limit: 100 } },
    })).then((p) => p.items),
  });
  return (
    <Stack gap="md" data-testid="kb">
      <Group justify="space-between">
        <Title order={1} size="h2">{t('kb.title')}</Title>
        {staff && side === 'desk' && <Button component={Link} to="/desk/kb/new">{t('kb.new')}</Button>}
      </Group>
      <Group gap="sm" align="flex-end">
        <TextInput style={{ flex: 1, minWidth: 220 }} leftSection={<IconSearch />} placeholder={t('kb.search')} aria-label={t('kb.search')}
          value={q} onChange={(e) => setQ(e.currentTarget.value)} />
        {(cats.data?.length ?? 0) > 0 && (
          <Select w={220} clearable placeholder={t('kb.allCategories')} aria-label={t('kb.category')} value={category} onChange={setCategory}
            data={cats.data!.map((c) => ({ value: c.id, label: `${c.name} (${c.article_count})` }))} comboboxProps={{ withinPortal: true }} />
        )}
        {staff && side === 'desk' && (
          <SegmentedControl value={status} onChange={(v) => setStatus(v as typeof status)} aria-label={t('kb.status')}
            data={[{ value: 'all', label: t('kb.all') }, { value: 'published', label: t('kb.published') }, { value: 'draft', label: t('kb.drafts') }]} />
        )}
      </Group>
      {list.isPending ? <ListSkeleton rows={4} /> : list.isError ? <ErrorState error={list.error} onRetry={() => void list.refetch()} /> :
        list.data.length === 0 ? <EmptyState title={query ? t('kb.noMatch') : t('kb.empty')} description={t('kb.emptyBody')} /> : (
          <Stack gap="sm" component="ul" m={0} p={0} style={{ listStyle: 'none' }}>
            {list.data.map((a) => (
              <li key={a.id}>
                {side === 'desk' ? (
                  <Link to="/desk/kb/$articleId" params={{ articleId: a.id }} className="atum-panel atum-kb-item" data-testid="kb-item">
                    <ArticleSummary a={a} staff={staff} />
                  </Link>
                ) : (
                  <Link to="/portal/kb/$articleId" params={{ articleId: a.id }} className="atum-panel atum-kb-item" data-testid="kb-item">
                    <ArticleSummary a={a} staff={staff} />
                  </Link>
                )}
              </li>
            ))}
          </Stack>
        )}
    </Stack>
  );
}

function ArticleSummary({ a, staff }: { a: Summary; staff: boolean }) {
  const { t } = useTranslation();
  return (
    <>
      <Group justify="space-between" wrap="nowrap" mb={4}>
        <Text fw={600}>{a.title}</Text>
        {staff && (
          <Group gap={4} wrap="nowrap">
            {a.visibility === 'internal' && <Badge size="xs" color="orange" variant="light">{t('kb.internal')}</Badge>}
            <Badge size="xs" variant="light" color={a.is_published ? 'green' : 'gray'}>{a.is_published ? t('kb.published') : t('kb.draft')}</Badge>
          </Group>
        )}
      </Group>
      <Text size="sm" c="dimmed" lineClamp={2}>{a.excerpt}</Text>
    </>
  );
}

/** KbArticlePage shows one article; staff edit it, publishers publish it. */
export function KbArticlePage({ side }: { side: Side }) {
  const { t } = useTranslation();
  const api = useApi();
  const user = useUser();
  const navigate = useNavigate();
  const { articleId } = useParams({ strict: false }) as { articleId: string };
  const [editing, setEditing] = useState(false);
  const article = useQuery({
    queryKey: [...kbKey, 'article', articleId],
    queryFn: ({ signal }) => unwrap(api.GET('/api/v1/kb/articles/{articleID}', { signal, params: { path: { articleID: articleId } } })),
  });
  const publish = useSave(kbKey, (on: boolean) => on
    ? unwrap(api.POST('/api/v1/kb/articles/{articleID}/publish', { params: { path: { articleID: articleId } } }))
    : unwrap(api.POST('/api/v1/kb/articles/{articleID}/unpublish', { params: { path: { articleID: articleId } } })),
  (r) => (r.is_published ? t('kb.publishedToast') : t('kb.unpublishedToast')));
  const remove = useSave(kbKey, () => unwrap(api.DELETE('/api/v1/kb/articles/{articleID}', { params: { path: { articleID: articleId } } })),
    t('kb.deleted'), () => void navigate({ to: '/desk/kb' }));
  if (article.isPending) return <ListSkeleton rows={5} />;
  if (article.isError) return <ErrorState error={article.error} onRetry={() => void article.refetch()} />;
  const a = article.data;
  const staff = side === 'desk' && isStaff(user);
  if (editing) return <KbEditor article={a} onDone={() => setEditing(false)} />;
  return (
    <Stack gap="md" maw={860} data-testid="kb-article">
      <Button component={Link} to={side === 'desk' ? '/desk/kb' : '/portal/kb'} variant="subtle" color="gray" w="fit-content" px={0}>← {t('kb.title')}</Button>
      <Title order={1} size="h2">{a.title}</Title>
      <Group gap="xs">
        {staff && a.visibility === 'internal' && <Badge color="orange" variant="light">{t('kb.internal')}</Badge>}
        {staff && <Badge variant="light" color={a.is_published ? 'green' : 'gray'}>{a.is_published ? t('kb.published') : t('kb.draft')}</Badge>}
        <Text size="xs" c="dimmed">{t('kb.updated')} <RelativeTime iso={a.updated_at} /></Text>
        {staff && a.author_name && <Text size="xs" c="dimmed">· {a.author_name}</Text>}
      </Group>
      {staff && (
        <Group gap="xs">
          <Button size="xs" variant="light" onClick={() => setEditing(true)}>{t('admin.edit')}</Button>
          {canPublish(user.role) && (
            <Button size="xs" variant={a.is_published ? 'subtle' : 'filled'} loading={publish.isPending} onClick={() => publish.mutate(!a.is_published)}>
              {a.is_published ? t('kb.unpublish') : t('kb.publish')}
            </Button>
          )}
          <ConfirmButton size="xs" variant="subtle" color="red" label={t('admin.delete')} title={t('kb.deleteTitle', { name: a.title })}
            body={t('kb.deleteBody')} confirmLabel={t('admin.delete')} onConfirm={() => remove.mutate(undefined)} />
        </Group>
      )}
      <Paper p="lg" className="atum-panel">
        {a.content_html ? <RichText html={a.content_html} testId="kb-content" /> : (
          <Text size="sm" className="atum-thread-text" data-testid="kb-content">{a.content}</Text>
        )}
      </Paper>
    </Stack>
  );
}

/** KbNewPage starts a draft. */
export function KbNewPage() {
  return <KbEditor article={null} />;
}

function KbEditor({ article, onDone }: { article: Article | null; onDone?: () => void }) {
  const { t } = useTranslation();
  const api = useApi();
  const navigate = useNavigate();
  const cats = useCategories();
  const [title, setTitle] = useState(article?.title ?? '');
  const [category, setCategory] = useState<string | null>(article?.category_id ?? null);
  const [visibility, setVisibility] = useState<Visibility>(article?.visibility ?? 'public');
  const [body, setBody] = useState<Draft>({ html: article?.content_html ?? '', text: article?.content ?? '' });
  const save = useSave(kbKey, () => {
    const input = { title: title.trim(), category_id: category, visibility, content: body.text, ...(body.html ? { content_html: body.html } : {}) };
    return article
      ? unwrap(api.PATCH('/api/v1/kb/articles/{articleID}', { params: { path: { articleID: article.id } }, body: input }))
      : unwrap(api.POST('/api/v1/kb/articles', { body: input }));
  }, t('kb.saved'), (a) => (article ? onDone?.() : void navigate({ to: '/desk/kb/$articleId', params: { articleId: a.id } })));
  const e = save.errors;
  return (
    <form onSubmit={(ev) => { ev.preventDefault(); save.mutate(undefined); }} noValidate data-testid="kb-editor">
      <Stack gap="md" maw={860}>
        <Title order={1} size="h2">{article ? t('kb.edit') : t('kb.new')}</Title>
        <TextInput label={t('kb.articleTitle')} required value={title} onChange={(ev) => setTitle(ev.currentTarget.value)} error={e.title} maxLength={300} />
        <Group grow align="flex-start">
          <Select label={t('kb.category')} clearable value={category} onChange={setCategory} placeholder={t('kb.uncategorised')} error={e.category_id}
            data={(cats.data ?? []).map((c) => ({ value: c.id, label: c.name }))} comboboxProps={{ withinPortal: true }} />
          <Stack gap={4}>
            <Text size="sm" fw={500} id="kb-visibility">{t('kb.visibility')}</Text>
            <div role="radiogroup" aria-labelledby="kb-visibility">
              <SegmentedControl value={visibility} onChange={(v) => setVisibility(v as Visibility)}
                data={[{ value: 'public', label: t('kb.public') }, { value: 'internal', label: t('kb.internal') }]} />
            </div>
          </Stack>
        </Group>
        <Stack gap={4}>
          <Text size="sm" fw={500} component="span">{t('kb.content')}</Text>
          <Suspense fallback={<ListSkeleton rows={3} />}>
            <RichEditor value={body} onChange={setBody} onSubmit={() => save.mutate(undefined)} label={t('kb.content')} />
          </Suspense>
          {e.content && <Text size="xs" c="var(--atum-danger)">{e.content}</Text>}
        </Stack>
        {Object.keys(e).length > 0 && !e.title && !e.content && <Alert color="red" variant="light">{Object.values(e).join(' ')}</Alert>}
        <Group justify="flex-end">
          {onDone && <Button variant="subtle" color="gray" onClick={onDone}>{t('action.cancel')}</Button>}
          <Button type="submit" loading={save.isPending}>{t('action.save')}</Button>
        </Group>
      </Stack>
    </form>
  );
}
