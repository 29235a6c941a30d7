/**
 * The REST client of jupyter_mlx's server extension: the only module that talks HTTP.
 */
import { URLExt } from '@jupyterlab/coreutils';
import { ServerConnection } from '@jupyterlab/services';

import type { Comparison, NotebookContent } from './comparison';
import type { LaunchForm } from './launchModel';

/** Lifecycle states of a run, as the server reports them. */
export type RunStatus =
  | 'queued'
  | 'running'
  | 'succeeded'
  | 'failed'
  | 'cancelled'
  | 'interrupted';

/** Where and how a failed run failed. */
export interface RunErrorInfo {
  cell_index: number | null;
  ename: string;
  evalue: string;
  traceback: string[];
}

/** One recorded run, as `GET /mlx/runs` lists it. */
export interface RunRecord {
  id: string;
  /** Project-relative path, e.g. `examples/train.ipynb`. */
  notebook: string;
  version: number;
  /** `notebook@vN`. */
  ref: string;
  status: RunStatus;
  parameters: Record<string, unknown>;
  metrics: Record<string, number>;
  tags: string[];
  /** ISO 8601 timestamps. */
  queued_at: string | null;
  started_at: string | null;
  finished_at: string | null;
  /** Seconds. */
  duration: number | null;
  error: RunErrorInfo | null;
  git: { commit: string; dirty: boolean | null } | null;
  backend: string;
  host: string;
  sweep_id: string | null;
  parent_id: string | null;
  source_hash: string;
  /** While running: the cell in progress, 1-based, of `cells`. */
  progress?: { cell: number; cells: number } | null;
}

/** A page of runs, newest first. */
export interface RunPage {
  runs: RunRecord[];
  total: number;
  limit: number;
  offset: number;
}

export interface RunQuery {
  notebook?: string;
  status?: RunStatus;
  limit?: number;
  offset?: number;
}

/** A notebook that has runs. */
export interface NotebookSummary {
  notebook: string;
  runs: number;
  last_version: number;
}

/** A failed request: the server's error code and message, or a network failure. */
export class MLXApiError extends Error {
  constructor(
    message: string,
    /** The server's stable error code (`not_found`, ...), or `network_error`. */
    readonly error: string,
    /** HTTP status; 0 when the server could not be reached. */
    readonly status: number
  ) {
    super(message);
    this.name = 'MLXApiError';
  }
}

/** List runs, newest first. */
export function listRuns(
  query: RunQuery = {},
  settings?: ServerConnection.ISettings
): Promise<RunPage> {
  const params = new URLSearchParams();
  for (const [name, value] of Object.entries(query)) {
    if (value !== undefined && value !== '') {
      params.set(name, String(value));
    }
  }
  const search = params.toString();
  return requestJSON<RunPage>(search ? `runs?${search}` : 'runs', settings);
}

/** List the notebooks that have runs. */
export async function listNotebooks(
  settings?: ServerConnection.ISettings
): Promise<NotebookSummary[]> {
  const body = await requestJSON<{ notebooks: NotebookSummary[] }>(
    'notebooks',
    settings
  );
  return body.notebooks;
}

/** Compare options a caller may override (the project's and notebook's apply otherwise). */
export interface CompareOptions {
  rtol?: number;
  atol?: number;
  /** Fraction of pixels an image may change and still count as within tolerance. */
  imageTolerance?: number;
  /** Regular expressions of text to ignore in outputs. */
  ignore?: string[];
}

/** Compare run (or notebook) `a` with `b`, each a ref such as `train.ipynb@v3`. */
export function getComparison(
  a: string,
  b: string,
  options: CompareOptions = {},
  settings?: ServerConnection.ISettings
): Promise<Comparison> {
  return requestJSON<Comparison>(`compare?${compareQuery(a, b, options)}`, settings);
}

/** The address of the self-contained HTML report comparing `a` with `b` (for a new tab). */
export function comparisonReportUrl(
  a: string,
  b: string,
  options: CompareOptions = {},
  settings: ServerConnection.ISettings = ServerConnection.makeSettings()
): string {
  const query = compareQuery(a, b, options);
  return `${URLExt.join(settings.baseUrl, 'mlx', 'compare')}?${query}&format=html`;
}

/** The executed notebook of a run, with its outputs. */
export function getExecutedNotebook(
  runId: string,
  settings?: ServerConnection.ISettings
): Promise<NotebookContent> {
  return requestJSON<NotebookContent>(
    `runs/${encodeURIComponent(runId)}/notebook`,
    settings
  );
}

