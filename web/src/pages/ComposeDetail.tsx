import { useEffect, useRef, useState } from 'react';
import { Link, useLocation, useNavigate, useParams } from 'react-router-dom';
import {
  Breadcrumb, BreadcrumbItem, Button, Content, DescriptionList, DescriptionListDescription, DescriptionListGroup,
  DescriptionListTerm, Flex, PageSection, Spinner, Title,
} from '@patternfly/react-core';
import { api, ApiError, downloadUrl, isDone, logsUrl } from '../api';
import { ConfirmModal } from '../LazyConfirm';
import { ErrorPage, ErrorView, FailureReason, imageType, ProgressBar, StatusLabel, TARGET_NAMES, uploadType } from '../components';
import { useComposeStatus } from '../live';
import { useTitle } from '../useTitle';

const LOG_POLL_MS = 2000;

/** The build log so far, fetched again every 2 s while the compose runs and once more when it ends. */
function useLog(id: string, running: boolean | undefined) {
  const [log, setLog] = useState<{ text?: string; missing?: boolean; error?: unknown }>({});
  useEffect(() => {
    if (running === undefined) return;
    const ctl = new AbortController();
    let timer: ReturnType<typeof setTimeout> | undefined;
    const load = async () => {
      try {
        setLog({ text: await api.logs(id, ctl.signal) });
      } catch (e) {
        if (ctl.signal.aborted) return;
        setLog(e instanceof ApiError && e.status === 404 ? { missing: true } : { error: e });
      }
      if (running && !ctl.signal.aborted) timer = setTimeout(load, LOG_POLL_MS);
    };
    load();
    return () => { ctl.abort(); if (timer) clearTimeout(timer); };
  }, [id, running]);
  return log;
}

export default function ComposeDetail() {
  const { id = '' } = useParams();
  const navigate = useNavigate();
  const location = useLocation();
  const { status, error } = useComposeStatus(id);
  const s = status?.image_status;
  const running = status ? !isDone(s) : undefined;
  const log = useLog(id, running);
  const [deleting, setDeleting] = useState(false);
  const logRef = useRef<HTMLPreElement>(null);
  const name = status?.request.image_name || id;
  useTitle(`Image ${name}`);

  // Keep the newest log lines in view while the build runs.
  useEffect(() => {
    const el = logRef.current;
    if (el && running) el.scrollTop = el.scrollHeight;
  }, [log.text, running]);
  useEffect(() => {
    if (location.hash === '#logs' && log.text !== undefined) document.getElementById('logs')?.scrollIntoView();
  }, [location.hash, log.text]);

  if (!status && error) return <ErrorPage error={error} title="The image could not be loaded" />;
  if (!status || !s) return <PageSection><Spinner aria-label="Loading image" /></PageSection>;
  const target = uploadType(status.request);
  const p = s.progress;
  return (
    <>
      <PageSection>
        <Breadcrumb>
          <BreadcrumbItem><Link to="/">Images</Link></BreadcrumbItem>
          <BreadcrumbItem isActive>{name}</BreadcrumbItem>
        </Breadcrumb>
        <Title headingLevel="h1">{`Image ${name}`}</Title>
        <Flex spaceItems={{ default: 'spaceItemsSm' }} className="pf-v6-u-mt-sm">
          {s.status === 'success' && target === 'local' && (
            <Button component="a" href={downloadUrl(id)} download>Download image</Button>
          )}
          <Button component="a" variant="secondary" href={logsUrl(id)} download={`${id}.log`} isDisabled={!!log.missing}>
            Download log
          </Button>
          <Button variant="danger" onClick={() => setDeleting(true)}>Delete</Button>
        </Flex>
      </PageSection>
      <PageSection>
        <DescriptionList isHorizontal isCompact>
          <DescriptionListGroup>
            <DescriptionListTerm>Status</DescriptionListTerm>
            <DescriptionListDescription><StatusLabel id={id} status={s} /></DescriptionListDescription>
          </DescriptionListGroup>
          {p && running && (
            <DescriptionListGroup>
              <DescriptionListTerm>Progress</DescriptionListTerm>
              <DescriptionListDescription>
                <ProgressBar id={id} status={s} />
                <Content component="small">{[`${p.done} of ${p.total}`, p.stage, p.message].filter(Boolean).join(' · ')}</Content>
              </DescriptionListDescription>
            </DescriptionListGroup>
          )}
          {s.status === 'failure' && (
            <DescriptionListGroup>
              <DescriptionListTerm>Failure</DescriptionListTerm>
              <DescriptionListDescription><FailureReason status={s} /></DescriptionListDescription>
            </DescriptionListGroup>
          )}
          <DescriptionListGroup>
            <DescriptionListTerm>Distribution</DescriptionListTerm>
            <DescriptionListDescription>{status.request.distribution ?? '—'}</DescriptionListDescription>
          </DescriptionListGroup>
          <DescriptionListGroup>
            <DescriptionListTerm>Image type</DescriptionListTerm>
            <DescriptionListDescription>
              {`${imageType(status.request)} (${status.request.image_requests?.[0]?.architecture ?? ''})`}
            </DescriptionListDescription>
          </DescriptionListGroup>
          <DescriptionListGroup>
            <DescriptionListTerm>Target</DescriptionListTerm>
            <DescriptionListDescription>
              {TARGET_NAMES[target] ?? target}
              {s.upload_status && ` — upload ${s.upload_status.status}`}
              {s.upload_status?.options && Object.keys(s.upload_status.options).length > 0 &&
                `: ${Object.entries(s.upload_status.options).map(([k, v]) => `${k} ${String(v)}`).join(', ')}`}
            </DescriptionListDescription>
          </DescriptionListGroup>
        </DescriptionList>
      </PageSection>
      <PageSection aria-labelledby="logs">
        <Title headingLevel="h2" id="logs">Build log</Title>
        {log.error !== undefined ? <ErrorView error={log.error} title="The build log could not be loaded" /> :
          log.missing ? <Content component="p">No build log yet.</Content> :
          log.text === undefined ? <Spinner size="md" aria-label="Loading the build log" /> : (
            <pre className="obd-log" ref={logRef} tabIndex={0} aria-label="Build log" aria-live={running ? 'off' : undefined}>
              {log.text || '(empty)'}
            </pre>
          )}
      </PageSection>
      {deleting && (
        <ConfirmModal title="Delete the image?" confirm="Delete"
          body={<Content component="p">{`The compose ${name} and its image are deleted.`}</Content>}
          onConfirm={async () => { await api.deleteCompose(id); navigate('/'); }}
          onClose={() => setDeleting(false)} />
      )}
    </>
  );
}
