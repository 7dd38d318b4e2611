// Client of the image-builder API v1, same origin. The browser never sets X-Rh-Identity:
// in local mode the daemon's web listener supplies the identity, in hosted mode the gateway does.

export const BASE = '/api/image-builder/v1';

export interface HTTPError { id?: string; title: string; detail: string }

/** An API answer that was not 2xx, with the field its detail names (when it names one). */
export class ApiError extends Error {
  readonly status: number;
  readonly errors: HTTPError[];
  readonly field?: string;

  constructor(status: number, errors: HTTPError[]) {
    const first = errors[0];
    super(first ? first.detail || first.title : `HTTP ${status}`);
    this.status = status;
    this.errors = errors;
    this.field = errors.map(fieldOf).find((f) => f !== undefined);
  }

  get unauthorised(): boolean { return this.status === 401 || this.status === 403; }
}

/**
 * The field a validation message names, in dotted form ("customizations.users[0].name").
 * The API words schema errors as `Error at "/customizations/users/0/name": ...`; handlers name
 * fields in prose ("image_requests[0].image_type") or by title ("Invalid blueprint name").
 */
export function fieldOf(e: HTTPError): string | undefined {
  const text = `${e.title ?? ''} ${e.detail ?? ''}`;
  const pointer = /Error at "\/([^"]*)"/.exec(text);
  if (pointer && pointer[1]) {
    return pointer[1].split('/').reduce((acc, part) =>
      /^\d+$/.test(part) ? `${acc}[${part}]` : acc ? `${acc}.${part}` : part, '');
  }
  const dotted = /\b((?:customizations|image_requests)(?:\[\d+\]|\.[A-Za-z_-]+)*)/.exec(text);
  if (dotted) return dotted[1];
  if (/blueprint name/i.test(text)) return 'name';
  if (/name not unique|same name already exists/i.test(text)) return 'name';
  if (/user name/i.test(text)) return 'customizations.users';
  if (/\bhostname\b/i.test(text)) return 'customizations.hostname';
  if (/\bdistribution\b/i.test(text)) return 'distribution';
  return undefined;
}

async function errorOf(res: Response): Promise<ApiError> {
  let errors: HTTPError[] = [];
  try {
    const body = await res.json();
    if (body && Array.isArray(body.errors)) errors = body.errors;
  } catch {
    // Not JSON (a proxy's page, say): the status line is all there is.
  }
  if (errors.length === 0) errors = [{ title: res.statusText || `HTTP ${res.status}`, detail: res.statusText || `HTTP ${res.status}` }];
  return new ApiError(res.status, errors);
}

export async function request<T>(method: string, path: string, body?: unknown, signal?: AbortSignal): Promise<T> {
  const init: RequestInit = { method, signal, headers: { Accept: 'application/json' }, credentials: 'same-origin' };
  if (body !== undefined) {
    init.body = JSON.stringify(body);
    init.headers = { ...init.headers, 'Content-Type': 'application/json' };
  }
  const res = await fetch(BASE + path, init);
  if (!res.ok) throw await errorOf(res);
  if (res.status === 204) return undefined as T;
  const type = res.headers.get('Content-Type') ?? '';
  return (type.includes('json') ? await res.json() : await res.text()) as T;
}

export async function getText(path: string, signal?: AbortSignal): Promise<string> {
  const res = await fetch(BASE + path, { signal, credentials: 'same-origin' });
  if (!res.ok) throw await errorOf(res);
  return res.text();
}

export const get = <T>(path: string, signal?: AbortSignal) => request<T>('GET', path, undefined, signal);

function qs(params: Record<string, string | number | undefined>): string {
  const u = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== '') u.set(k, String(v));
  const s = u.toString();
  return s ? `?${s}` : '';
}

// -- the API's shapes (the parts the UI reads) ---------------------------------------------------

export interface ListResponse<T> { meta: { count: number }; links: { first: string; last: string }; data: T[] }
export interface DistributionItem { name: string; description: string }
export interface ArchitectureItem { arch: string; image_types: string[]; repositories: unknown[] }
export interface Package { name: string; summary: string; version?: string }

export interface UploadRequest { type: string; options: Record<string, unknown> }
export interface ImageRequest { architecture: string; image_type: string; upload_request: UploadRequest; size?: number }

