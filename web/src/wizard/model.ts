// The wizard's state, its conversion to and from the API's blueprint, and the client-side checks.
// The checks mirror the API's so a person hears early; the API's own message stays authoritative.
import type { BlueprintBody, BlueprintResponse, Customizations, FileItem, ImageRequest } from '../api';

export type Target = 'aws' | 'gcp' | 'azure' | 'local';
export type Unit = 'GiB' | 'MiB';

export interface Partition { key: number; mountpoint: string; size: string; unit: Unit }
export interface UserRow { key: number; name: string; password: string; ssh_key: string; groups: string; hasPassword: boolean }
export interface GroupRow { key: number; name: string; gid: string }

export interface WizardState {
  name: string;
  description: string;
  distribution: string;
  architecture: string;
  imageTypes: string[];
  targets: Record<string, Target>;
  awsAccounts: string;
  gcpAccounts: string;
  azure: { tenant_id: string; subscription_id: string; resource_group: string };
  fsMode: 'automatic' | 'manual';
  partitions: Partition[];
  repositories: string;
  packages: string[];
  users: UserRow[];
  groups: GroupRow[];
  timezone: string;
  ntpservers: string;
  languages: string;
  keyboard: string;
  hostname: string;
  kernelName: string;
  kernelAppend: string;
  firewallPorts: string;
  firewallEnabled: string;
  firewallDisabled: string;
  servicesEnabled: string;
  servicesDisabled: string;
  servicesMasked: string;
  firstBoot: string;
  /** Customizations the wizard has no step for (kept as loaded, so an edit does not drop them). */
  other: Customizations;
}

let keys = 1;
export const nextKey = () => keys++;

export const emptyState = (): WizardState => ({
  name: '', description: '', distribution: '', architecture: '', imageTypes: [], targets: {},
  awsAccounts: '', gcpAccounts: '', azure: { tenant_id: '', subscription_id: '', resource_group: '' },
  fsMode: 'automatic', partitions: [{ key: nextKey(), mountpoint: '/', size: '10', unit: 'GiB' }],
  repositories: '', packages: [], users: [], groups: [],
  timezone: '', ntpservers: '', languages: '', keyboard: '', hostname: '', kernelName: '', kernelAppend: '',
  firewallPorts: '', firewallEnabled: '', firewallDisabled: '', servicesEnabled: '', servicesDisabled: '',
  servicesMasked: '', firstBoot: '', other: {},
});

/** The cloud an image type uploads to; every other type is downloaded from the daemon. */
export function cloudOf(imageType: string): Target | undefined {
  if (imageType === 'aws' || imageType === 'ami') return 'aws';
  if (imageType === 'gcp') return 'gcp';
  if (imageType === 'azure' || imageType === 'vhd') return 'azure';
  return undefined;
}
export const targetsFor = (imageType: string): Target[] => {
  const cloud = cloudOf(imageType);
  return cloud ? [cloud, 'local'] : ['local'];
};
export const targetOf = (s: WizardState, t: string): Target => s.targets[t] ?? targetsFor(t)[0];

export const lines = (text: string): string[] => text.split(/[\n,]/).map((x) => x.trim()).filter(Boolean);
const joined = (xs?: string[]) => (xs ?? []).join('\n');

const FIRST_BOOT_SCRIPT = '/usr/local/sbin/osbuildd-first-boot';
const FIRST_BOOT_UNIT = '/etc/systemd/system/osbuildd-first-boot.service';
const FIRST_BOOT_SERVICE = 'osbuildd-first-boot.service';
// Runs the script once, on the first boot only: the unit removes its own trigger file when done.
const UNIT_TEXT = `[Unit]
Description=First boot script configured in the image
ConditionPathExists=${FIRST_BOOT_SCRIPT}
ConditionPathExists=!/var/lib/osbuildd-first-boot.done
Wants=network-online.target
After=network-online.target

[Service]
Type=oneshot
ExecStart=${FIRST_BOOT_SCRIPT}
ExecStartPost=/usr/bin/touch /var/lib/osbuildd-first-boot.done

[Install]
WantedBy=multi-user.target
`;

const GIB = 1024 ** 3;
const MIB = 1024 ** 2;

function uploadRequest(s: WizardState, imageType: string): ImageRequest['upload_request'] {
  const target = targetOf(s, imageType);
  if (target === 'aws') return { type: 'aws', options: { share_with_accounts: lines(s.awsAccounts) } };
  if (target === 'gcp') return { type: 'gcp', options: { share_with_accounts: lines(s.gcpAccounts) } };
  if (target === 'azure') {
    const o: Record<string, string> = {};
    for (const [k, v] of Object.entries(s.azure)) if (v.trim()) o[k] = v.trim();
    return { type: 'azure', options: o };
  }
  return { type: 'local', options: {} };
}

