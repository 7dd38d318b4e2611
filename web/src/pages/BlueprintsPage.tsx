import { useEffect, useState } from 'react';
import { Link, useNavigate } from 'react-router-dom';
import {
  Button, Content, EmptyState, Flex, EmptyStateBody, FormGroup, PageSection, Pagination, Spinner, TextInput, Title, Toolbar,
  ToolbarContent, ToolbarItem,
} from '@patternfly/react-core';
import { Table, Tbody, Td, Th, Thead, Tr } from '@patternfly/react-table';
import { api, type BlueprintItem } from '../api';
import { ErrorView, NotAuthorised, unauthorised, formatDate } from '../components';
import { useTitle } from '../useTitle';
import { useBlueprintActions } from './blueprintActions';

const PER_PAGE = 50;

export default function BlueprintsPage() {
  useTitle('Blueprints');
  const navigate = useNavigate();
  const [search, setSearch] = useState('');
  const [query, setQuery] = useState('');
  const [page, setPage] = useState(1);
  const [items, setItems] = useState<BlueprintItem[]>();
  const [count, setCount] = useState(0);
  const [error, setError] = useState<unknown>();
  const [reload, setReload] = useState(0);
  const actions = useBlueprintActions(() => setReload((n) => n + 1));

  // The search is sent once typing pauses.
  useEffect(() => {
    const t = setTimeout(() => { setQuery(search.trim()); setPage(1); }, 300);
    return () => clearTimeout(t);
  }, [search]);
  useEffect(() => {
    const ctl = new AbortController();
    setError(undefined);
    api.blueprints({ search: query || undefined, limit: PER_PAGE, offset: (page - 1) * PER_PAGE }, ctl.signal)
      .then((r) => { setItems(r.data); setCount(r.meta.count); })
      .catch((e) => { if (!ctl.signal.aborted) setError(e); });
    return () => ctl.abort();
  }, [query, page, reload]);

  if (unauthorised(error)) return <NotAuthorised detail={error.message} />;
  return (
    <>
      <PageSection>
        <Title headingLevel="h1">Blueprints</Title>
        <Content component="p">Saved image definitions; edit one to make a new version, or build images from it.</Content>
      </PageSection>
      <PageSection>
        <Toolbar>
          <ToolbarContent>
            <ToolbarItem>
              <FormGroup label="Search blueprints" fieldId="blueprint-search">
                <TextInput id="blueprint-search" type="search" value={search} onChange={(_e, v) => setSearch(v)} />
              </FormGroup>
            </ToolbarItem>
            <ToolbarItem alignSelf="end"><Button onClick={() => navigate('/wizard')}>Create blueprint</Button></ToolbarItem>
            <ToolbarItem variant="pagination" alignSelf="end">
              <Pagination itemCount={count} perPage={PER_PAGE} page={page} onSetPage={(_e, p) => setPage(p)} isCompact
                perPageOptions={[{ title: '50', value: PER_PAGE }]} titles={{ paginationAriaLabel: 'Blueprint pages' }} />
            </ToolbarItem>
          </ToolbarContent>
        </Toolbar>
        {error !== undefined ? <ErrorView error={error} title="The blueprints could not be listed" /> : items === undefined ? (
          <Spinner aria-label="Loading blueprints" />
        ) : items.length === 0 ? (
          <EmptyState titleText={query ? 'No blueprint matches' : 'No blueprints yet'} headingLevel="h2">
            <EmptyStateBody>{query ? `Nothing is named or described like "${query}".` : 'Create one with the image wizard.'}</EmptyStateBody>
          </EmptyState>
        ) : (
          <Table role="table" aria-label="Blueprints" variant="compact">
            <Thead>
              <Tr><Th>Name</Th><Th>Description</Th><Th>Version</Th><Th>Last modified</Th><Th screenReaderText="Actions" /></Tr>
            </Thead>
            <Tbody>
              {items.map((b) => (
                <Tr key={b.id}>
                  <Td dataLabel="Name"><Link to={`/blueprints/${b.id}`}>{b.name}</Link></Td>
                  <Td dataLabel="Description">{b.description}</Td>
                  <Td dataLabel="Version">{b.version}</Td>
                  <Td dataLabel="Last modified">{formatDate(b.last_modified_at)}</Td>
                  <Td dataLabel="Actions">
                    <BlueprintButtons bp={b} onEdit={() => navigate(`/wizard/${b.id}`)} actions={actions} />
                  </Td>
                </Tr>
              ))}
            </Tbody>
          </Table>
        )}
      </PageSection>
      {actions.view}
    </>
  );
}

export function BlueprintButtons({ bp, onEdit, actions }: {
  bp: Pick<BlueprintItem, 'id' | 'name'>; onEdit: () => void; actions: ReturnType<typeof useBlueprintActions>;
}) {
  return (
    <Flex spaceItems={{ default: 'spaceItemsSm' }}>
      <Button variant="link" isInline onClick={onEdit} aria-label={`Edit ${bp.name}`}>Edit</Button>
      <Button variant="link" isInline onClick={() => actions.build(bp)} aria-label={`Build images of ${bp.name}`}>Build images</Button>
      <Button variant="link" isInline onClick={() => actions.exportIt(bp)} aria-label={`Export ${bp.name}`}>Export</Button>
      <Button variant="link" isInline isDanger onClick={() => actions.remove(bp)} aria-label={`Delete ${bp.name}`}>Delete</Button>
    </Flex>
  );
}
