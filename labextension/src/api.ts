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

/** How a run's kernel started (`kernel_start` of a run). */
export interface KernelStart {
  /** It started with the notebook's modules (`modules`) imported. */
  warm: boolean;
  modules: string[];
  /** Modules it did not start with, and why. */
  left_out: Record<string, string>;
  /** Why it started cold; null when warm, and for a gateway's or Dask worker's kernel. */
  cold: string | null;
  /** Seconds the run waited for its kernel. */
  waited: number | null;
  /** BLAS/OpenMP threads a sweep's run had, sharing the cores with the others (0 or absent: the libraries' defaults). */
  threads?: number;
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
  /** Every parameter's effective value: the ones set for the run, else the notebook's defaults. */
  parameters: Record<string, unknown>;
  /** The parameters the run set (the others had their default). */
  overridden: string[];
  /** The parameters whose value is a default expression's source text (`np.arange(3)`). */
  expressions: string[];
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
  /** Who asked for it: the Jupyter user (the panel, REST), else the OS user (CLI, magic); null for older runs. */
  user?: string | null;
  sweep_id: string | null;
  parent_id: string | null;
  source_hash: string;
  /** While running: the cell in progress, 1-based, of `cells`. */
  progress?: { cell: number; cells: number } | null;
  /** How its kernel started; null when it had none (or ran before this was recorded). */
  kernel_start?: KernelStart | null;
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
  /** The server's filter expression: `C>0.5 status=failed oom`. */
  filter?: string;
  /** `queued_at` (default), `version`, `duration`, `status`, `metrics.<name>`, `params.<name>`. */
  sort?: string;
  order?: 'asc' | 'desc';
  /** Also answer the parameter and metric names of every run listed (`keys`). */
  keys?: boolean;
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

/** List runs, newest first unless `query.sort` says otherwise. */
export function listRuns(
  query: RunQuery = {},
  settings?: ServerConnection.ISettings
): Promise<RunPage & { keys?: { parameters: string[]; metrics: string[] } }> {
  const params = new URLSearchParams();
  for (const [name, value] of Object.entries(query)) {
    if (value === true) {
      params.set(name, '1');
    } else if (value !== undefined && value !== '' && value !== false) {
      params.set(name, String(value));
    }
  }
  const search = params.toString();
  return requestJSON(search ? `runs?${search}` : 'runs', settings);
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

/** A file a run wrote, kept as a versioned artifact. */
export interface RunArtifact {
  /** Relative to the project root, '/'-separated. */
  path: string;
  size: number;
  sha256: string;
  media_type: string | null;
}

/** `GET /mlx/runs/<id>/artifacts`: a run's artifacts, its notes and how its folder was made. */
export interface RunArtifacts {
  ref: string;
  run_id: string;
  /** `overlay` or `copy`: its own folder; `in-place`: the project folder; null: before run folders. */
  run_folder: 'overlay' | 'copy' | 'in-place' | null;
  artifacts: RunArtifact[];
  notes: string[];
}

/** `GET /mlx/runs/<id>/previews/<path>`: what the panel shows of one artifact. */
export type ArtifactPreview = { path: string; size: number; media_type: string | null } & (
  | { kind: 'table'; columns: string[]; rows: unknown[][]; total_rows: number }
  | { kind: 'json'; value: unknown }
  | { kind: 'text'; text: string; truncated: boolean }
  | { kind: 'image' }
  | { kind: 'binary'; reason: string }
);

/** The artifacts a run wrote. */
export function getRunArtifacts(
  runId: string,
  settings?: ServerConnection.ISettings
): Promise<RunArtifacts> {
  return requestJSON<RunArtifacts>(`runs/${encodeURIComponent(runId)}/artifacts`, settings);
}

/** A preview of one artifact: the first rows of a table, a JSON value, the start of a text. */
export function getArtifactPreview(
  runId: string,
  path: string,
  settings?: ServerConnection.ISettings
): Promise<ArtifactPreview> {
  return requestJSON<ArtifactPreview>(
    `runs/${encodeURIComponent(runId)}/previews/${URLExt.encodeParts(path)}`,
    settings
  );
}

/**
 * One artifact's bytes as a Blob (for an image preview or a download): fetched with the page's
 * credentials, never navigated to. Errors carry the server's message.
 */
export async function getArtifactBlob(
  runId: string,
  path: string,
  settings: ServerConnection.ISettings = ServerConnection.makeSettings()
): Promise<Blob> {
  const url = URLExt.join(
    settings.baseUrl,
    'mlx',
    'runs',
    encodeURIComponent(runId),
    'artifacts',
    URLExt.encodeParts(path)
  );
  const response = await send(url, settings);
  if (!response.ok) {
    throw failure(response, parseJSON(await response.text()));
  }
  return response.blob();
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
  const response = await send(url, settings, {
    signal,
    headers: { Accept: 'text/event-stream' },
    cache: 'no-store'
  });
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
  const response = await send(url, settings, init);
  const text = await response.text();
  const body = parseJSON(text);
  if (response.status === 404 && body === null) {
    // Jupyter's own 404 page, not our JSON error: nothing serves /mlx here
    throw new MLXApiError(
      'The jupyter_mlx server extension is not running on this Jupyter server. ' +
        'Install jupyter_mlx in the environment that runs `jupyter lab`, ' +
        'check `jupyter server extension list`, and restart the server.',
      'extension_missing',
      404
    );
  }
  if (!response.ok) {
    throw failure(response, body);
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

/** Make a request with the page's credentials; an unreachable server is an `MLXApiError`. */
async function send(
  url: string,
  settings: ServerConnection.ISettings,
  init: RequestInit = {}
): Promise<Response> {
  try {
    return await ServerConnection.makeRequest(url, init, settings);
  } catch (reason) {
    throw new MLXApiError(`Cannot reach the Jupyter server: ${describe(reason)}`, 'network_error', 0);
  }
}

/** The error of a failed response: the server's code and message from its JSON body, if any. */
function failure(response: Response, body: unknown): MLXApiError {
  const error = body as Partial<{ error: string; message: string }> | null;
  return new MLXApiError(
    error?.message || `${response.status} ${response.statusText}`.trim(),
    error?.error || 'http_error',
    response.status
  );
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

/** Runs as rows, parameters and metrics as columns (`GET /mlx/table`). */
export interface RunsTableData {
  parameters: string[];
  metrics: string[];
  /** Parameters whose value differs between the runs. */
  varying: string[];
  rows: {
    ref: string;
    version: number;
    status: RunStatus;
    started_at: string | null;
    duration: number | null;
    sweep_id: string | null;
    parameters: Record<string, unknown>;
    metrics: Record<string, number | null>;
  }[];
}

/** The table of exactly these runs (refs or ids), in this order. */
export function getRunsTable(
  runs: string[],
  settings?: ServerConnection.ISettings
): Promise<RunsTableData> {
  return requestJSON<RunsTableData>(`table?${runsQuery(runs).toString()}`, settings);
}

/**
 * A chart of these runs as a PNG blob: `chart` plots `metric` against the parameter `by`,
 * `series` the metric's logged steps, one line per run. Errors carry the server's message.
 */
export async function getRunsChart(
  kind: 'chart' | 'series',
  runs: string[],
  options: { metric: string; by?: string; theme: 'light' | 'dark' },
  settings: ServerConnection.ISettings = ServerConnection.makeSettings()
): Promise<Blob> {
  const query = runsQuery(runs);
  query.set('metric', options.metric);
  query.set('theme', options.theme);
  if (options.by) {
    query.set('by', options.by);
  }
  const url = `${URLExt.join(settings.baseUrl, 'mlx', 'table', kind)}?${query.toString()}`;
  const response = await send(url, settings);
  if (!response.ok) {
    throw failure(response, parseJSON(await response.text()));
  }
  return response.blob();
}

function runsQuery(runs: string[]): URLSearchParams {
  const query = new URLSearchParams();
  runs.forEach(run => query.append('runs', run));
  return query;
}

/** A notebook's approved baseline. */
export interface BaselineRecord {
  notebook: string;
  run_id: string;
  version: number;
  ref: string;
  approved_at: string;
  note: string;
}

/** The notebook's baseline, or null when none is approved. */
export async function getBaseline(
  notebook: string,
  settings?: ServerConnection.ISettings
): Promise<BaselineRecord | null> {
  try {
    return await requestJSON<BaselineRecord>(
      `baselines?${new URLSearchParams({ notebook }).toString()}`,
      settings
    );
  } catch (reason) {
    if (reason instanceof MLXApiError && reason.status === 404 && reason.error === 'not_found') {
      return null;
    }
    throw reason;
  }
}

/** Approve a finished run as its notebook's baseline. */
export function approveBaseline(
  run: string,
  note = '',
  settings?: ServerConnection.ISettings
): Promise<BaselineRecord> {
  return requestJSON<BaselineRecord>('baselines', settings, {
    method: 'POST',
    body: JSON.stringify({ run, note })
  });
}

/** Compare a run with its notebook's baseline: `summary.verdict` and `summary.unexpected`. */
export function checkRun(
  run: string,
  options: CompareOptions = {},
  settings?: ServerConnection.ISettings
): Promise<Comparison> {
  const query = new URLSearchParams(compareQuery('', '', options));
  query.delete('a');
  query.delete('b');
  query.set('run', run);
  return requestJSON<Comparison>(`check?${query.toString()}`, settings);
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

// Endpoints

/** One version deployed under an endpoint's name. */
export interface EndpointDeployment {
  /** Project-relative path of the notebook. */
  notebook: string;
  /** `notebook@vN`, or null when a notebook file was served as it was. */
  ref: string | null;
  run_id: string | null;
  /** `function`: `POST /<function>`; `cells`: the notebook's `# GET /path` annotated cells. */
  mode: 'function' | 'cells';
  function: string | null;
  /** Seconds since the epoch. */
  deployed_at: number;
  /** Asked to run the notebook's code at start rather than load the run's captured state. */
  reexecute?: boolean;
  /** `state`: the objects the run captured, loaded at start; `reexecution`: the code runs at start. */
  serves?: 'state' | 'reexecution';
  /** Why it re-executes (the run captured no state, the function could not be captured, ...). */
  reexecute_reason?: string | null;
  state_hash?: string | null;
  /** Where its function comes from, in one line (`serves the run's captured state (...)`). */
  source?: string;
}

/** An endpoint's live state, as its supervisor reports it. */
export interface EndpointStatus {
  /** `serving`, `restarting`, `failed`, `stopped`, `down` (should run, does not) or `unknown`. */
  state: string;
  error: string | null;
  /** While serving: request counts and latencies of all workers. */
  health?: {
    requests?: number;
    errors?: number;
    latency_ms?: { mean: number | null; p50: number | null; p99: number | null };
  } | null;
}

/** A managed endpoint, as `GET /mlx/endpoints` lists it. */
export interface EndpointRecord {
  name: string;
  host: string;
  port: number;
  /** `http://host:port`: on the Jupyter server's machine. */
  url: string;
  /** Clients send `Authorization: Bearer <token>`. */
  auth: boolean;
  workers: number;
  timeout: number;
  max_body: number;
  /** Every version deployed under this name, oldest first. */
  history: EndpointDeployment[];
  /** The index in `history` of the version that serves. */
  current: number;
  desired: 'running' | 'stopped';
  serving: EndpointDeployment;
  status: EndpointStatus | null;
  /** With `getEndpoint(name, lines)`: the last log lines. */
  logs?: string;
}

/** The answer to a deployment: the record and, for a new endpoint, its token (shown once). */
export interface DeployedEndpoint extends EndpointRecord {
  token: string | null;
}

/** `POST /mlx/endpoints`: deploy `target` (`train.ipynb@v5`) under `name`, or redeploy it. */
export interface DeployRequest {
  target: string;
  function?: string;
  cells?: boolean;
  name?: string;
  workers?: number;
  /** Run the notebook's code at start instead of loading the run's captured state. */
  reexecute?: boolean;
}

/** One request to send to an endpoint through the server. */
export interface TryRequest {
  method: string;
  path: string;
  /** A string is sent as text, anything else as JSON; undefined sends no body. */
  body?: unknown;
  token?: string;
}

/** The endpoint's answer to a `TryRequest`. */
export interface TryAnswer {
  status: number;
  headers: Record<string, string>;
  body: string;
  truncated?: boolean;
}

/** List the managed endpoints with their status. */
export async function listEndpoints(
  settings?: ServerConnection.ISettings
): Promise<EndpointRecord[]> {
  const body = await requestJSON<{ endpoints: EndpointRecord[] }>('endpoints', settings);
  return body.endpoints;
}

/** One endpoint; with `logLines`, its last log lines in `logs`. */
export function getEndpoint(
  name: string,
  logLines = 0,
  settings?: ServerConnection.ISettings
): Promise<EndpointRecord> {
  const query = logLines > 0 ? `?logs=${logLines}` : '';
  return requestJSON<EndpointRecord>(
    `endpoints/${encodeURIComponent(name)}${query}`,
    settings
  );
}

/** Deploy a run version as an endpoint, or redeploy an existing name (zero downtime). */
export function deployEndpoint(
  body: DeployRequest,
  settings?: ServerConnection.ISettings
): Promise<DeployedEndpoint> {
  return requestJSON<DeployedEndpoint>('endpoints', settings, {
    method: 'POST',
    body: JSON.stringify(body)
  });
}

/** Serve the version deployed before the current one again. */
export function rollbackEndpoint(
  name: string,
  settings?: ServerConnection.ISettings
): Promise<EndpointRecord> {
  return requestJSON<EndpointRecord>(
    `endpoints/${encodeURIComponent(name)}/rollback`,
    settings,
    { method: 'POST', body: '{}' }
  );
}

/** Stop an endpoint (its history stays; deploying the name again restarts it). */
export function stopEndpoint(
  name: string,
  settings?: ServerConnection.ISettings
): Promise<EndpointRecord> {
  return requestJSON<EndpointRecord>(`endpoints/${encodeURIComponent(name)}`, settings, {
    method: 'DELETE'
  });
}

/** Send one request to an endpoint from the server (which can reach it) and get its answer. */
export function tryEndpoint(
  name: string,
  request: TryRequest,
  settings?: ServerConnection.ISettings
): Promise<TryAnswer> {
  return requestJSON<TryAnswer>(`endpoints/${encodeURIComponent(name)}/try`, settings, {
    method: 'POST',
    body: JSON.stringify(request)
  });
}

/**
 * A notebook file as saved, through Jupyter's contents API (`path` relative to the server's
 * root): the code an endpoint serves when it was deployed from the file rather than a run.
 */
export async function getNotebookFile(
  path: string,
  settings: ServerConnection.ISettings = ServerConnection.makeSettings()
): Promise<NotebookContent> {
  const url = `${URLExt.join(settings.baseUrl, 'api/contents', URLExt.encodeParts(path))}?type=notebook&content=1`;
  const response = await send(url, settings);
  const body = parseJSON(await response.text()) as { content?: NotebookContent } | null;
  if (!response.ok || !body?.content) {
    throw failure(response, body);
  }
  return body.content;
}
