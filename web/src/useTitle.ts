import { useEffect } from 'react';

/** Each page its own <title>, so a tab, a screen reader and a test can tell them apart. */
export function useTitle(title: string): void {
  useEffect(() => {
    document.title = `${title} · osbuildd`;
  }, [title]);
}
