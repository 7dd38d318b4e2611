import { lazy, Suspense, useState, useEffect } from 'react';
import { Route, Routes, useLocation, useNavigate } from 'react-router-dom';
import {
  Bullseye, Masthead, MastheadBrand, MastheadLogo, MastheadMain, MastheadToggle, Nav, NavItem, NavList,
  Page, PageSidebar, PageSidebarBody, PageToggleButton, SkipToContent, Spinner,
} from '@patternfly/react-core';
import BarsIcon from '@patternfly/react-icons/dist/esm/icons/bars-icon';
import { NotFound } from './pages/NotFound';

// Routes are code-split: the first load carries the shell and the page it lands on.
const ComposesPage = lazy(() => import('./pages/ComposesPage'));
const ComposeDetail = lazy(() => import('./pages/ComposeDetail'));
const BlueprintsPage = lazy(() => import('./pages/BlueprintsPage'));
const BlueprintDetail = lazy(() => import('./pages/BlueprintDetail'));
const WizardPage = lazy(() => import('./wizard/WizardPage'));

const NAV = [
  { to: '/', label: 'Images', match: (p: string) => p === '/' || p.startsWith('/composes') },
  { to: '/blueprints', label: 'Blueprints', match: (p: string) => p.startsWith('/blueprints') },
  { to: '/wizard', label: 'Create image', match: (p: string) => p.startsWith('/wizard') },
];

function Shell({ children }: { children: React.ReactNode }) {
  const location = useLocation();
  const navigate = useNavigate();
  const [mobile, setMobile] = useState(false);
  const [sidebarOpen, setSidebarOpen] = useState(true);

  useEffect(() => { if (mobile) setSidebarOpen(false); }, [location.pathname, mobile]);

  const masthead = (
    <Masthead display={{ default: 'inline' }}>
      <MastheadMain>
        <MastheadToggle>
          <PageToggleButton isHamburgerButton aria-label="Main navigation" isSidebarOpen={sidebarOpen}
            onSidebarToggle={() => setSidebarOpen(!sidebarOpen)}>
            <BarsIcon />
          </PageToggleButton>
        </MastheadToggle>
        <MastheadBrand>
          <MastheadLogo href="/" onClick={(e) => { e.preventDefault(); navigate('/'); }}>
            <strong>osbuildd</strong>&nbsp;image builder
          </MastheadLogo>
        </MastheadBrand>
      </MastheadMain>
    </Masthead>
  );
  const sidebar = (
    <PageSidebar isSidebarOpen={sidebarOpen}>
      <PageSidebarBody>
        <Nav aria-label="Main">
          <NavList>
            {NAV.map((n) => (
              <NavItem key={n.to} to={n.to} isActive={n.match(location.pathname)}
                onClick={(e) => { e.preventDefault(); navigate(n.to); }}>
                {n.label}
              </NavItem>
            ))}
          </NavList>
        </Nav>
      </PageSidebarBody>
    </PageSidebar>
  );
  return (
    <Page masthead={masthead} sidebar={sidebar} mainContainerId="main-content"
      skipToContent={<SkipToContent href="#main-content">Skip to content</SkipToContent>}
      onPageResize={(_e, { mobileView }: { mobileView: boolean }) => {
        if (mobileView !== mobile) { setMobile(mobileView); setSidebarOpen(!mobileView); }
      }}>
      {children}
    </Page>
  );
}

const Loading = () => <Bullseye><Spinner aria-label="Loading page" /></Bullseye>;

export function App() {
  return (
    <Shell>
      <Suspense fallback={<Loading />}>
        <Routes>
          <Route path="/" element={<ComposesPage />} />
          <Route path="/composes" element={<ComposesPage />} />
          <Route path="/composes/:id" element={<ComposeDetail />} />
          <Route path="/blueprints" element={<BlueprintsPage />} />
          <Route path="/blueprints/:id" element={<BlueprintDetail />} />
          <Route path="/wizard" element={<WizardPage />} />
          <Route path="/wizard/:blueprintId" element={<WizardPage />} />
          <Route path="*" element={<NotFound />} />
        </Routes>
      </Suspense>
    </Shell>
  );
}
