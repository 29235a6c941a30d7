/**
 * The "Endpoints" section, the pure part: labels of an endpoint's state and version, what
 * Redeploy and Rollback would serve, the try-it form's request and how its answer reads, and
 * the tokens issued in this session. No DOM, no HTTP.
 */
import type {
  DeployRequest,
  EndpointDeployment,
  EndpointRecord,
  RunRecord,
  TryAnswer
} from './api';
import { CellRoute, cellRoute, exampleBody } from './deployModel';

/** The endpoint's state: the supervisor's, or what its record says when it has none. */
export function endpointState(record: EndpointRecord): string {
  return record.status?.state ?? (record.desired === 'stopped' ? 'stopped' : 'unknown');
}

/** Whether the endpoint answers requests now. */
export function isServing(record: EndpointRecord): boolean {
  return endpointState(record) === 'serving';
}

/** A deployed version: `train.ipynb@v5`, or the notebook file when no run was served. */
export function versionLabel(deployment: EndpointDeployment): string {
  return deployment.ref ?? `${deployment.notebook} (file)`;
}

/** What a version serves: `predict()` or `annotated cells`. */
export function servesLabel(deployment: EndpointDeployment): string {
  return deployment.mode === 'function' && deployment.function
    ? `${deployment.function}()`
    : 'annotated cells';
}

/** Where a version's function comes from, short (the whole reason is its tooltip). */
export function sourceLabel(deployment: EndpointDeployment): string {
  return deployment.serves === 'state' ? 'from the run’s captured state' : 're-executes the notebook at start';
}

/** The version Rollback would serve again, or null when there is none before the current one. */
export function rollbackTarget(record: EndpointRecord): EndpointDeployment | null {
  return record.current >= 1 ? record.history[record.current - 1] ?? null : null;
}

/** What Redeploy would serve: the newest succeeded run of the served notebook, or the saved
 * file again when that is what serves. */
export interface RedeployPlan {
  /** `notebook@vN`, or the notebook's path for its saved file. */
  ref: string;
  /** The newest run is the one already served. */
  current: boolean;
  file?: boolean;
}

/** What Redeploy would serve, from the succeeded `runs`; null when there is nothing to serve. */
export function redeployPlan(record: EndpointRecord, runs: RunRecord[]): RedeployPlan | null {
  if (record.serving.ref === null) {
    return { ref: record.serving.notebook, current: false, file: true };
  }
  const candidates = runs
    .filter(run => run.notebook === record.serving.notebook && run.status === 'succeeded')
    .sort((a, b) => b.version - a.version);
  const newest = candidates[0];
  return newest ? { ref: newest.ref, current: newest.ref === record.serving.ref } : null;
}

/** The label of the Redeploy button for `plan`. */
export function redeployLabel(plan: RedeployPlan | null): string {
  if (!plan) {
    return 'Redeploy';
  }
  if (plan.file) {
    return 'Redeploy saved file';
  }
  return plan.current ? `Redeploy ${shortRef(plan.ref)} (current)` : `Redeploy ${shortRef(plan.ref)}`;
}

/** `v5` of `train.ipynb@v5`; `file` for a notebook file served as it was. */
export function shortRef(ref: string): string {
  const at = ref.lastIndexOf('@');
  return at >= 0 ? ref.slice(at + 1) : 'file';
}

/** `POST /mlx/endpoints` serving `ref` under the endpoint's name, the same way as now. */
export function redeployRequest(record: EndpointRecord, ref: string): DeployRequest {
  const serving = record.serving;
  if (serving.mode !== 'function' || !serving.function) {
    return { target: ref, name: record.name, cells: true };
  }
  const body: DeployRequest = { target: ref, name: record.name, function: serving.function };
  if (serving.reexecute) {
    body.reexecute = true; // as it was deployed: re-executed on purpose
  }
  return body;
}

