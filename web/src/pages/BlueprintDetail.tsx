import { useEffect, useMemo, useState } from 'react';
import { useNavigate, useParams } from 'react-router-dom';
import {
  Breadcrumb, BreadcrumbItem, Content, DescriptionList, DescriptionListDescription, DescriptionListGroup, DescriptionListTerm,
  FormGroup, FormSelect, FormSelectOption, PageSection, Pagination, Spinner, Title, Toolbar, ToolbarContent, ToolbarItem,
} from '@patternfly/react-core';
import { Link } from 'react-router-dom';
import { api, type BlueprintItem, type BlueprintResponse, type ComposesItem } from '../api';
import { ConfirmModal } from '../LazyConfirm';
import { ErrorPage, formatDate } from '../components';
import { useTitle } from '../useTitle';
import { useBlueprintActions } from './blueprintActions';
import { BlueprintButtons } from './BlueprintsPage';
import { ComposesTable, PER_PAGE } from './ComposesPage';

export default function BlueprintDetail() {
  const { id = '' } = useParams();
  const navigate = useNavigate();
  const [bp, setBp] = useState<BlueprintResponse>();
  const [item, setItem] = useState<BlueprintItem>();
  const [error, setError] = useState<unknown>();
  const [composes, setComposes] = useState<ComposesItem[]>();
  const [count, setCount] = useState(0);
  const [page, setPage] = useState(1);
  const [version, setVersion] = useState<number | undefined>();
  const [versions, setVersions] = useState<number[]>([]);
  const [reload, setReload] = useState(0);
  const [deleting, setDeleting] = useState<ComposesItem>();
  const actions = useBlueprintActions(() => navigate('/blueprints'));
  useTitle(bp ? `Blueprint ${bp.name}` : 'Blueprint');

  useEffect(() => {
    const ctl = new AbortController();
    api.blueprint(id, undefined, ctl.signal)
      .then(async (b) => {
        setBp(b);
        // The blueprint's own answer carries no version; the list entry of its name does.
        const list = await api.blueprints({ search: b.name, limit: 100 }, ctl.signal).catch(() => undefined);
        setItem(list?.data.find((x) => x.id === id));
      })
      .catch((e) => { if (!ctl.signal.aborted) setError(e); });
    return () => ctl.abort();
  }, [id]);

  useEffect(() => {
    const ctl = new AbortController();
    api.blueprintComposes(id, { limit: PER_PAGE, offset: (page - 1) * PER_PAGE, blueprint_version: version }, ctl.signal)
      .then((r) => {
        setComposes(r.data);
        setCount(r.meta.count);
        setVersions((old) => [...new Set([...old, ...r.data.map((c) => c.blueprint_version ?? 0).filter(Boolean)])].sort((a, b) => b - a));
      })
      .catch((e) => { if (!ctl.signal.aborted) setError(e); });
    return () => ctl.abort();
  }, [id, page, version, reload]);

  const allVersions = useMemo(
    () => [...new Set([...(item ? [item.version] : []), ...versions])].sort((a, b) => b - a), [item, versions]);

  if (error !== undefined) return <ErrorPage error={error} title="The blueprint could not be loaded" />;
  if (!bp) return <PageSection><Spinner aria-label="Loading blueprint" /></PageSection>;
  const req = bp.image_requests ?? [];
  return (
    <>
      <PageSection>
        <Breadcrumb>
          <BreadcrumbItem><Link to="/blueprints">Blueprints</Link></BreadcrumbItem>
          <BreadcrumbItem isActive>{bp.name}</BreadcrumbItem>
        </Breadcrumb>
        <Title headingLevel="h1">{`Blueprint ${bp.name}`}</Title>
        {bp.description && <Content component="p">{bp.description}</Content>}
        <BlueprintButtons bp={bp} onEdit={() => navigate(`/wizard/${id}`)} actions={actions} />
      </PageSection>
      <PageSection>
        <DescriptionList isHorizontal isCompact>
          <DescriptionListGroup>
            <DescriptionListTerm>Latest version</DescriptionListTerm>
            <DescriptionListDescription>{item ? `${item.version} (${formatDate(item.last_modified_at)})` : '—'}</DescriptionListDescription>
          </DescriptionListGroup>
          <DescriptionListGroup>
            <DescriptionListTerm>Distribution</DescriptionListTerm>
            <DescriptionListDescription>{bp.distribution ?? '—'}</DescriptionListDescription>
          </DescriptionListGroup>
          <DescriptionListGroup>
            <DescriptionListTerm>Images</DescriptionListTerm>
            <DescriptionListDescription>
              {req.map((r) => `${r.image_type} (${r.architecture}) → ${r.upload_request?.type}`).join(', ') || '—'}
            </DescriptionListDescription>
          </DescriptionListGroup>
          <DescriptionListGroup>
            <DescriptionListTerm>Versions with images</DescriptionListTerm>
            <DescriptionListDescription>{allVersions.join(', ') || '—'}</DescriptionListDescription>
          </DescriptionListGroup>
        </DescriptionList>
      </PageSection>
      <PageSection>
        <Title headingLevel="h2">Images of this blueprint</Title>
        <Toolbar>
          <ToolbarContent>
            <ToolbarItem>
              <FormGroup label="Version" fieldId="version-filter">
                <FormSelect id="version-filter" value={version === undefined ? '' : String(version)}
                  onChange={(_e, v) => { setVersion(v ? Number(v) : undefined); setPage(1); }}>
                  <FormSelectOption value="" label="All versions" />
                  {allVersions.map((v) => <FormSelectOption key={v} value={String(v)} label={`Version ${v}`} />)}
                </FormSelect>
              </FormGroup>
            </ToolbarItem>
            <ToolbarItem variant="pagination" alignSelf="end">
              <Pagination itemCount={count} perPage={PER_PAGE} page={page} onSetPage={(_e, p) => setPage(p)} isCompact
                perPageOptions={[{ title: '50', value: PER_PAGE }]} titles={{ paginationAriaLabel: 'Pages of images of this blueprint' }} />
            </ToolbarItem>
          </ToolbarContent>
        </Toolbar>
        {composes === undefined ? <Spinner aria-label="Loading images" /> : composes.length === 0 ? (
          <Content component="p">No images built from this blueprint{version ? ` version ${version}` : ''} yet.</Content>
        ) : (
          <ComposesTable items={composes} label="Images of this blueprint"
            onDelete={setDeleting} />
        )}
      </PageSection>
      {actions.view}
      {deleting && (
        <ConfirmModal title="Delete the image?" confirm="Delete"
          body={<Content component="p">{`The compose ${deleting.image_name || deleting.id} and its image are deleted.`}</Content>}
          onConfirm={() => api.deleteCompose(deleting.id)}
          onClose={() => { setDeleting(undefined); setReload((n) => n + 1); }} />
      )}
    </>
  );
}
