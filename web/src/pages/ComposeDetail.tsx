import { PageSection, Title } from '@patternfly/react-core';
export default function P() { return <PageSection><Title headingLevel="h1">ComposeDetail</Title></PageSection>; }
