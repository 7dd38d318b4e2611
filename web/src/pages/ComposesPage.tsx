import { useCallback, useEffect, useState } from 'react';
import { Link, useLocation, useNavigate, useSearchParams } from 'react-router-dom';
import {
  Alert, Button, Content, EmptyState, EmptyStateBody, Flex, PageSection, Pagination, Spinner, Title, Toolbar,
  ToolbarContent, ToolbarItem,
} from '@patternfly/react-core';
import { Table, Tbody, Td, Th, Thead, Tr } from '@patternfly/react-table';
import { api, downloadUrl, type ComposesItem } from '../api';
import { ConfirmModal } from '../LazyConfirm';
import { ErrorView, NotAuthorised, unauthorised, FailureReason, formatDate, imageType, ProgressBar, StatusLabel, TARGET_NAMES, uploadType } from '../components';
import { useComposeStatus } from '../live';
import { useTitle } from '../useTitle';

export const PER_PAGE = 50;

/** One compose row; it watches its own status, so only the visible page is ever fetched. */
export function ComposeRow({ c, onDelete }: { c: ComposesItem; onDelete: (c: ComposesItem) => void }) {
  const { status } = useComposeStatus(c.id);
  const navigate = useNavigate();
  const s = status?.image_status;
  const name = c.image_name || c.request.image_name || c.id;
  const target = uploadType(c.request);
  const downloadable = s?.status === 'success' && target === 'local';
  return (
    <Tr>
      <Td dataLabel="Image" modifier="breakWord"><Link to={`/composes/${c.id}`}>{name}</Link></Td>
      <Td dataLabel="Blueprint">
        {c.blueprint_id ? <Link to={`/blueprints/${c.blueprint_id}`}>{`Version ${c.blueprint_version ?? ''}`}</Link> : '—'}
      </Td>
      <Td dataLabel="Image type" modifier="nowrap">{imageType(c.request)}</Td>
      <Td dataLabel="Target">{TARGET_NAMES[target] ?? target}</Td>
      <Td dataLabel="Created">{formatDate(c.created_at)}</Td>
      <Td dataLabel="Status">
        <Flex direction={{ default: 'column' }} spaceItems={{ default: 'spaceItemsXs' }}>
          <StatusLabel id={c.id} status={s} />
          <ProgressBar id={c.id} status={s} />
          <FailureReason status={s} />
        </Flex>
      </Td>
      <Td dataLabel="Actions">
        <Flex spaceItems={{ default: 'spaceItemsSm' }} flexWrap={{ default: 'nowrap' }}>
          {downloadable && (
            <Button component="a" variant="link" isInline href={downloadUrl(c.id)} download aria-label={`Download image ${name}`}>
              Download
            </Button>
          )}
          <Button variant="link" isInline onClick={() => navigate(`/composes/${c.id}#logs`)} aria-label={`Logs of ${name}`}>
            Logs
          </Button>
          <Button variant="link" isInline isDanger onClick={() => onDelete(c)} aria-label={`Delete compose ${name}`}>
            Delete
          </Button>
        </Flex>
      </Td>
    </Tr>
  );
}

export function ComposesTable({ items, onDelete, label }: { items: ComposesItem[]; onDelete: (c: ComposesItem) => void; label: string }) {
  return (
    <Table role="table" aria-label={label} variant="compact">
      <Thead>
        <Tr>
          <Th modifier="wrap">Image</Th><Th modifier="wrap">Blueprint</Th><Th modifier="wrap">Image type</Th>
          <Th modifier="wrap">Target</Th><Th modifier="wrap">Created</Th><Th modifier="wrap">Status</Th>
          <Th screenReaderText="Actions" />
        </Tr>
      </Thead>
      <Tbody>
        {items.map((c) => <ComposeRow key={c.id} c={c} onDelete={onDelete} />)}
      </Tbody>
    </Table>
  );
}

export default function ComposesPage() {
  useTitle('Images');
  const [params, setParams] = useSearchParams();
  const page = Math.max(1, Number(params.get('page')) || 1);
  const [items, setItems] = useState<ComposesItem[]>();
  const [count, setCount] = useState(0);
  const [error, setError] = useState<unknown>();
  const [deleting, setDeleting] = useState<ComposesItem>();
  const [reload, setReload] = useState(0);
  const created = (useLocation().state as { created?: string } | null)?.created;

  useEffect(() => {
    const ctl = new AbortController();
    setError(undefined);
    api.composes({ limit: PER_PAGE, offset: (page - 1) * PER_PAGE }, ctl.signal)
      .then((r) => { setItems(r.data); setCount(r.meta.count); })
      .catch((e) => { if (!ctl.signal.aborted) setError(e); });
    return () => ctl.abort();
  }, [page, reload]);

  const setPage = useCallback((p: number) => setParams(p > 1 ? { page: String(p) } : {}), [setParams]);
  const pager = (bottom: boolean) => (
    <Pagination itemCount={count} perPage={PER_PAGE} page={page} perPageOptions={[{ title: '50', value: PER_PAGE }]}
      onSetPage={(_e, p) => setPage(p)} variant={bottom ? 'bottom' : 'top'} isCompact={!bottom}
      titles={{ paginationAriaLabel: bottom ? 'Images pages, bottom' : 'Images pages' }} />
  );

  if (unauthorised(error)) return <NotAuthorised detail={error.message} />;
  return (
    <>
      <PageSection>
        <Title headingLevel="h1">Images</Title>
        <Content component="p">Every image built for your organisation, newest first.</Content>
        {created && <Alert variant="success" isInline isPlain title={`Blueprint ${created} saved; its images are being built.`} />}
      </PageSection>
      <PageSection>
        <Toolbar>
          <ToolbarContent>
            <ToolbarItem><Button component={(p) => <Link {...p} to="/wizard" />}>Create image</Button></ToolbarItem>
            <ToolbarItem variant="pagination">{pager(false)}</ToolbarItem>
          </ToolbarContent>
        </Toolbar>
        {error !== undefined ? <ErrorView error={error} title="The images could not be listed" /> : items === undefined ? (
          <Spinner aria-label="Loading images" />
        ) : items.length === 0 ? (
          <EmptyState titleText="No images yet" headingLevel="h2">
            <EmptyStateBody>Create a blueprint and build an image from it.</EmptyStateBody>
            <Link to="/wizard">Create image</Link>
          </EmptyState>
        ) : (
          <>
            <ComposesTable items={items} onDelete={setDeleting} label="Images" />
            {pager(true)}
          </>
        )}
      </PageSection>
      {deleting && (
        <ConfirmModal title="Delete the image?" confirm="Delete"
          body={<Content component="p">{`The compose ${deleting.image_name || deleting.id} and its image are deleted.`}</Content>}
          onConfirm={() => api.deleteCompose(deleting.id)}
          onClose={() => { setDeleting(undefined); setReload((n) => n + 1); }} />
      )}
    </>
  );
}
