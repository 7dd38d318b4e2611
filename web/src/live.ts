import { useEffect, useState } from 'react';
import { api, ApiError, eventsUrl, isDone, type ComposeStatus } from './api';

// A browser keeps about six HTTP/1.1 connections per origin; each EventSource holds one open.
// So only a few rows listen to /events and the rest poll, leaving room for ordinary requests.
const MAX_STREAMS = 3;
let streams = 0;
const POLL_MS = 2000;

export interface Live { status?: ComposeStatus; error?: ApiError | Error }

/**
 * The compose's status, kept current while it runs: server-sent events from /composes/{id}/events
 * when the daemon offers them (an osbuildd extension), polling every 2 s otherwise.
 */
export function useComposeStatus(id: string | undefined, wantStream = true): Live {
  const [live, setLive] = useState<Live>({});

  useEffect(() => {
    if (!id) return;
    let stopped = false;
    let timer: ReturnType<typeof setTimeout> | undefined;
    let source: EventSource | undefined;
    const ctl = new AbortController();

    const closeStream = () => {
      if (source) { source.close(); source = undefined; streams--; }
    };
    const poll = async () => {
      try {
        const s = await api.compose(id, ctl.signal);
        if (stopped) return;
        setLive({ status: s });
        if (!isDone(s.image_status)) timer = setTimeout(poll, POLL_MS);
      } catch (e) {
        if (stopped) return;
        setLive((old) => ({ ...old, error: e as Error }));
        // A passing failure (daemon restarting) should not end the watch; an unknown compose should.
        if (!(e instanceof ApiError && (e.status === 404 || e.unauthorised))) timer = setTimeout(poll, POLL_MS);
      }
    };
    const stream = () => {
      streams++;
      source = new EventSource(eventsUrl(id));
      source.onmessage = (ev) => {
        try {
          const s = JSON.parse(ev.data) as ComposeStatus;
          setLive({ status: s });
          if (isDone(s.image_status)) closeStream();
        } catch {
          // A line that is not a status (a keep-alive comment never reaches here): ignore it.
        }
      };
      source.onerror = () => {
        // Absent endpoint, a closed stream or a dropped connection: poll from here on.
        closeStream();
        if (!stopped) timer = setTimeout(poll, POLL_MS);
      };
    };

    (async () => {
      try {
        const s = await api.compose(id, ctl.signal);
        if (stopped) return;
        setLive({ status: s });
        if (isDone(s.image_status)) return;
        if (wantStream && typeof EventSource !== 'undefined' && streams < MAX_STREAMS) stream();
        else timer = setTimeout(poll, POLL_MS);
      } catch (e) {
        if (stopped) return;
        setLive({ error: e as Error });
        if (!(e instanceof ApiError && (e.status === 404 || e.unauthorised))) timer = setTimeout(poll, POLL_MS);
      }
    })();

    return () => {
      stopped = true;
      ctl.abort();
      if (timer) clearTimeout(timer);
      closeStream();
    };
  }, [id, wantStream]);

  return live;
}