export interface Filesystem { mountpoint: string; min_size: number }
export interface User { name: string; password?: string; ssh_key?: string; groups?: string[]; hasPassword?: boolean }
export interface Group { name: string; gid?: number }
export interface FileItem { path: string; data?: string; mode?: string; user?: string | number; group?: string | number; data_encoding?: string; ensure_parents?: boolean }
export interface Repository { baseurl?: string; rhsm: boolean; check_gpg?: boolean; gpgkey?: string; id?: string }
export interface Customizations {
  packages?: string[];
  payload_repositories?: Repository[];
  filesystem?: Filesystem[];
  users?: User[];
  groups?: Group[];
  hostname?: string;
  timezone?: { timezone?: string; ntpservers?: string[] };
  locale?: { languages?: string[]; keyboard?: string };
  kernel?: { name?: string; append?: string };
  firewall?: { ports?: string[]; services?: { enabled?: string[]; disabled?: string[] } };
  services?: { enabled?: string[]; disabled?: string[]; masked?: string[] };
  files?: FileItem[];
  [key: string]: unknown;
}

export interface BlueprintBody {
  name: string;
  description?: string;
  distribution: string;
  image_requests: ImageRequest[];
  customizations: Customizations;
}
export interface BlueprintItem { id: string; version: number; name: string; description: string; last_modified_at: string }
export interface BlueprintResponse extends BlueprintBody { id: string; lint?: { errors: unknown[]; warnings: unknown[] } }

export interface ComposeRequest {
  distribution?: string;
  image_name?: string;
  image_description?: string;
  image_requests: ImageRequest[];
  customizations?: Customizations;
}
export interface ComposesItem {
  id: string;
  request: ComposeRequest;
  created_at: string;
  image_name?: string;
  blueprint_id?: string | null;
  blueprint_version?: number | null;
}
export interface Progress { done: number; total: number; message?: string; stage?: string }
export interface ImageStatus {
  status: 'success' | 'failure' | 'pending' | 'building' | 'uploading' | 'registering';
  progress?: Progress;
  upload_status?: { status: string; type: string; options: Record<string, unknown> };
  error?: { id: number; reason: string; details?: unknown };
}
export interface ComposeStatus { image_status: ImageStatus; request: ComposeRequest }

export const isDone = (s: ImageStatus | undefined) => s !== undefined && (s.status === 'success' || s.status === 'failure');

// -- calls ----------------------------------------------------------------------------------------

export const api = {
  distributions: (signal?: AbortSignal) => get<DistributionItem[]>('/distributions', signal),
  architectures: (d: string, signal?: AbortSignal) => get<ArchitectureItem[]>(`/architectures/${encodeURIComponent(d)}`, signal),
  packages: (distribution: string, architecture: string, search: string, signal?: AbortSignal) =>
    get<ListResponse<Package>>(`/packages${qs({ distribution, architecture, search, limit: 100 })}`, signal),

  blueprints: (params: { search?: string; limit?: number; offset?: number }, signal?: AbortSignal) =>
    get<ListResponse<BlueprintItem>>(`/blueprints${qs(params)}`, signal),
  blueprint: (id: string, version?: number, signal?: AbortSignal) =>
    get<BlueprintResponse>(`/blueprints/${id}${qs({ version })}`, signal),
  createBlueprint: (bp: BlueprintBody) => request<{ id: string }>('POST', '/blueprints', bp),
  updateBlueprint: (id: string, bp: BlueprintBody) => request<{ id: string }>('PUT', `/blueprints/${id}`, bp),
  deleteBlueprint: (id: string) => request<void>('DELETE', `/blueprints/${id}`),
  exportBlueprint: (id: string) => get<Record<string, unknown>>(`/blueprints/${id}/export`),
  composeBlueprint: (id: string, imageTypes?: string[]) =>
    request<{ id: string }[]>('POST', `/blueprints/${id}/compose`, imageTypes ? { image_types: imageTypes } : {}),
  blueprintComposes: (id: string, params: { limit?: number; offset?: number; blueprint_version?: number }, signal?: AbortSignal) =>
    get<ListResponse<ComposesItem>>(`/blueprints/${id}/composes${qs(params)}`, signal),

  composes: (params: { limit: number; offset: number }, signal?: AbortSignal) =>
    get<ListResponse<ComposesItem>>(`/composes${qs(params)}`, signal),
  compose: (id: string, signal?: AbortSignal) => get<ComposeStatus>(`/composes/${id}`, signal),
  deleteCompose: (id: string) => request<void>('DELETE', `/composes/${id}`),
  logs: (id: string, signal?: AbortSignal) => getText(`/composes/${id}/logs`, signal),
};

export const downloadUrl = (id: string) => `${BASE}/composes/${id}/download`;
export const logsUrl = (id: string) => `${BASE}/composes/${id}/logs`;
export const eventsUrl = (id: string) => `${BASE}/composes/${id}/events`;

/** Save a JSON document as a file the browser downloads. */
export function saveJson(filename: string, doc: unknown): void {
  const blob = new Blob([JSON.stringify(doc, null, 2) + '\n'], { type: 'application/json' });
  const url = URL.createObjectURL(blob);
  const a = document.createElement('a');
  a.href = url;
  a.download = filename;
  document.body.appendChild(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 1000);
}
