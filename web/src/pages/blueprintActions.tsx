import { useState } from 'react';
import { Link } from 'react-router-dom';
import { Alert, AlertActionCloseButton, AlertGroup, Content } from '@patternfly/react-core';
import { api, saveJson, type BlueprintItem } from '../api';
import { ConfirmModal } from '../LazyConfirm';

interface Notice { key: number; variant: 'success' | 'danger'; title: string; body?: React.ReactNode }

/** Build, export and delete of a blueprint, with their outcome shown as alerts. */
export function useBlueprintActions(onDeleted: (id: string) => void) {
  const [notices, setNotices] = useState<Notice[]>([]);
  const [deleting, setDeleting] = useState<Pick<BlueprintItem, 'id' | 'name'>>();
  const notify = (n: Omit<Notice, 'key'>) => setNotices((ns) => [...ns, { ...n, key: Date.now() + Math.random() }]);
  const failed = (title: string, e: unknown) => notify({ variant: 'danger', title, body: e instanceof Error ? e.message : String(e) });

  const build = async (bp: Pick<BlueprintItem, 'id' | 'name'>) => {
    try {
      const made = await api.composeBlueprint(bp.id);
      notify({
        variant: 'success', title: `Building ${made.length} image${made.length === 1 ? '' : 's'} of ${bp.name}`,
        body: <Link to="/">See the images</Link>,
      });
    } catch (e) { failed(`Images of ${bp.name} could not be built`, e); }
  };
  const exportIt = async (bp: Pick<BlueprintItem, 'id' | 'name'>) => {
    try {
      saveJson(`${bp.name.replace(/[^A-Za-z0-9._-]+/g, '_') || bp.id}.json`, await api.exportBlueprint(bp.id));
    } catch (e) { failed(`${bp.name} could not be exported`, e); }
  };

  const view = (
    <>
      <AlertGroup isToast isLiveRegion>
        {notices.map((n) => (
          <Alert key={n.key} variant={n.variant} title={n.title} timeout={8000}
            onTimeout={() => setNotices((ns) => ns.filter((x) => x.key !== n.key))}
            actionClose={<AlertActionCloseButton onClose={() => setNotices((ns) => ns.filter((x) => x.key !== n.key))} />}>
            {n.body}
          </Alert>
        ))}
      </AlertGroup>
      {deleting && (
        <ConfirmModal title="Delete the blueprint?" confirm="Delete"
          body={<Content component="p">{`All versions of ${deleting.name} are deleted. Its images stay in the list.`}</Content>}
          onConfirm={async () => { await api.deleteBlueprint(deleting.id); onDeleted(deleting.id); }}
          onClose={() => setDeleting(undefined)} />
      )}
    </>
  );
  return { build, exportIt, remove: setDeleting, view };
}
