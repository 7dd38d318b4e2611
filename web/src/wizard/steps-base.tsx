// Wizard steps 1-4: image output, target environments, file system, repositories and packages.
import { useEffect, useState } from 'react';
import {
  Alert, Button, Checkbox, Form, FormGroup, FormSelect, FormSelectOption, Grid, GridItem, Label,
  LabelGroup, Radio, Spinner, Content, Title,
} from '@patternfly/react-core';
import { Table, Tbody, Td, Th, Thead, Tr } from '@patternfly/react-table';
import { api, type ArchitectureItem, type DistributionItem, type Package } from '../api';
import { ErrorView, TARGET_NAMES } from '../components';
import { Help, ListField, StepTitle, TextField, type StepProps } from './fields';
import { cloudOf, nextKey, targetOf, targetsFor, type Partition, type Target } from './model';

export function ImageOutputStep({ s, set, errors, distros, onArches }: StepProps & {
  distros?: DistributionItem[]; onArches?: (a: ArchitectureItem[]) => void;
}) {
  const [arches, setArches] = useState<ArchitectureItem[]>();
  const [error, setError] = useState<unknown>();

  useEffect(() => {
    if (!s.distribution) { setArches(undefined); return; }
    const ctl = new AbortController();
    setArches(undefined);
    api.architectures(s.distribution, ctl.signal)
      .then((a) => { setArches(a); onArches?.(a); })
      .catch((e) => { if (!ctl.signal.aborted) setError(e); });
    return () => ctl.abort();
  }, [s.distribution, onArches]);

  const arch = arches?.find((a) => a.arch === s.architecture);
  // A distribution or architecture change keeps only the image types still offered.
  useEffect(() => {
    if (arches && s.architecture && !arch) set({ architecture: '', imageTypes: [] });
    if (arch) {
      const kept = s.imageTypes.filter((t) => arch.image_types.includes(t));
      if (kept.length !== s.imageTypes.length) set({ imageTypes: kept });
    }
  }, [arches, arch, s.architecture, s.imageTypes, set]);

  if (error) return <ErrorView error={error} title="The distributions could not be loaded" />;
  const toggle = (t: string, on: boolean) =>
    set({ imageTypes: on ? [...s.imageTypes, t] : s.imageTypes.filter((x) => x !== t) });
  return (
    <Form onSubmit={(e) => e.preventDefault()}>
      <StepTitle title="Image output" intro="Choose the release, the architecture and the kinds of image to build." />
      <FormGroup label="Distribution" fieldId="distribution" isRequired>
        <FormSelect id="distribution" value={s.distribution} isRequired aria-invalid={!!errors.distribution}
          validated={errors.distribution ? 'error' : 'default'}
          onChange={(_e, v) => set({ distribution: v, architecture: '', imageTypes: [] })}>
          <FormSelectOption value="" label={distros ? 'Choose a distribution' : 'Loading…'} isPlaceholder />
          {(distros ?? []).map((d) => <FormSelectOption key={d.name} value={d.name} label={d.description || d.name} />)}
        </FormSelect>
        <Help id="distribution" error={errors.distribution} />
      </FormGroup>
      <FormGroup label="Architecture" fieldId="architecture" isRequired>
        <FormSelect id="architecture" value={s.architecture} isRequired isDisabled={!arches}
          onChange={(_e, v) => set({ architecture: v })} aria-invalid={!!errors.architecture}
          validated={errors.architecture ? 'error' : 'default'}>
          <FormSelectOption value="" label={s.distribution && !arches ? 'Loading…' : 'Choose an architecture'} isPlaceholder />
          {(arches ?? []).map((a) => <FormSelectOption key={a.arch} value={a.arch} label={a.arch} />)}
        </FormSelect>
        <Help id="architecture" error={errors.architecture} />
      </FormGroup>
      <FormGroup label="Image types" fieldId="image-types" role="group" isStack isRequired>
        {!arch && <Content component="p">Choose a distribution and an architecture first.</Content>}
        {arch?.image_types.map((t) => (
          <Checkbox key={t} id={`image-type-${t}`} label={t} isChecked={s.imageTypes.includes(t)}
            onChange={(_e, on) => toggle(t, on)}
            description={cloudOf(t) ? `Uploads to ${TARGET_NAMES[cloudOf(t)!]} or downloads` : 'Downloaded from this daemon'} />
        ))}
        <Help id="image-types" error={errors.imageTypes} />
      </FormGroup>
    </Form>
  );
}

