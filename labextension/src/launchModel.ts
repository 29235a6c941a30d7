/**
 * The pure model of the "Run with Parameters" form: field text to typed values, sweep value
 * lists, the grid size and the request body. No DOM, no HTTP.
 */

/** One declared parameter, as `GET /mlx/parameters` describes it. */
export interface LaunchParameter {
  name: string;
  /** `int`, `float`, `str`, `bool`, `list`, ... */
  type: string;
  default: unknown;
  /** A default that is not a JSON literal, as source text (`np.arange(3)`); `default` is null. */
  expression?: string | null;
  help: string | null;
}

/** A backend the server can run on. */
export interface LaunchBackend {
  name: string;
  concurrency?: number;
  address?: string;
}

/** What `GET /mlx/parameters` answers. */
export interface LaunchForm {
  notebook: string;
  parameters: LaunchParameter[];
  backends: LaunchBackend[];
  default_backend: string;
}

/** A field's current text (bool fields hold `true`/`false`). */
export interface FieldState {
  parameter: LaunchParameter;
  text: string;
}

/** The request the form submits: one run or a sweep. */
export type LaunchRequest =
  | {
      kind: 'run';
      body: { notebook: string; parameters: Record<string, unknown>; backend: string };
    }
  | {
      kind: 'sweep';
      body: { notebook: string; grid: Record<string, unknown[]>; backend: string };
    };

/** The text a field starts with: the default, as a user would type it. */
export function defaultText(parameter: LaunchParameter): string {
  return valueText(parameter.default);
}

/**
 * The fields' starting text: each parameter's value in `restored` (a run's parameters, for
 * "Restore Parameters") when it has one, else its default.
 */
export function initialFields(
  parameters: LaunchParameter[],
  restored: Record<string, unknown> = {}
): FieldState[] {
  return parameters.map(parameter => ({
    parameter,
    text: parameter.name in restored ? valueText(restored[parameter.name]) : defaultText(parameter)
  }));
}

/**
 * The values "Restore Parameters" fills the form with: every parameter's value in the run, but
 * a default expression's source text, which is not a value (the field keeps its default).
 */
export function restorableParameters(run: {
  parameters: Record<string, unknown>;
  expressions?: string[];
}): Record<string, unknown> {
  const expressions = new Set(run.expressions ?? []);
  return Object.fromEntries(
    Object.entries(run.parameters).filter(([name]) => !expressions.has(name))
  );
}

/** A value as a user would type it in a field. */
export function valueText(value: unknown): string {
  if (value === null || value === undefined) {
    return '';
  }
  if (typeof value === 'string') {
    return value;
  }
  if (typeof value === 'boolean') {
    return value ? 'true' : 'false';
  }
  return typeof value === 'number' ? String(value) : JSON.stringify(value);
}

/**
 * Parse one value typed for a parameter of `type`. Text that does not parse is passed on
 * unchanged, so that the server (which converts values) explains what is wrong with it.
 */
export function parseValue(type: string, text: string): unknown {
  const trimmed = text.trim();
  switch (type) {
    case 'int':
      return /^[+-]?\d+$/.test(trimmed) ? Number(trimmed) : trimmed;
    case 'float': {
      const number = Number(trimmed);
      return trimmed !== '' && Number.isFinite(number) ? number : trimmed;
    }
    case 'bool': {
      const lower = trimmed.toLowerCase();
      if (['true', '1', 'yes', 'on'].includes(lower)) {
        return true;
      }
      return ['false', '0', 'no', 'off'].includes(lower) ? false : trimmed;
    }
    case 'str':
      return unquote(text);
    default:
      try {
        return JSON.parse(trimmed);
      } catch {
        return trimmed;
      }
  }
}

/** Split sweep text at top-level commas (not inside brackets or quotes); drops empty items. */
export function splitValues(text: string): string[] {
  const items: string[] = [];
  let depth = 0;
  let quote: string | null = null;
  let current = '';
  for (const char of text) {
    if (quote) {
      quote = char === quote ? null : quote;
    } else if (char === '"' || char === "'") {
      quote = char;
    } else if ('[{('.includes(char)) {
      depth++;
    } else if (')}]'.includes(char)) {
      depth = Math.max(0, depth - 1);
    } else if (char === ',' && depth === 0) {
      items.push(current);
      current = '';
      continue;
    }
    current += char;
  }
  items.push(current);
  return items.map(item => item.trim()).filter(item => item !== '');
}

/** The values a field stands for: one, or in sweep mode each comma-separated one. */
export function fieldValues(field: FieldState, sweep: boolean): unknown[] {
  const { type } = field.parameter;
  const items = sweep ? splitValues(field.text) : [];
  return items.length > 0
    ? items.map(item => parseValue(type, item))
    : [parseValue(type, field.text)];
}

/** How many runs the form launches: 1, or in sweep mode the product of the value counts. */
export function gridSize(fields: FieldState[], sweep: boolean): number {
  return fields.reduce((size, field) => size * fieldValues(field, sweep).length, 1);
}

/** "1 run", "3 runs". */
export function runsLabel(count: number): string {
  return `${count} run${count === 1 ? '' : 's'}`;
}

/** Whether a field differs from its parameter's default (only those are sent). */
export function isChanged(field: FieldState): boolean {
  return field.text.trim() !== defaultText(field.parameter).trim();
}

/** The request for the form's state: changed fields only, so defaults stay the notebook's. */
export function buildRequest(
  notebook: string,
  fields: FieldState[],
  sweep: boolean,
  backend: string
): LaunchRequest {
  const changed = fields.filter(isChanged);
  if (!sweep) {
    const parameters: Record<string, unknown> = {};
    for (const field of changed) {
      parameters[field.parameter.name] = fieldValues(field, false)[0];
    }
    return { kind: 'run', body: { notebook, parameters, backend } };
  }
  const grid: Record<string, unknown[]> = {};
  for (const field of changed) {
    grid[field.parameter.name] = fieldValues(field, true);
  }
  return { kind: 'sweep', body: { notebook, grid, backend } };
}

function unquote(text: string): string {
  const trimmed = text.trim();
  const quoted = /^(['"])(.*)\1$/s.exec(trimmed);
  return quoted ? quoted[2] : text;
}
