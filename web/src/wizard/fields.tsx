// Labelled form fields: every input has a visible label and shows its error beside it.
import {
  FormGroup, FormHelperText, HelperText, HelperTextItem, TextArea, TextInput, Title, Content,
} from '@patternfly/react-core';
import type { Errors, WizardState } from './model';

export interface StepProps {
  s: WizardState;
  set: (patch: Partial<WizardState>) => void;
  errors: Errors;
}

export function Help({ error, hint, id }: { error?: string; hint?: string; id: string }) {
  if (!error && !hint) return null;
  return (
    <FormHelperText>
      <HelperText id={`${id}-help`}>
        {error ? <HelperTextItem variant="error">{error}</HelperTextItem> : <HelperTextItem>{hint}</HelperTextItem>}
      </HelperText>
    </FormHelperText>
  );
}

interface TextProps {
  id: string;
  label: string;
  value: string;
  onChange: (v: string) => void;
  error?: string;
  hint?: string;
  required?: boolean;
  type?: 'text' | 'password' | 'url' | 'number';
  placeholder?: string;
  autoComplete?: string;
  onBlur?: () => void;
}

export function TextField({ id, label, value, onChange, error, hint, required, type = 'text', placeholder, autoComplete, onBlur }: TextProps) {
  return (
    <FormGroup label={label} fieldId={id} isRequired={required}>
      <TextInput id={id} name={id} value={value} type={type} onChange={(_e, v) => onChange(v)} isRequired={required}
        validated={error ? 'error' : 'default'} aria-invalid={!!error} placeholder={placeholder}
        aria-describedby={error || hint ? `${id}-help` : undefined} autoComplete={autoComplete} onBlur={onBlur} />
      <Help id={id} error={error} hint={hint} />
    </FormGroup>
  );
}

export function ListField({ id, label, value, onChange, error, hint, rows = 3 }: Omit<TextProps, 'type'> & { rows?: number }) {
  return (
    <FormGroup label={label} fieldId={id}>
      <TextArea id={id} name={id} value={value} onChange={(_e, v) => onChange(v)} rows={rows} resizeOrientation="vertical"
        validated={error ? 'error' : 'default'} aria-invalid={!!error}
        aria-describedby={`${id}-help`} />
      <Help id={id} error={error} hint={hint ?? 'One per line.'} />
    </FormGroup>
  );
}

export function StepTitle({ title, intro }: { title: string; intro?: string }) {
  return (
    <>
      <Title headingLevel="h2">{title}</Title>
      {intro && <Content component="p">{intro}</Content>}
    </>
  );
}
