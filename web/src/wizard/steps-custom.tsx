// Wizard steps 5-13: users and groups, timezone, locale, hostname, kernel, firewall, services,
// first boot script, details.
import { Button, Card, CardBody, CardTitle, Form, FormGroup, Grid, GridItem, TextArea } from '@patternfly/react-core';
import { Help, ListField, StepTitle, TextField, type StepProps } from './fields';
import { nextKey, type GroupRow, type UserRow } from './model';

const noSubmit = (e: React.FormEvent) => e.preventDefault();

export function UsersStep({ s, set, errors }: StepProps) {
  const update = (i: number, patch: Partial<UserRow>) => set({ users: s.users.map((u, j) => (j === i ? { ...u, ...patch } : u)) });
  const updateGroup = (i: number, patch: Partial<GroupRow>) => set({ groups: s.groups.map((g, j) => (j === i ? { ...g, ...patch } : g)) });
  return (
    <Form onSubmit={noSubmit}>
      <StepTitle title="Users and groups" intro="Accounts created in the image. Each user needs a password or an SSH key." />
      {s.users.map((u, i) => (
        <Card key={u.key} isCompact>
          <CardTitle component="h3">{`User ${i + 1}${u.name ? `: ${u.name}` : ''}`}</CardTitle>
          <CardBody>
            <Grid hasGutter>
              <GridItem md={6}>
                <TextField id={`user-${i}-name`} label="User name" required value={u.name} autoComplete="off"
                  onChange={(v) => update(i, { name: v })} error={errors[`users[${i}].name`]} />
              </GridItem>
              <GridItem md={6}>
                <TextField id={`user-${i}-password`} label="Password" type="password" value={u.password} autoComplete="new-password"
                  onChange={(v) => update(i, { password: v })} error={errors[`users[${i}].password`]}
                  hint={u.hasPassword ? 'A password is set; leave empty to keep it.' : undefined} />
              </GridItem>
              <GridItem md={12}>
                <FormGroup label="SSH public key" fieldId={`user-${i}-ssh-key`}>
                  <TextArea id={`user-${i}-ssh-key`} value={u.ssh_key} rows={2} onChange={(_e, v) => update(i, { ssh_key: v })}
                    validated={errors[`users[${i}].ssh_key`] ? 'error' : 'default'} aria-describedby={`user-${i}-ssh-key-help`}
                    aria-invalid={!!errors[`users[${i}].ssh_key`]} />
                  <Help id={`user-${i}-ssh-key`} error={errors[`users[${i}].ssh_key`]} hint="e.g. ssh-ed25519 AAAA… user@host" />
                </FormGroup>
              </GridItem>
              <GridItem md={12}>
                <TextField id={`user-${i}-groups`} label="Groups" value={u.groups} onChange={(v) => update(i, { groups: v })}
                  error={errors[`users[${i}].groups`]} hint="Comma-separated, e.g. wheel (administrators), docker." />
              </GridItem>
            </Grid>
            <Button variant="link" isDanger onClick={() => set({ users: s.users.filter((_, j) => j !== i) })}
              aria-label={`Remove user ${u.name || i + 1}`}>Remove user</Button>
          </CardBody>
        </Card>
      ))}
      <div>
        <Button variant="secondary" onClick={() => set({ users: [...s.users, { key: nextKey(), name: '', password: '', ssh_key: '', groups: '', hasPassword: false }] })}>
          Add user
        </Button>
      </div>
      <Help id="users" error={errors.users} />
      <StepTitle title="Groups" intro="Groups created in the image." />
      {s.groups.map((g, i) => (
        <Grid key={g.key} hasGutter>
          <GridItem sm={12} md={6}>
            <TextField id={`group-${i}-name`} label={`Group name ${i + 1}`} value={g.name} onChange={(v) => updateGroup(i, { name: v })}
              error={errors[`groups[${i}].name`]} />
          </GridItem>
          <GridItem sm={8} md={4}>
            <TextField id={`group-${i}-gid`} label={`GID ${i + 1}`} value={g.gid} onChange={(v) => updateGroup(i, { gid: v })}
              error={errors[`groups[${i}].gid`]} hint="Optional" />
          </GridItem>
          <GridItem sm={4} md={2}>
            <Button variant="link" isDanger onClick={() => set({ groups: s.groups.filter((_, j) => j !== i) })}
              aria-label={`Remove group ${g.name || i + 1}`}>Remove</Button>
          </GridItem>
        </Grid>
      ))}
      <div>
        <Button variant="secondary" onClick={() => set({ groups: [...s.groups, { key: nextKey(), name: '', gid: '' }] })}>Add group</Button>
      </div>
      <Help id="groups" error={errors.groups} />
    </Form>
  );
}

export function TimezoneStep({ s, set, errors }: StepProps) {
  return (
    <Form onSubmit={noSubmit}>
      <StepTitle title="Timezone" />
      <TextField id="timezone" label="Timezone" value={s.timezone} onChange={(v) => set({ timezone: v })} error={errors.timezone}
        hint="e.g. Europe/Berlin, America/New_York, UTC" />
      <ListField id="ntpservers" label="NTP servers" value={s.ntpservers} onChange={(v) => set({ ntpservers: v })} error={errors.ntpservers} />
    </Form>
  );
}

