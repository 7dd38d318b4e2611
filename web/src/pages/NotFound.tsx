import { PageSection, Title, Content } from '@patternfly/react-core';
import { Link } from 'react-router-dom';
import { useTitle } from '../useTitle';

export function NotFound() {
  useTitle('Page not found');
  return (
    <PageSection>
      <Title headingLevel="h1">Page not found</Title>
      <Content component="p">There is no page here. <Link to="/">Go to the images</Link>.</Content>
    </PageSection>
  );
}