function setList<K extends string>(obj: Partial<Record<K, string[]>>, key: K, text: string): void {
  const xs = lines(text);
  if (xs.length) obj[key] = xs;
}

/** The blueprint the API takes (POST/PUT /blueprints). */
export function toBlueprint(s: WizardState): BlueprintBody {
  const c: Customizations = { ...s.other };
  if (s.packages.length) c.packages = [...s.packages];
  const repos = lines(s.repositories);
  if (repos.length) c.payload_repositories = repos.map((baseurl) => ({ baseurl, rhsm: false, check_gpg: false }));
  if (s.fsMode === 'manual') {
    c.filesystem = s.partitions.map((p) => ({
      mountpoint: p.mountpoint.trim(),
      min_size: Math.round(Number(p.size) * (p.unit === 'GiB' ? GIB : MIB)),
    }));
  }
  if (s.users.length) {
    c.users = s.users.map((u) => {
      const out: NonNullable<Customizations['users']>[number] = { name: u.name.trim() };
      if (u.password) out.password = u.password;
      if (u.ssh_key.trim()) out.ssh_key = u.ssh_key.trim();
      const groups = lines(u.groups);
      if (groups.length) out.groups = groups;
      return out;
    });
  }
  if (s.groups.length) c.groups = s.groups.map((g) => (g.gid.trim() ? { name: g.name.trim(), gid: Number(g.gid) } : { name: g.name.trim() }));
  if (s.timezone.trim() || lines(s.ntpservers).length) {
    c.timezone = {};
    if (s.timezone.trim()) c.timezone.timezone = s.timezone.trim();
    setList(c.timezone, 'ntpservers', s.ntpservers);
  }
  if (lines(s.languages).length || s.keyboard.trim()) {
    c.locale = {};
    setList(c.locale, 'languages', s.languages);
    if (s.keyboard.trim()) c.locale.keyboard = s.keyboard.trim();
  }
  if (s.hostname.trim()) c.hostname = s.hostname.trim();
  if (s.kernelName.trim() || s.kernelAppend.trim()) {
    c.kernel = {};
    if (s.kernelName.trim()) c.kernel.name = s.kernelName.trim();
    if (s.kernelAppend.trim()) c.kernel.append = s.kernelAppend.trim();
  }
  const fwServices: { enabled?: string[]; disabled?: string[] } = {};
  setList(fwServices, 'enabled', s.firewallEnabled);
  setList(fwServices, 'disabled', s.firewallDisabled);
  if (lines(s.firewallPorts).length || Object.keys(fwServices).length) {
    c.firewall = {};
    setList(c.firewall, 'ports', s.firewallPorts);
    if (Object.keys(fwServices).length) c.firewall.services = fwServices;
  }
  const services: { enabled?: string[]; disabled?: string[]; masked?: string[] } = {};
  setList(services, 'enabled', s.servicesEnabled);
  setList(services, 'disabled', s.servicesDisabled);
  setList(services, 'masked', s.servicesMasked);
  const files = (c.files ?? []).filter((f) => f.path !== FIRST_BOOT_SCRIPT && f.path !== FIRST_BOOT_UNIT);
  if (s.firstBoot.trim()) {
    files.push({ path: FIRST_BOOT_SCRIPT, data: s.firstBoot, mode: '0755' },
      { path: FIRST_BOOT_UNIT, data: UNIT_TEXT, mode: '0644' });
    services.enabled = [...(services.enabled ?? []).filter((x) => x !== FIRST_BOOT_SERVICE), FIRST_BOOT_SERVICE];
  }
  if (files.length) c.files = files; else delete c.files;
  if (Object.keys(services).length) c.services = services;
  const bp: BlueprintBody = {
    name: s.name.trim(),
    distribution: s.distribution,
    image_requests: s.imageTypes.map((t) => ({ architecture: s.architecture, image_type: t, upload_request: uploadRequest(s, t) })),
    customizations: c,
  };
  if (s.description.trim()) bp.description = s.description.trim();
  return bp;
}

const WIZARD_KEYS = ['packages', 'payload_repositories', 'filesystem', 'users', 'groups', 'timezone', 'locale',
  'hostname', 'kernel', 'firewall', 'services', 'files'];