export function TargetsStep({ s, set, errors }: StepProps) {
  const chosen = new Set<Target>(s.imageTypes.map((t) => targetOf(s, t)));
  return (
    <Form onSubmit={(e) => e.preventDefault()}>
      <StepTitle title="Target environments" intro="Where each image goes once built." />
      {s.imageTypes.length === 0 && <Alert variant="info" isInline title="No image type chosen yet" />}
      {s.imageTypes.map((t) => (
        <FormGroup key={t} label={`Target of the ${t} image`} fieldId={`target-${t}`} role="radiogroup" isStack>
          {targetsFor(t).map((target) => (
            <Radio key={target} id={`target-${t}-${target}`} name={`target-${t}`} label={TARGET_NAMES[target]}
              isChecked={targetOf(s, t) === target} onChange={() => set({ targets: { ...s.targets, [t]: target } })} />
          ))}
        </FormGroup>
      ))}
      {chosen.has('aws') && (
        <>
          <Title headingLevel="h3">Amazon Web Services</Title>
          <ListField id="awsAccounts" label="Share with AWS account IDs" value={s.awsAccounts}
            onChange={(v) => set({ awsAccounts: v })} error={errors.awsAccounts} hint="12-digit account IDs, one per line." />
        </>
      )}
      {chosen.has('gcp') && (
        <>
          <Title headingLevel="h3">Google Cloud</Title>
          <ListField id="gcpAccounts" label="Share with Google accounts" value={s.gcpAccounts}
            onChange={(v) => set({ gcpAccounts: v })} error={errors.gcpAccounts}
            hint="One per line, e.g. user:alice@example.com, serviceAccount:…, group:…, domain:example.com" />
        </>
      )}
      {chosen.has('azure') && (
        <>
          <Title headingLevel="h3">Microsoft Azure</Title>
          <TextField id="azure-tenant" label="Tenant ID" value={s.azure.tenant_id} error={errors['azure.tenant_id']}
            onChange={(v) => set({ azure: { ...s.azure, tenant_id: v } })} />
          <TextField id="azure-subscription" label="Subscription ID" value={s.azure.subscription_id} error={errors['azure.subscription_id']}
            onChange={(v) => set({ azure: { ...s.azure, subscription_id: v } })} />
          <TextField id="azure-resource-group" label="Resource group" required value={s.azure.resource_group}
            error={errors['azure.resource_group']} onChange={(v) => set({ azure: { ...s.azure, resource_group: v } })} />
        </>
      )}
      {chosen.has('local') && (
        <Content component="p">Images with the local download target stay on the daemon; download them from the Images page.</Content>
      )}
      <Help id="targets" error={errors.targets} />
    </Form>
  );
}

const MOUNTPOINTS = ['/', '/home', '/var', '/var/log', '/tmp', '/opt', '/srv', '/usr', '/boot', '/app', '/data'];

export function FileSystemStep({ s, set, errors }: StepProps) {
  const update = (i: number, patch: Partial<Partition>) =>
    set({ partitions: s.partitions.map((p, j) => (j === i ? { ...p, ...patch } : p)) });
  return (
    <Form onSubmit={(e) => e.preventDefault()}>
      <StepTitle title="File system" />
      <FormGroup label="Partitioning" fieldId="fs-mode" role="radiogroup" isStack>
        <Radio id="fs-automatic" name="fs-mode" label="Automatic: the image type's default layout" isChecked={s.fsMode === 'automatic'}
          onChange={() => set({ fsMode: 'automatic' })} />
        <Radio id="fs-manual" name="fs-mode" label="Manual: choose mountpoints and their minimum sizes" isChecked={s.fsMode === 'manual'}
          onChange={() => set({ fsMode: 'manual' })} />
      </FormGroup>
      {s.fsMode === 'manual' && (
        <>
          {s.partitions.map((p, i) => (
            <Grid key={p.key} hasGutter>
              <GridItem sm={12} md={5}>
                <TextField id={`mountpoint-${i}`} label={`Mountpoint ${i + 1}`} value={p.mountpoint}
                  onChange={(v) => update(i, { mountpoint: v })} error={errors[`partitions[${i}].mountpoint`]}
                  hint={i === 0 ? `e.g. ${MOUNTPOINTS.slice(1, 4).join(', ')}` : undefined} />
              </GridItem>
              <GridItem sm={6} md={3}>
                <TextField id={`size-${i}`} label={`Minimum size ${i + 1}`} type="number" value={p.size}
                  onChange={(v) => update(i, { size: v })} error={errors[`partitions[${i}].size`]} />
              </GridItem>
              <GridItem sm={6} md={2}>
                <FormGroup label={`Unit ${i + 1}`} fieldId={`unit-${i}`}>
                  <FormSelect id={`unit-${i}`} value={p.unit} onChange={(_e, v) => update(i, { unit: v as Partition['unit'] })}>
                    <FormSelectOption value="GiB" label="GiB" />
                    <FormSelectOption value="MiB" label="MiB" />
                  </FormSelect>
                </FormGroup>
              </GridItem>
              <GridItem sm={12} md={2}>
                <Button variant="link" isDanger isDisabled={p.mountpoint === '/' && i === 0}
                  onClick={() => set({ partitions: s.partitions.filter((_, j) => j !== i) })}
                  aria-label={`Remove mountpoint ${p.mountpoint || i + 1}`}>
                  Remove
                </Button>
              </GridItem>
            </Grid>
          ))}
          <div>
            <Button variant="secondary" onClick={() => {
              const used = new Set(s.partitions.map((p) => p.mountpoint));
              const next = MOUNTPOINTS.find((m) => !used.has(m)) ?? '/data';
              set({ partitions: [...s.partitions, { key: nextKey(), mountpoint: next, size: '1', unit: 'GiB' }] });
            }}>Add mountpoint</Button>
          </div>
          <Help id="partitions" error={errors.partitions} />
        </>
      )}
    </Form>
  );
}

