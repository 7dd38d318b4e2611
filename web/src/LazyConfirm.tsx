import { lazy, Suspense, type ComponentProps } from 'react';

// The dialog (PatternFly's Modal and its styles) is loaded when first asked for, not with the page.
const Modal = lazy(() => import('./ConfirmModal').then((m) => ({ default: m.ConfirmModal })));

export function ConfirmModal(props: ComponentProps<typeof Modal>) {
  return <Suspense fallback={null}><Modal {...props} /></Suspense>;
}
