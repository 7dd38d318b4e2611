import { Alert, Label, PageSection, Progress, ProgressMeasureLocation, Title, Content } from '@patternfly/react-core';
import { ApiError, type ComposeRequest, type ImageStatus } from './api';
import { useTitle } from './useTitle';

export function NotAuthorised({ detail }: { detail: string }) {
  useTitle('Not authorised');
  return (
    <PageSection>
      <Title headingLevel="h1">Not authorised</Title>
      <Content component="p">The image-builder API refused this request.</Content>
      <Alert variant="danger" isInline title="The API's answer">{detail}</Alert>
    </PageSection>
  );
}

export const unauthorised = (e: unknown): e is ApiError => e instanceof ApiError && e.unauthorised;

/** An API failure as an inline alert (a page whose own load is refused shows <NotAuthorised> instead). */
export function ErrorView({ error, title = 'The request failed' }: { error: unknown; title?: string }) {
  if (error instanceof ApiError && error.unauthorised) {
    return <Alert variant="danger" isInline title="Not authorised">{error.message}</Alert>;
  }
  const text = error instanceof Error ? error.message : String(error);
  return <Alert variant="danger" isInline title={title}>{text}</Alert>;
}

const COLOURS: Record<string, 'green' | 'red' | 'blue' | 'grey' | 'orange'> = {
  success: 'green', failure: 'red', building: 'blue', uploading: 'blue', registering: 'blue', pending: 'grey',
};
const WORDS: Record<string, string> = {
  success: 'Ready', failure: 'Failed', building: 'Building', uploading: 'Uploading', registering: 'Registering', pending: 'Pending',
};

export function StatusLabel({ id, status }: { id: string; status?: ImageStatus }) {
  if (!status) return <span data-testid={`compose-status-${id}`}>…</span>;
  return (
    <Label color={COLOURS[status.status] ?? 'grey'} data-testid={`compose-status-${id}`} data-status={status.status}>
      {WORDS[status.status] ?? status.status}
    </Label>
  );
}

export function ProgressBar({ id, status }: { id: string; status?: ImageStatus }) {
  const p = status?.progress;
  if (!status || !p || !p.total || status.status === 'success' || status.status === 'failure') return null;
  const value = Math.min(100, Math.round((100 * p.done) / p.total));
  return (
    <Progress className="obd-progress" data-testid={`compose-progress-${id}`} value={value} size="sm"
      measureLocation={ProgressMeasureLocation.outside}
      aria-label={`Build progress of compose ${id}`}
      title={p.message || p.stage || undefined} />
  );
}

export function FailureReason({ status }: { status?: ImageStatus }) {
  if (status?.status !== 'failure' || !status.error) return null;
  const details = status.error.details;
  const more = details === undefined || details === null ? '' : typeof details === 'string' ? details : JSON.stringify(details);
  return (
    <div className="pf-v6-u-font-size-sm">
      <strong>{status.error.reason}</strong>
      {more && <div className="pf-v6-u-color-200">{more.length > 300 ? `${more.slice(0, 300)}…` : more}</div>}
    </div>
  );
}

export const imageType = (r?: ComposeRequest) => r?.image_requests?.[0]?.image_type ?? '';
export const uploadType = (r?: ComposeRequest) => r?.image_requests?.[0]?.upload_request?.type ?? '';
export const TARGET_NAMES: Record<string, string> = {
  aws: 'Amazon Web Services', gcp: 'Google Cloud', azure: 'Microsoft Azure', local: 'Local download',
  'aws.s3': 'Amazon S3', 'oci.objectstorage': 'Oracle Cloud',
};
export const formatDate = (s?: string) => {
  if (!s) return '';
  const d = new Date(s);
  return Number.isNaN(d.getTime()) ? s : d.toLocaleString(undefined, { dateStyle: 'medium', timeStyle: 'short' });
};

/** A page whose own load failed: "not authorised" for 401/403, else a heading and the API's message. */
export function ErrorPage({ error, title }: { error: unknown; title: string }) {
  useTitle(unauthorised(error) ? 'Not authorised' : title);
  if (unauthorised(error)) return <NotAuthorised detail={error.message} />;
  return (
    <PageSection>
      <Title headingLevel="h1">{title}</Title>
      <ErrorView error={error} title={title} />
    </PageSection>
  );
}
