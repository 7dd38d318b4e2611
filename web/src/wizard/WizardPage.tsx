// The image wizard (/wizard, /wizard/:blueprintId): steps in image-builder-frontend's order; an edit
// PUTs the blueprint (a new version). The API's message is authoritative: shown beside its field.
import { useCallback, useEffect, useMemo, useState } from 'react';
import { useNavigate, useParams } from 'react-router-dom';
import { Bullseye, PageSection, Spinner, Title, Wizard, WizardStep } from '@patternfly/react-core';
import { api, ApiError, type DistributionItem } from '../api';
import { ErrorPage } from '../components';
import { useTitle } from '../useTitle';
import { emptyState, fromBlueprint, keyOfApiField, stepOf, toBlueprint, validate, type Errors, type StepId, type WizardState } from './model';
import { ReviewFooter, ReviewStep } from './review';
import { FileSystemStep, ImageOutputStep, PackagesStep, TargetsStep } from './steps-base';
import {
  DetailsStep, FirewallStep, FirstBootStep, HostnameStep, KernelStep, LocaleStep, ServicesStep, TimezoneStep, UsersStep,
} from './steps-custom';

// Errors of fields left empty wait until the person has tried to go on (no red on an untouched form).
const REQUIRED = new Set(['distribution', 'architecture', 'imageTypes', 'name']);