function sizeOf(bytes: number): { size: string; unit: Unit } {
  return bytes % GIB === 0 ? { size: String(bytes / GIB), unit: 'GiB' } : { size: String(Math.round(bytes / MIB)), unit: 'MiB' };
}

/** The wizard's state for an existing blueprint (GET /blueprints/{id}). */
export function fromBlueprint(bp: BlueprintResponse): WizardState {
  const s = emptyState();
  const c = bp.customizations ?? {};
  s.name = bp.name ?? '';
  s.description = bp.description ?? '';
  s.distribution = bp.distribution ?? '';
  s.architecture = bp.image_requests?.[0]?.architecture ?? '';
  s.imageTypes = (bp.image_requests ?? []).map((r) => r.image_type);
  for (const r of bp.image_requests ?? []) {
    const type = r.upload_request?.type as Target;
    s.targets[r.image_type] = targetsFor(r.image_type).includes(type) ? type : targetsFor(r.image_type)[0];
    const o = (r.upload_request?.options ?? {}) as Record<string, unknown>;
    if (type === 'aws') s.awsAccounts = joined(o.share_with_accounts as string[]);
    if (type === 'gcp') s.gcpAccounts = joined(o.share_with_accounts as string[]);
    if (type === 'azure') {
      s.azure = { tenant_id: String(o.tenant_id ?? ''), subscription_id: String(o.subscription_id ?? ''), resource_group: String(o.resource_group ?? '') };
    }
  }
  s.packages = [...(c.packages ?? [])];
  s.repositories = joined((c.payload_repositories ?? []).map((r) => r.baseurl ?? '').filter(Boolean));
  if (c.filesystem?.length) {
    s.fsMode = 'manual';
    s.partitions = c.filesystem.map((f) => ({ key: nextKey(), mountpoint: f.mountpoint, ...sizeOf(Number(f.min_size)) }));
  }
  s.users = (c.users ?? []).map((u) => ({
    key: nextKey(), name: u.name, password: '', ssh_key: u.ssh_key ?? '', groups: joined(u.groups), hasPassword: !!u.hasPassword,
  }));
  s.groups = (c.groups ?? []).map((g) => ({ key: nextKey(), name: g.name, gid: g.gid === undefined ? '' : String(g.gid) }));
  s.timezone = c.timezone?.timezone ?? '';
  s.ntpservers = joined(c.timezone?.ntpservers);
  s.languages = joined(c.locale?.languages);
  s.keyboard = c.locale?.keyboard ?? '';
  s.hostname = c.hostname ?? '';
  s.kernelName = c.kernel?.name ?? '';
  s.kernelAppend = c.kernel?.append ?? '';
  s.firewallPorts = joined(c.firewall?.ports);
  s.firewallEnabled = joined(c.firewall?.services?.enabled);
  s.firewallDisabled = joined(c.firewall?.services?.disabled);
  s.servicesEnabled = joined(c.services?.enabled?.filter((x) => x !== FIRST_BOOT_SERVICE));
  s.servicesDisabled = joined(c.services?.disabled);
  s.servicesMasked = joined(c.services?.masked);
  const script = (c.files ?? []).find((f: FileItem) => f.path === FIRST_BOOT_SCRIPT);
  s.firstBoot = script?.data ?? '';
  const other: Customizations = {};
  for (const [k, v] of Object.entries(c)) if (!WIZARD_KEYS.includes(k)) other[k] = v;
  const otherFiles = (c.files ?? []).filter((f) => f.path !== FIRST_BOOT_SCRIPT && f.path !== FIRST_BOOT_UNIT);
  if (otherFiles.length) other.files = otherFiles;
  s.other = other;
  return s;
}

// -- checks ----------------------------------------------------------------------------------------

export type Errors = Record<string, string>;