export function LocaleStep({ s, set, errors }: StepProps) {
  return (
    <Form onSubmit={noSubmit}>
      <StepTitle title="Locale" />
      <ListField id="languages" label="Languages" value={s.languages} onChange={(v) => set({ languages: v })} error={errors.languages}
        hint="e.g. en_US.UTF-8; the first one is the default." />
      <TextField id="keyboard" label="Keyboard layout" value={s.keyboard} onChange={(v) => set({ keyboard: v })} error={errors.keyboard}
        hint="e.g. us, de" />
    </Form>
  );
}

export function HostnameStep({ s, set, errors }: StepProps) {
  return (
    <Form onSubmit={noSubmit}>
      <StepTitle title="Hostname" />
      <TextField id="hostname" label="Hostname" value={s.hostname} onChange={(v) => set({ hostname: v })} error={errors.hostname}
        hint="e.g. web-01.example.com" />
    </Form>
  );
}

export function KernelStep({ s, set, errors }: StepProps) {
  return (
    <Form onSubmit={noSubmit}>
      <StepTitle title="Kernel" />
      <TextField id="kernel-name" label="Kernel package" value={s.kernelName} onChange={(v) => set({ kernelName: v })}
        error={errors.kernelName} hint="Leave empty for the distribution's default kernel." />
      <TextField id="kernel-append" label="Kernel arguments" value={s.kernelAppend} onChange={(v) => set({ kernelAppend: v })}
        error={errors.kernelAppend} hint="Appended to the kernel command line, e.g. console=ttyS0 nosmt" />
    </Form>
  );
}

export function FirewallStep({ s, set, errors }: StepProps) {
  return (
    <Form onSubmit={noSubmit}>
      <StepTitle title="Firewall" />
      <ListField id="firewall-ports" label="Open ports" value={s.firewallPorts} onChange={(v) => set({ firewallPorts: v })}
        error={errors.firewallPorts} hint="One per line, e.g. 8080:tcp, 20-23:udp, imap:tcp" />
      <ListField id="firewall-enabled" label="Enabled firewall services" value={s.firewallEnabled}
        onChange={(v) => set({ firewallEnabled: v })} error={errors.firewallEnabled} hint="One per line, e.g. ssh, https" />
      <ListField id="firewall-disabled" label="Disabled firewall services" value={s.firewallDisabled}
        onChange={(v) => set({ firewallDisabled: v })} error={errors.firewallDisabled} />
    </Form>
  );
}

export function ServicesStep({ s, set, errors }: StepProps) {
  return (
    <Form onSubmit={noSubmit}>
      <StepTitle title="Services" intro="systemd units to enable, disable or mask at boot." />
      <ListField id="services-enabled" label="Enabled services" value={s.servicesEnabled}
        onChange={(v) => set({ servicesEnabled: v })} error={errors.servicesEnabled} hint="One per line, e.g. sshd.service" />
      <ListField id="services-disabled" label="Disabled services" value={s.servicesDisabled}
        onChange={(v) => set({ servicesDisabled: v })} error={errors.servicesDisabled} />
      <ListField id="services-masked" label="Masked services" value={s.servicesMasked}
        onChange={(v) => set({ servicesMasked: v })} error={errors.servicesMasked} />
    </Form>
  );
}

export function FirstBootStep({ s, set, errors }: StepProps) {
  return (
    <Form onSubmit={noSubmit}>
      <StepTitle title="First boot script"
        intro="A script run once, as root, on the image's first boot (installed as a file and a systemd service)." />
      <FormGroup label="First boot script" fieldId="first-boot">
        <TextArea id="first-boot" value={s.firstBoot} rows={10} onChange={(_e, v) => set({ firstBoot: v })}
          className="obd-code" aria-describedby="first-boot-help" validated={errors.firstBoot ? 'error' : 'default'}
          aria-invalid={!!errors.firstBoot} />
        <Help id="first-boot" error={errors.firstBoot} hint="Start with a #! line, e.g. #!/bin/sh" />
      </FormGroup>
    </Form>
  );
}

export function DetailsStep({ s, set, errors, onNameBlur }: StepProps & { onNameBlur: () => void }) {
  return (
    <Form onSubmit={noSubmit}>
      <StepTitle title="Details" />
      <TextField id="blueprint-name" label="Blueprint name" required value={s.name} onChange={(v) => set({ name: v })}
        error={errors.name} onBlur={onNameBlur} hint="Up to 100 characters." />
      <FormGroup label="Description" fieldId="blueprint-description">
        <TextArea id="blueprint-description" value={s.description} rows={3} onChange={(_e, v) => set({ description: v })}
          validated={errors.description ? 'error' : 'default'} aria-describedby="blueprint-description-help"
          aria-invalid={!!errors.description} />
        <Help id="blueprint-description" error={errors.description} hint="Up to 250 characters." />
      </FormGroup>
    </Form>
  );
}