function compareQuery(a: string, b: string, options: CompareOptions): string {
  const params = new URLSearchParams({ a, b });
  const numbers: [string, number | undefined][] = [
    ['rtol', options.rtol],
    ['atol', options.atol],
    ['image_tolerance', options.imageTolerance]
  ];
  for (const [name, value] of numbers) {
    if (value !== undefined) {
      params.set(name, String(value));
    }
  }
  for (const pattern of options.ignore ?? []) {
    params.append('ignore', pattern);
  }
  return params.toString();
}

/** Cancel a queued or running run; answers the runs it cancelled. */
export async function cancelRun(
  runId: string,
  settings?: ServerConnection.ISettings
): Promise<RunRecord[]> {
  const body = await requestJSON<{ runs: RunRecord[] }>(
    `runs/${encodeURIComponent(runId)}/cancel`,
    settings,
    { method: 'POST', body: '{}' }
  );
  return body.runs;
}

/**
 * Open `GET /mlx/events` and pass each decoded chunk of its `text/event-stream` body to
 * `onChunk`, until the server closes it (resolves) or it fails or `signal` aborts (rejects).
 * Goes through `ServerConnection.makeRequest`, so it carries the page's token or cookie.
 */
export async function streamEvents(
  onChunk: (text: string) => void,
  signal: AbortSignal,
  settings: ServerConnection.ISettings = ServerConnection.makeSettings()
): Promise<void> {
  const url = URLExt.join(settings.baseUrl, 'mlx', 'events');
  let response: Response;
  try {
    response = await ServerConnection.makeRequest(
      url,
      { signal, headers: { Accept: 'text/event-stream' }, cache: 'no-store' },
      settings
    );
  } catch (reason) {
    throw new MLXApiError(
      `Cannot reach the Jupyter server: ${describe(reason)}`,
      'network_error',
      0
    );
  }
  if (!response.ok || !response.body) {
    throw new MLXApiError(
      `${response.status} ${response.statusText}`.trim(),
      'http_error',
      response.status
    );
  }
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  for (;;) {
    const { done, value } = await reader.read();
    if (done) {
      return;
    }
    onChunk(decoder.decode(value, { stream: true }));
  }
}

/** Request `<baseUrl>/mlx/<endPoint>` (GET unless `init` says otherwise) and parse the JSON body. */
async function requestJSON<T>(
  endPoint: string,
  settings: ServerConnection.ISettings = ServerConnection.makeSettings(),
  init: RequestInit = {}
): Promise<T> {
  const url = URLExt.join(settings.baseUrl, 'mlx', endPoint);
  let response: Response;
  try {
    response = await ServerConnection.makeRequest(url, init, settings);
  } catch (reason) {
    throw new MLXApiError(
      `Cannot reach the Jupyter server: ${describe(reason)}`,
      'network_error',
      0
    );
  }
  const text = await response.text();
  const body = parseJSON(text);
  if (!response.ok) {
    const error = body as Partial<{ error: string; message: string }> | null;
    throw new MLXApiError(
      error?.message || `${response.status} ${response.statusText}`.trim(),
      error?.error || 'http_error',
      response.status
    );
  }
  if (body === null) {
    throw new MLXApiError(
      `The server sent an invalid response to ${endPoint}`,
      'invalid_response',
      response.status
    );
  }
  return body as T;
}

function parseJSON(text: string): unknown {
  try {
    return text ? JSON.parse(text) : null;
  } catch {
    return null;
  }
}

function describe(reason: unknown): string {
  return reason instanceof Error ? reason.message : String(reason);
}

/** The launch form of a notebook: its parameters and the backends this server can use. */
export function getLaunchForm(
  notebook: string,
  settings?: ServerConnection.ISettings
): Promise<LaunchForm> {
  return requestJSON<LaunchForm>(
    `parameters?${new URLSearchParams({ notebook }).toString()}`,
    settings
  );
}

/** Start one run (`POST /mlx/runs`). */
export function startRun(
  body: { notebook: string; parameters: Record<string, unknown>; backend: string },
  settings?: ServerConnection.ISettings
): Promise<RunRecord> {
  return requestJSON<RunRecord>('runs', settings, {
    method: 'POST',
    body: JSON.stringify(body)
  });
}

/** Queue a sweep over a grid of values (`POST /mlx/sweeps`). */
export function startSweep(
  body: { notebook: string; grid: Record<string, unknown[]>; backend: string },
  settings?: ServerConnection.ISettings
): Promise<{ sweep: unknown; runs: RunRecord[] }> {
  return requestJSON<{ sweep: unknown; runs: RunRecord[] }>('sweeps', settings, {
    method: 'POST',
    body: JSON.stringify(body)
  });
}