/** `12 requests · 1 error · p50 5 ms`, or '' before any request. */
export function healthLabel(record: EndpointRecord): string {
  const health = record.status?.health;
  if (!health || !health.requests) {
    return '';
  }
  const parts = [plural(health.requests, 'request')];
  if (health.errors) {
    parts.push(plural(health.errors, 'error'));
  }
  const p50 = health.latency_ms?.p50;
  if (p50 !== null && p50 !== undefined) {
    parts.push(`p50 ${p50} ms`);
  }
  return parts.join(' · ');
}

function plural(count: number, noun: string): string {
  return `${count.toLocaleString('en-US')} ${noun}${count === 1 ? '' : 's'}`;
}

/** The try-it form of one endpoint. */
export interface TryForm {
  method: string;
  path: string;
  /** The body as typed: JSON, or any text. */
  body: string;
  token: string;
}

/** The routes a served notebook answers, from its code cells' annotations, each once. */
export function notebookRoutes(cells: string[]): CellRoute[] {
  const routes: CellRoute[] = [];
  for (const source of cells) {
    const route = cellRoute(source);
    if (route && !/^#\s+ResponseInfo/.test(source) &&
        !routes.some(r => r.method === route.method && r.path === route.path)) {
      routes.push(route);
    }
  }
  return routes;
}

/** The try-it form an endpoint starts with, from the served notebook's code cells when known. */
export function initialTryForm(record: EndpointRecord, cells: string[] | null, token = ''): TryForm {
  const serving = record.serving;
  if (serving.mode === 'function' && serving.function) {
    const source = cells?.find(cell => exampleBodyFound(cell, serving.function!));
    const body = source ? exampleBody(source, serving.function) : {};
    return { method: 'POST', path: `/${serving.function}`, body: JSON.stringify(body), token };
  }
  const route = notebookRoutes(cells ?? [])[0];
  const method = route?.method ?? 'GET';
  return { method, path: route?.path ?? '/', body: method === 'GET' ? '' : '{}', token };
}

function exampleBodyFound(source: string, fn: string): boolean {
  return new RegExp(`^(?:async[ \\t]+)?def[ \\t]+${fn}[ \\t]*\\(`, 'm').test(source);
}

/** The body to send: none for '', the parsed value for JSON, else the text itself. */
export function parseTryBody(text: string): unknown {
  if (!text.trim()) {
    return undefined;
  }
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

/** How an endpoint's answer reads: `200 OK`, and its body (JSON on one line when short,
 * indented otherwise). */
export function describeAnswer(answer: TryAnswer): { status: string; ok: boolean; body: string } {
  const reason = REASONS[answer.status] ?? '';
  let body = answer.body;
  try {
    const value = JSON.parse(answer.body);
    const compact = JSON.stringify(value);
    body = compact.length <= 60 ? compact : JSON.stringify(value, null, 2);
  } catch {
    // not JSON: as it came
  }
  if (answer.truncated) {
    body += '\n… (cut at 1 MiB)';
  }
  return {
    status: `${answer.status}${reason ? ` ${reason}` : ''}`,
    ok: answer.status >= 200 && answer.status < 300,
    body
  };
}

const REASONS: Record<number, string> = {
  200: 'OK',
  201: 'Created',
  204: 'No Content',
  400: 'Bad Request',
  401: 'Unauthorized',
  403: 'Forbidden',
  404: 'Not Found',
  405: 'Method Not Allowed',
  413: 'Payload Too Large',
  500: 'Internal Server Error',
  502: 'Bad Gateway',
  503: 'Service Unavailable',
  504: 'Gateway Timeout'
};

/** Tokens issued in this session, by endpoint name: the server shows a token once and keeps
 * only its hash. */
export class EndpointTokens {
  get(name: string): string {
    return this._tokens.get(name) ?? '';
  }

  set(name: string, token: string | null | undefined): void {
    if (token) {
      this._tokens.set(name, token);
    }
  }

  private _tokens = new Map<string, string>();
}