const HOSTNAME = /^(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$/;
const USER_NAME = /^[A-Za-z0-9_.][A-Za-z0-9_.-]{0,31}$/;
const MOUNTPOINT = /^\/[A-Za-z0-9_./-]*$/;
const PORT = /^([0-9]{1,5}(-[0-9]{1,5})?|[A-Za-z][A-Za-z0-9_-]*):(tcp|udp|sctp|dccp|icmp|any)$/;
const URL_RE = /^(https?|ftp|file):\/\/\S+$/;

export function validate(s: WizardState): Errors {
  const e: Errors = {};
  if (!s.distribution) e.distribution = 'Choose a distribution.';
  if (!s.architecture) e.architecture = 'Choose an architecture.';
  if (s.imageTypes.length === 0) e.imageTypes = 'Choose at least one image type.';
  for (const t of s.imageTypes) {
    if (targetOf(s, t) === 'azure' && !s.azure.resource_group.trim()) e['azure.resource_group'] = 'The resource group is required for Azure.';
  }
  for (const a of lines(s.gcpAccounts)) {
    if (!/^(user|serviceAccount|group|domain):\S+$/.test(a)) { e.gcpAccounts = `"${a}" must start with user:, serviceAccount:, group: or domain:.`; break; }
  }
  for (const a of lines(s.awsAccounts)) {
    if (!/^\d{12}$/.test(a)) { e.awsAccounts = `"${a}" is not a 12-digit AWS account ID.`; break; }
  }
  if (s.fsMode === 'manual') {
    const seen = new Set<string>();
    s.partitions.forEach((p, i) => {
      const m = p.mountpoint.trim();
      if (!MOUNTPOINT.test(m)) e[`partitions[${i}].mountpoint`] = 'A mountpoint is an absolute path such as /home.';
      else if (seen.has(m)) e[`partitions[${i}].mountpoint`] = `${m} is given twice.`;
      seen.add(m);
      const n = Number(p.size);
      if (!p.size.trim() || !Number.isFinite(n) || n <= 0) e[`partitions[${i}].size`] = 'The size must be a positive number.';
    });
    if (!seen.has('/')) e.partitions = 'Manual partitioning needs a / (root) mountpoint.';
  }
  for (const r of lines(s.repositories)) {
    if (!URL_RE.test(r)) { e.repositories = `"${r}" is not a repository URL.`; break; }
  }
  const names = new Set<string>();
  s.users.forEach((u, i) => {
    const n = u.name.trim();
    if (!n) e[`users[${i}].name`] = 'The user name is required.';
    else if (!USER_NAME.test(n)) e[`users[${i}].name`] = 'A user name is up to 32 letters, digits, ".", "_" or "-", not starting with "-".';
    else if (names.has(n)) e[`users[${i}].name`] = `${n} is given twice.`;
    names.add(n);
    if (!u.password && !u.ssh_key.trim() && !u.hasPassword) e[`users[${i}].password`] = 'Give a password or an SSH key.';
    if (u.password && u.password.length < 6) e[`users[${i}].password`] = 'The password must have at least 6 characters.';
    if (u.ssh_key.trim() && !/^(ssh-|ecdsa-|sk-)\S+ \S+/.test(u.ssh_key.trim())) e[`users[${i}].ssh_key`] = 'This is not an SSH public key.';
  });
  s.groups.forEach((g, i) => {
    if (!USER_NAME.test(g.name.trim())) e[`groups[${i}].name`] = 'A group name is up to 32 letters, digits, ".", "_" or "-".';
    if (g.gid.trim() && !/^\d+$/.test(g.gid.trim())) e[`groups[${i}].gid`] = 'The GID is a whole number.';
  });
  if (s.hostname.trim() && !HOSTNAME.test(s.hostname.trim())) e.hostname = 'A hostname has labels of letters, digits and "-", separated by dots.';
  if (s.kernelAppend.length > 2048) e.kernelAppend = 'The kernel arguments are too long.';
  for (const p of lines(s.firewallPorts)) {
    if (!PORT.test(p)) { e.firewallPorts = `"${p}" is not a port such as 8080:tcp or 20-23:udp.`; break; }
  }
  if (!s.name.trim()) e.name = 'The blueprint name is required.';
  else if (s.name.trim().length > 100) e.name = 'The blueprint name has at most 100 characters.';
  if (s.description.length > 250) e.description = 'The description has at most 250 characters.';
  return e;
}

// The step each field is on; the API's field paths ("customizations.users[0].name") map here too.
export const STEPS = [
  ['image-output', 'Image output'], ['targets', 'Target environments'], ['filesystem', 'File system'],
  ['repositories', 'Repositories and packages'], ['users', 'Users and groups'], ['timezone', 'Timezone'],
  ['locale', 'Locale'], ['hostname', 'Hostname'], ['kernel', 'Kernel'], ['firewall', 'Firewall'],
  ['services', 'Services'], ['firstboot', 'First boot script'], ['details', 'Details'], ['review', 'Review'],
] as const;
export type StepId = (typeof STEPS)[number][0];

export function stepOf(key: string): StepId {
  if (/^(distribution|architecture|imageTypes)/.test(key)) return 'image-output';
  if (/^(awsAccounts|gcpAccounts|azure|targets)/.test(key)) return 'targets';
  if (key.startsWith('partitions')) return 'filesystem';
  if (/^(repositories|packages)/.test(key)) return 'repositories';
  if (/^(users|groups)/.test(key)) return 'users';
  if (/^(timezone|ntpservers)/.test(key)) return 'timezone';
  if (/^(languages|keyboard)/.test(key)) return 'locale';
  if (key === 'hostname') return 'hostname';
  if (key.startsWith('kernel')) return 'kernel';
  if (key.startsWith('firewall')) return 'firewall';
  if (key.startsWith('services')) return 'services';
  if (key === 'firstBoot') return 'firstboot';
  if (key === 'name' || key === 'description') return 'details';
  return 'review';
}

/** The wizard field an API field path names. */
export function keyOfApiField(field: string): string {
  // osbuild-composer's own names (blueprint.customizations.user[0].name) as the API's.
  const f = field.replace(/^customizations\./, '').replace(/^user(?=\[|$|\.)/, 'users').replace(/^group(?=\[|$|\.)/, 'groups');
  if (field === 'name' || field === 'description' || field === 'distribution') return field;
  let m = /^image_requests(?:\[\d+\])?\.upload_request(?:\.options\.(\w+))?/.exec(field);
  if (m) return m[1] && ['tenant_id', 'subscription_id', 'resource_group'].includes(m[1]) ? `azure.${m[1]}` : 'targets';
  m = /^image_requests(?:\[\d+\])?\.(architecture)/.exec(field);
  if (m) return 'architecture';
  if (field.startsWith('image_requests')) return 'imageTypes';
  m = /^users\[(\d+)\]\.(name|password|ssh_key|groups)/.exec(f);
  if (m) return `users[${m[1]}].${m[2]}`;
  m = /^groups\[(\d+)\]\.(name|gid)/.exec(f);
  if (m) return `groups[${m[1]}].${m[2]}`;
  m = /^filesystem\[(\d+)\]\.(mountpoint|min_size)/.exec(f);
  if (m) return `partitions[${m[1]}].${m[2] === 'min_size' ? 'size' : 'mountpoint'}`;
  const simple: [RegExp, string][] = [
    [/^users/, 'users'], [/^groups/, 'groups'], [/^filesystem/, 'partitions'], [/^(payload|custom)_repositories/, 'repositories'],
    [/^packages/, 'packages'], [/^timezone\.ntpservers/, 'ntpservers'], [/^timezone/, 'timezone'], [/^locale\.keyboard/, 'keyboard'],
    [/^locale/, 'languages'], [/^hostname/, 'hostname'], [/^kernel\.name/, 'kernelName'], [/^kernel/, 'kernelAppend'],
    [/^firewall\.services\.disabled/, 'firewallDisabled'], [/^firewall\.services/, 'firewallEnabled'], [/^firewall/, 'firewallPorts'],
    [/^services\.disabled/, 'servicesDisabled'], [/^services\.masked/, 'servicesMasked'], [/^services/, 'servicesEnabled'],
    [/^files/, 'firstBoot'],
  ];
  for (const [re, key] of simple) if (re.test(f)) return key;
  return 'review';
}

/** The blueprint in the on-premises (composer) TOML form, for review and export. */
export function tomlDoc(bp: BlueprintBody): Record<string, unknown> {
  const c = bp.customizations;
  const doc: Record<string, unknown> = { name: bp.name, description: bp.description ?? '', version: '1.0.0' };
  if (bp.distribution) doc.distro = bp.distribution;
  if (c.packages?.length) doc.packages = c.packages.map((name) => ({ name, version: '*' }));
  const out: Record<string, unknown> = {};
  if (c.hostname) out.hostname = c.hostname;
  if (c.kernel) out.kernel = c.kernel;
  if (c.users?.length) out.user = c.users.map((u) => ({ ...u, ...(u.password ? { password: '********' } : {}), key: u.ssh_key, ssh_key: undefined }));
  if (c.groups?.length) out.group = c.groups;
  if (c.timezone) out.timezone = c.timezone;
  if (c.locale) out.locale = c.locale;
  if (c.firewall) out.firewall = c.firewall;
  if (c.services) out.services = c.services;
  if (c.filesystem?.length) out.filesystem = c.filesystem.map((f) => ({ mountpoint: f.mountpoint, minsize: f.min_size }));
  if (c.payload_repositories?.length) out.repositories = c.payload_repositories.map((r, i) => ({ id: `repo-${i + 1}`, baseurls: [r.baseurl] }));
  if (c.files?.length) out.files = c.files;
  if (Object.keys(out).length) doc.customizations = out;
  return JSON.parse(JSON.stringify(doc));
}