function usePackageSearch(distribution: string, architecture: string, term: string) {
  const [result, setResult] = useState<{ term: string; items?: Package[]; count?: number; error?: unknown }>({ term: '' });
  useEffect(() => {
    const q = term.trim();
    if (!distribution || !architecture || q.length < 2) { setResult({ term: q }); return; }
    const ctl = new AbortController();
    // Debounced: a search per pause in typing, not per key.
    const timer = setTimeout(() => {
      setResult({ term: q });
      api.packages(distribution, architecture, q, ctl.signal)
        .then((r) => setResult({ term: q, items: r.data, count: r.meta.count }))
        .catch((error) => { if (!ctl.signal.aborted) setResult({ term: q, error }); });
    }, 300);
    return () => { clearTimeout(timer); ctl.abort(); };
  }, [distribution, architecture, term]);
  return result;
}

export function PackagesStep({ s, set, errors }: StepProps) {
  const [term, setTerm] = useState('');
  const result = usePackageSearch(s.distribution, s.architecture, term);
  const chosen = new Set(s.packages);
  const add = (n: string) => { if (!chosen.has(n)) set({ packages: [...s.packages, n] }); };
  const remove = (n: string) => set({ packages: s.packages.filter((p) => p !== n) });
  // The API's Package has name and summary; a version column only when the daemon sends versions.
  const withVersions = !!result.items?.some((p) => p.version);
  return (
    <Form onSubmit={(e) => e.preventDefault()}>
      <StepTitle title="Repositories and packages" />
      <ListField id="repositories" label="Custom repositories (base URLs)" value={s.repositories}
        onChange={(v) => set({ repositories: v })} error={errors.repositories}
        hint="Extra package repositories used while building, one base URL per line." />
      <TextField id="package-search" label="Search packages" value={term} onChange={setTerm}
        hint={!s.distribution || !s.architecture ? 'Choose a distribution and an architecture first.' : 'Type at least two characters.'} />
      <div aria-live="polite">
        {result.error !== undefined && <ErrorView error={result.error} title="The package search failed" />}
        {result.term.length >= 2 && !result.items && !result.error && <Spinner size="md" aria-label="Searching packages" />}
        {result.items && (
          <>
            <Content component="p">{`${result.count ?? result.items.length} packages match "${result.term}".`}</Content>
            <Table role="table" aria-label="Package search results" variant="compact">
              <Thead><Tr><Th>Name</Th><Th>Summary</Th>{withVersions && <Th>Version</Th>}<Th screenReaderText="Action" /></Tr></Thead>
              <Tbody>
                {result.items.map((p) => (
                  <Tr key={p.name}>
                    <Td dataLabel="Name">{p.name}</Td>
                    <Td dataLabel="Summary">{p.summary}</Td>
                    {withVersions && <Td dataLabel="Version">{p.version ?? ''}</Td>}
                    <Td dataLabel="Action">
                      {chosen.has(p.name) ? (
                        <Button variant="link" isInline isDanger onClick={() => remove(p.name)} aria-label={`Remove package ${p.name}`}>Remove</Button>
                      ) : (
                        <Button variant="link" isInline onClick={() => add(p.name)} aria-label={`Add package ${p.name}`}>Add</Button>
                      )}
                    </Td>
                  </Tr>
                ))}
              </Tbody>
            </Table>
          </>
        )}
      </div>
      <FormGroup label={`Chosen packages (${s.packages.length})`} fieldId="chosen-packages" role="group">
        {s.packages.length === 0 ? <Content component="p">No packages chosen.</Content> : (
          <LabelGroup numLabels={20} aria-label="Chosen packages" id="chosen-packages">
            {s.packages.map((p) => (
              <Label key={p} onClose={() => remove(p)} closeBtnAriaLabel={`Remove package ${p}`}>{p}</Label>
            ))}
          </LabelGroup>
        )}
        <Help id="packages" error={errors.packages} />
      </FormGroup>
    </Form>
  );
}