export default function WizardPage() {
  const { blueprintId } = useParams();
  const editing = !!blueprintId;
  useTitle(editing ? 'Edit blueprint' : 'Create image');
  const navigate = useNavigate();
  const [s, setState] = useState<WizardState | undefined>(editing ? undefined : emptyState());
  const [loadError, setLoadError] = useState<unknown>();
  const [serverErrors, setServerErrors] = useState<Errors>({});
  const [apiError, setApiError] = useState<string>();
  const [attempted, setAttempted] = useState(false);
  const [nameTouched, setNameTouched] = useState(false);
  const [createdId, setCreatedId] = useState<string>();
  const [distros, setDistros] = useState<DistributionItem[]>();

  useEffect(() => {
    if (!blueprintId) { setState(emptyState()); return; }
    const ctl = new AbortController();
    setState(undefined);
    api.blueprint(blueprintId, undefined, ctl.signal).then((bp) => setState(fromBlueprint(bp)))
      .catch((e) => { if (!ctl.signal.aborted) setLoadError(e); });
    return () => ctl.abort();
  }, [blueprintId]);

  // Loaded here, not in the step: a refusal (401/403) is the whole page's "not authorised".
  useEffect(() => {
    const ctl = new AbortController();
    api.distributions(ctl.signal).then(setDistros).catch((e) => { if (!ctl.signal.aborted) setLoadError(e); });
    return () => ctl.abort();
  }, []);

  const set = useCallback((patch: Partial<WizardState>) => {
    setState((old) => (old ? { ...old, ...patch } : old));
    setServerErrors({});
    setApiError(undefined);
  }, []);

  const clientErrors = useMemo(() => (s ? validate(s) : {}), [s]);
  const errors = useMemo(() => {
    const shown: Errors = {};
    for (const [k, v] of Object.entries(clientErrors)) {
      if (!REQUIRED.has(k) || attempted || (k === 'name' && nameTouched)) shown[k] = v;
    }
    return { ...shown, ...serverErrors };
  }, [clientErrors, serverErrors, attempted, nameTouched]);
  const bp = useMemo(() => (s ? toBlueprint(s) : undefined), [s]);
  // PatternFly's narrow-screen step toggle carries the fixed name "Wizard toggle", unlike the step it
  // shows (axe: label-content-name-mismatch); without it the button is named by its visible text.
  useEffect(() => {
    document.querySelectorAll('.pf-v6-c-wizard__toggle[aria-label]').forEach((b) => b.removeAttribute('aria-label'));
  });

  if (loadError) return <ErrorPage error={loadError} title={editing ? 'The blueprint could not be loaded' : 'The wizard could not be loaded'} />;
  if (!s || !bp) return <Bullseye><Spinner aria-label="Loading blueprint" /></Bullseye>;

  const onCreate = async (build: boolean): Promise<StepId | undefined> => {
    setAttempted(true);
    const first = Object.keys(clientErrors)[0];
    if (first) return stepOf(first);
    try {
      // After a create whose build failed, a retry saves the same blueprint again (a PUT), not a second one.
      const existing = editing ? blueprintId! : createdId;
      const target = existing ? (await api.updateBlueprint(existing, bp), existing) : (await api.createBlueprint(bp)).id;
      setCreatedId(target);
      if (build) {
        await api.composeBlueprint(target);
        navigate('/', { state: { created: bp.name } });
      } else {
        navigate(`/blueprints/${target}`);
      }
      return undefined;
    } catch (e) {
      if (e instanceof ApiError && e.unauthorised) { setLoadError(e); return undefined; }
      const detail = e instanceof Error ? e.message : String(e);
      const key = e instanceof ApiError && e.field ? keyOfApiField(e.field) : 'review';
      if (key === 'review') setApiError(detail);
      else setServerErrors({ [key]: detail });
      return stepOf(key);
    }
  };

  const stepHasError = (id: StepId) => Object.keys(errors).some((k) => stepOf(k) === id);
  const status = (id: StepId) => (stepHasError(id) ? 'error' : 'default') as 'error' | 'default';
  const outputReady = !!s.distribution && !!s.architecture && s.imageTypes.length > 0;
  const props = { s, set, errors };
  const cancel = () => navigate(editing ? `/blueprints/${blueprintId}` : '/');

  return (
    <>
      <PageSection>
        <Title headingLevel="h1">{editing ? `Edit blueprint ${s.name}` : 'Create image'}</Title>
      </PageSection>
      <PageSection isFilled>
        <Wizard onClose={cancel} navAriaLabel="Wizard steps" className="obd-wizard" shouldFocusContent>
          <WizardStep id="step-image-output" name="Image output" status={status('image-output')} footer={{ isNextDisabled: !outputReady }}>
            <ImageOutputStep {...props} distros={distros} />
          </WizardStep>
          <WizardStep id="step-targets" name="Target environments" status={status('targets')} isDisabled={!outputReady}>
            <TargetsStep {...props} />
          </WizardStep>
          <WizardStep id="step-filesystem" name="File system" status={status('filesystem')} isDisabled={!outputReady}>
            <FileSystemStep {...props} />
          </WizardStep>
          <WizardStep id="step-repositories" name="Repositories and packages" status={status('repositories')} isDisabled={!outputReady}>
            <PackagesStep {...props} />
          </WizardStep>
          <WizardStep id="step-users" name="Users" status={status('users')} isDisabled={!outputReady}><UsersStep {...props} /></WizardStep>
          <WizardStep id="step-timezone" name="Timezone" status={status('timezone')} isDisabled={!outputReady}><TimezoneStep {...props} /></WizardStep>
          <WizardStep id="step-locale" name="Locale" status={status('locale')} isDisabled={!outputReady}><LocaleStep {...props} /></WizardStep>
          <WizardStep id="step-hostname" name="Hostname" status={status('hostname')} isDisabled={!outputReady}><HostnameStep {...props} /></WizardStep>
          <WizardStep id="step-kernel" name="Kernel" status={status('kernel')} isDisabled={!outputReady}><KernelStep {...props} /></WizardStep>
          <WizardStep id="step-firewall" name="Firewall" status={status('firewall')} isDisabled={!outputReady}><FirewallStep {...props} /></WizardStep>
          <WizardStep id="step-services" name="Services" status={status('services')} isDisabled={!outputReady}><ServicesStep {...props} /></WizardStep>
          <WizardStep id="step-firstboot" name="First boot script" status={status('firstboot')} isDisabled={!outputReady}>
            <FirstBootStep {...props} />
          </WizardStep>
          <WizardStep id="step-details" name="Details" status={status('details')} isDisabled={!outputReady}
            footer={{ isNextDisabled: !s.name.trim() }}>
            <DetailsStep {...props} onNameBlur={() => setNameTouched(true)} />
          </WizardStep>
          <WizardStep id="step-review" name="Review" isDisabled={!outputReady || !s.name.trim()}
            footer={<ReviewFooter onCreate={onCreate} editing={editing} onCancel={cancel} />}>
            <ReviewStep s={s} bp={bp} apiError={apiError} />
          </WizardStep>
        </Wizard>
      </PageSection>
    </>
  );
}
