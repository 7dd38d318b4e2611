// The review step: a summary of every step, the blueprint as JSON and TOML, and the create buttons.
import { useMemo, useState } from 'react';
import {
  Alert, Button, DescriptionList, DescriptionListDescription, DescriptionListGroup, DescriptionListTerm, Tab, TabTitleText,
  Tabs, useWizardContext, WizardFooterWrapper,
} from '@patternfly/react-core';
import { stringify } from 'smol-toml';
import type { BlueprintBody } from '../api';
import { TARGET_NAMES } from '../components';
import { StepTitle } from './fields';
import { lines, targetOf, tomlDoc, type StepId, type WizardState } from './model';

/** Passwords never shown back, not even the one just typed. */
function redacted(bp: BlueprintBody): BlueprintBody {
  const users = bp.customizations.users?.map((u) => (u.password ? { ...u, password: '********' } : u));
  return users ? { ...bp, customizations: { ...bp.customizations, users } } : bp;
}

function Item({ term, children }: { term: string; children: React.ReactNode }) {
  return (
    <DescriptionListGroup>
      <DescriptionListTerm>{term}</DescriptionListTerm>
      <DescriptionListDescription>{children || '—'}</DescriptionListDescription>
    </DescriptionListGroup>
  );
}

const list = (xs: string[]) => (xs.length ? xs.join(', ') : '');

export function ReviewStep({ s, bp, apiError }: { s: WizardState; bp: BlueprintBody; apiError?: string }) {
  const [tab, setTab] = useState<string | number>('summary');
  const shown = useMemo(() => redacted(bp), [bp]);
  const toml = useMemo(() => {
    try { return stringify(tomlDoc(shown)); } catch (e) { return `# the TOML form failed: ${String(e)}`; }
  }, [shown]);
  return (
    <>
      <StepTitle title="Review" intro="Check the blueprint, then create it (and build its images)." />
      {apiError && <Alert variant="danger" isInline title="The image-builder API refused the blueprint">{apiError}</Alert>}
      <Tabs activeKey={tab} onSelect={(_e, k) => setTab(k)} aria-label="Blueprint views">
        <Tab eventKey="summary" title={<TabTitleText>Summary</TabTitleText>}>
          <DescriptionList isHorizontal isCompact className="pf-v6-u-mt-md">
            <Item term="Name">{s.name}</Item>
            <Item term="Description">{s.description}</Item>
            <Item term="Distribution">{s.distribution}</Item>
            <Item term="Architecture">{s.architecture}</Item>
            <Item term="Image types">{s.imageTypes.map((t) => `${t} → ${TARGET_NAMES[targetOf(s, t)]}`).join(', ')}</Item>
            <Item term="File system">
              {s.fsMode === 'automatic' ? 'Automatic' : s.partitions.map((p) => `${p.mountpoint} ≥ ${p.size} ${p.unit}`).join(', ')}
            </Item>
            <Item term="Custom repositories">{list(lines(s.repositories))}</Item>
            <Item term="Packages">{list(s.packages)}</Item>
            <Item term="Users">{list(s.users.map((u) => `${u.name}${u.groups ? ` (${u.groups})` : ''}`))}</Item>
            <Item term="Groups">{list(s.groups.map((g) => g.name))}</Item>
            <Item term="Timezone">{[s.timezone, ...lines(s.ntpservers)].filter(Boolean).join(', ')}</Item>
            <Item term="Locale">{[...lines(s.languages), s.keyboard && `keyboard ${s.keyboard}`].filter(Boolean).join(', ')}</Item>
            <Item term="Hostname">{s.hostname}</Item>
            <Item term="Kernel">{[s.kernelName, s.kernelAppend].filter(Boolean).join(' — ')}</Item>
            <Item term="Firewall">
              {[list(lines(s.firewallPorts)), list(lines(s.firewallEnabled)), list(lines(s.firewallDisabled)).replace(/^(.)/, 'disabled: $1')]
                .filter(Boolean).join('; ')}
            </Item>
            <Item term="Services">
              {[['enabled', s.servicesEnabled], ['disabled', s.servicesDisabled], ['masked', s.servicesMasked]]
                .filter(([, v]) => lines(v).length).map(([k, v]) => `${k}: ${list(lines(v))}`).join('; ')}
            </Item>
            <Item term="First boot script">{s.firstBoot ? `${s.firstBoot.split('\n').length} lines` : ''}</Item>
          </DescriptionList>
        </Tab>
        <Tab eventKey="json" title={<TabTitleText>JSON</TabTitleText>}>
          <pre className="obd-code pf-v6-u-mt-md" aria-label="Blueprint as JSON" tabIndex={0}>{JSON.stringify(shown, null, 2)}</pre>
        </Tab>
        <Tab eventKey="toml" title={<TabTitleText>TOML</TabTitleText>}>
          <pre className="obd-code pf-v6-u-mt-md" aria-label="Blueprint as TOML" tabIndex={0}>{toml}</pre>
        </Tab>
      </Tabs>
    </>
  );
}

/** The review step's footer: the two create buttons; a failure jumps to the step of the field it names. */
export function ReviewFooter({ onCreate, editing, onCancel }: {
  onCreate: (build: boolean) => Promise<StepId | undefined>;
  editing: boolean;
  onCancel: () => void;
}) {
  const { goToPrevStep, goToStepById } = useWizardContext();
  const [busy, setBusy] = useState<'save' | 'build'>();
  const go = async (build: boolean) => {
    setBusy(build ? 'build' : 'save');
    const step = await onCreate(build);
    setBusy(undefined);
    if (step && step !== 'review') goToStepById(`step-${step}`);
  };
  const verb = editing ? 'Save changes' : 'Create blueprint';
  return (
    <WizardFooterWrapper>
      <Button variant="primary" onClick={() => go(false)} isLoading={busy === 'save'} isDisabled={!!busy}>{verb}</Button>
      <Button variant="secondary" onClick={() => go(true)} isLoading={busy === 'build'} isDisabled={!!busy}>
        {editing ? 'Save changes and build image(s)' : 'Create blueprint and build image(s)'}
      </Button>
      <Button variant="tertiary" onClick={goToPrevStep} isDisabled={!!busy}>Back</Button>
      <Button variant="link" onClick={onCancel}>Cancel</Button>
    </WizardFooterWrapper>
  );
}
