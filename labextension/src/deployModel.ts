/**
 * "Deploy as Endpoint", the pure part: what a code cell can be served as (its top-level
 * functions, or its Kernel Gateway route annotation), the default endpoint name, the deploy
 * request, an example request body from a function's signature, and the curl command that
 * calls an endpoint. No DOM, no HTTP.
 */
import type { DeployRequest, EndpointRecord } from './api';

/** An annotated cell's route: `# GET /items/:id` as the cell's first characters. */
export interface CellRoute {
  method: string;
  path: string;
}

/** What a cell can be deployed as. */
export interface CellTargets {
  /** Top-level `def name(` and `async def name(`, in order. */
  functions: string[];
  /** The cell's route annotation, if it is a Kernel Gateway route (or ResponseInfo) cell. */
  route: CellRoute | null;
}

const DEF = /^(?:async[ \t]+)?def[ \t]+([A-Za-z_]\w*)[ \t]*\(/gm;
// Kernel Gateway's notebook-http indicators (serve/annotations.py), anchored at the cell start
const API_INDICATOR = /^#\s+(GET|PUT|POST|DELETE)\s+(\/.*)+/;
const RESPONSE_INDICATOR = /^#\s+ResponseInfo\s+(GET|PUT|POST|DELETE)\s+(\/.*)+/;

/** The endpoint names the server accepts (`jupyter_mlx.serve.manager.NAME`). */
export const ENDPOINT_NAME = /^[a-z0-9][a-z0-9_-]{0,62}$/;

/** The top-level functions a cell defines, in order, each once. */
export function cellFunctions(source: string): string[] {
  const names: string[] = [];
  for (const match of source.matchAll(DEF)) {
    if (!names.includes(match[1])) {
      names.push(match[1]);
    }
  }
  return names;
}

/** The cell's route annotation, as Kernel Gateway reads it, or null. */
export function cellRoute(source: string): CellRoute | null {
  const match = API_INDICATOR.exec(source) ?? RESPONSE_INDICATOR.exec(source);
  return match ? { method: match[1], path: match[2].trim() } : null;
}

export function cellTargets(source: string): CellTargets {
  return { functions: cellFunctions(source), route: cellRoute(source) };
}

/** `<notebook stem>-<function>`, lowercase, one `-` for any run of other characters (as the
 * server's default name, tidier). */
export function defaultEndpointName(notebook: string, fn: string | null): string {
  const file = notebook.split('/').pop() ?? notebook;
  const stem = file.replace(/\.ipynb$/i, '').toLowerCase();
  const raw = fn ? `${stem}-${fn.toLowerCase()}` : stem;
  const name = raw
    .replace(/[^a-z0-9_-]+/g, '-')
    .replace(/-{2,}/g, '-')
    .replace(/^[-_]+|-+$/g, '')
    .slice(0, 63)
    .replace(/-+$/, '');
  return name || 'endpoint';
}

/** What to serve: one function (`POST /<function>`) or the notebook's annotated cells. */
export type DeployMode = { kind: 'function'; function: string } | { kind: 'cells' };

/** The choices of the deploy form. */
export interface DeployChoice {
  /** The run version to serve, `notebook@vN` (or the notebook's path: the saved file). */
  ref: string;
  mode: DeployMode;
  name: string;
  workers: number;
  /** Run the version's code at start rather than load the objects its run captured. */
  reexecute?: boolean;
}

/** The body of `POST /mlx/endpoints` for the form's choices. */
export function deployRequest(choice: DeployChoice): DeployRequest {
  const body: DeployRequest = { target: choice.ref, name: choice.name.trim() };
  if (choice.mode.kind === 'function') {
    body.function = choice.mode.function;
  } else {
    body.cells = true;
  }
  if (choice.workers !== 1) {
    body.workers = choice.workers;
  }
  if (choice.reexecute && choice.mode.kind === 'function') {
    body.reexecute = true; // annotated cells always run at start, as Kernel Gateway runs them
  }
  return body;
}

/** A function's parameter: its name, type annotation and default, as source text. */
export interface FunctionParameter {
  name: string;
  annotation: string | null;
  default: string | null;
}

/** The parameters of `def name(...)` in `source` (the first definition), or null if absent. */
export function functionParameters(source: string, name: string): FunctionParameter[] | null {
  if (!/^[A-Za-z_]\w*$/.test(name)) {
    return null;
  }
  const start = new RegExp(`^(?:async[ \\t]+)?def[ \\t]+${name}[ \\t]*\\(`, 'm').exec(source);
  if (!start) {
    return null;
  }
  const inner = balanced(source, start.index + start[0].length);
  const parameters: FunctionParameter[] = [];
  for (const part of splitTopLevel(inner, ',')) {
    const text = part.trim();
    if (!text || text === '/' || text === '*' || text.startsWith('*') || text === 'self') {
      continue;
    }
    const [head, fallback] = splitOnce(text, '=');
    const [param, annotation] = splitOnce(head, ':');
    parameters.push({
      name: param.trim(),
      annotation: annotation?.trim() || null,
      default: fallback?.trim() || null
    });
  }
  return parameters;
}

/** An example JSON body for calling `name` in `source`: its defaults, or values of its types. */
export function exampleBody(source: string, name: string): Record<string, unknown> {
  const body: Record<string, unknown> = {};
  for (const parameter of functionParameters(source, name) ?? []) {
    const literal = parameter.default === null ? undefined : pythonLiteral(parameter.default);
    body[parameter.name] =
      literal !== undefined ? literal : exampleValue(parameter.annotation);
  }
  return body;
}

/** A value of a Python type hint (`list[list[float]]` -> `[[0.0]]`); null when unknown. */
export function exampleValue(annotation: string | null): unknown {
  if (!annotation) {
    return null;
  }
  const hint = annotation.replace(/^['"]|['"]$/g, '').trim();
  const union = splitTopLevel(hint, '|').map(part => part.trim());
  if (union.length > 1) {
    return exampleValue(union.find(part => part !== 'None') ?? null);
  }
  const generic = /^([\w.]+)\s*\[(.*)\]$/s.exec(hint);
  const base = (generic ? generic[1] : hint).replace(/^(typing|t)\./, '');
  const args = generic ? splitTopLevel(generic[2], ',').map(arg => arg.trim()) : [];
  switch (base) {
    case 'int':
      return 0;
    case 'float':
      return 0.0;
    case 'str':
      return '';
    case 'bool':
      return false;
    case 'list':
    case 'List':
    case 'tuple':
    case 'Tuple':
    case 'set':
    case 'Set':
    case 'Sequence':
      return args.length ? [exampleValue(args[0])] : [];
    case 'dict':
    case 'Dict':
    case 'Mapping':
      return {};
    case 'Optional':
      return exampleValue(args[0] ?? null);
    case 'Union':
      return exampleValue(args.find(arg => arg !== 'None') ?? null);
    case 'Literal':
      return args.length ? pythonLiteral(args[0]) ?? null : null;
    default:
      return null;
  }
}

/** A Python literal as JSON (numbers, strings, True/False/None, simple lists and dicts). */
export function pythonLiteral(text: string): unknown {
  const json = text
    .trim()
    .replace(/\bTrue\b/g, 'true')
    .replace(/\bFalse\b/g, 'false')
    .replace(/\bNone\b/g, 'null')
    .replace(/'([^'"\\]*)'/g, '"$1"')
    .replace(/,\s*([\]}])/g, '$1');
  try {
    return JSON.parse(json);
  } catch {
    return undefined;
  }
}

/** `text` quoted for a POSIX shell: single quotes, each inner `'` as `'\''`. */
export function shellQuote(text: string): string {
  return /^[\w@%+=:,./-]+$/.test(text) ? text : `'${text.replace(/'/g, `'\\''`)}'`;
}

/** One request to an endpoint, for the curl example. */
export interface CurlRequest {
  /** The endpoint's URL, `http://host:port`. */
  url: string;
  method: string;
  /** `/predict`, `/items/3?x=1`. */
  path: string;
  /** Whether the endpoint wants `Authorization: Bearer <token>`. */
  auth: boolean;
  /** The body text (JSON or not); undefined or '' for none. */
  body?: string;
}

/**
 * The curl command for `request`, the token read from `$TOKEN` (so it never shows on screen or in
 * the shell history): `"..."` around the header so the shell expands it, `'...'` around the body.
 */
export function curlCommand(request: CurlRequest): string {
  const parts = ['curl'];
  if (request.method !== 'GET' || request.body) {
    parts.push('-X', request.method);
  }
  parts.push(shellQuote(`${request.url.replace(/\/+$/, '')}${request.path}`));
  if (request.auth) {
    parts.push('-H', '"Authorization: Bearer $TOKEN"');
  }
  if (request.body) {
    const type = isJSON(request.body) ? 'application/json' : 'text/plain';
    parts.push('-H', shellQuote(`Content-Type: ${type}`));
    parts.push('-d', shellQuote(request.body));
  }
  return parts.join(' ');
}

/** The request an endpoint's example and try-it form start from. */
export function defaultRequest(record: EndpointRecord): { method: string; path: string } {
  const serving = record.serving;
  if (serving.mode === 'function' && serving.function) {
    return { method: 'POST', path: `/${serving.function}` };
  }
  return { method: 'GET', path: '/' };
}

function isJSON(text: string): boolean {
  try {
    JSON.parse(text);
    return true;
  } catch {
    return false;
  }
}

/** The text from `from` up to the parenthesis that closes the one just before it. */
function balanced(source: string, from: number): string {
  let depth = 1;
  let quote: string | null = null;
  for (let i = from; i < source.length; i++) {
    const char = source[i];
    if (quote) {
      if (char === '\\') {
        i++;
      } else if (char === quote) {
        quote = null;
      }
    } else if (char === '"' || char === "'") {
      quote = char;
    } else if ('([{'.includes(char)) {
      depth++;
    } else if (')]}'.includes(char) && --depth === 0) {
      return source.slice(from, i);
    }
  }
  return source.slice(from);
}

/** Split on `separator` outside brackets and quotes. */
function splitTopLevel(text: string, separator: string): string[] {
  const parts: string[] = [];
  let depth = 0;
  let quote: string | null = null;
  let start = 0;
  for (let i = 0; i < text.length; i++) {
    const char = text[i];
    if (quote) {
      if (char === '\\') {
        i++;
      } else if (char === quote) {
        quote = null;
      }
    } else if (char === '"' || char === "'") {
      quote = char;
    } else if ('([{'.includes(char)) {
      depth++;
    } else if (')]}'.includes(char)) {
      depth--;
    } else if (char === separator && depth === 0) {
      parts.push(text.slice(start, i));
      start = i + 1;
    }
  }
  parts.push(text.slice(start));
  return parts;
}

/** `[before, after]` around the first top-level `separator`, or `[text, undefined]`. */
function splitOnce(text: string, separator: string): [string, string | undefined] {
  const [first, ...rest] = splitTopLevel(text, separator);
  return rest.length ? [first, rest.join(separator)] : [first, undefined];
}
