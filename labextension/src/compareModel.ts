/**
 * The compare view's model: pure functions from the comparison JSON to the rows the view shows
 * (no DOM, no HTTP). Outputs point into the executed notebooks; `outputPreview.ts` reads them.
 */
import type {
  CellComparison,
  Comparison,
  ComparisonHeader,
  Judgement,
  MetricChange,
  OutputDetail,
  OutputPair,
  ParameterChange,
  ParameterOrigin,
  SeriesDetail
} from './comparison';
import { formatDuration, formatValue } from './model';
import { DiffLine, parseUnifiedDiff } from './unifiedDiff';

/** One side's header: `train.ipynb@v3`, its status, duration, git commit and who ran it. */
export interface SideHeader {
  label: 'A' | 'B';
  ref: string;
  runId: string | null;
  status: string;
  duration: string;
  git: string;
  /** `alice`; empty when unknown (a file, an older run). */
  user: string;
}

export interface HeaderRow {
  a: SideHeader;
  b: SideHeader;
  verdict: 'as_expected' | 'unexpected_changes';
  /** `5 of 14 cells changed, 11 outputs changed, 1 parameter, 3 metrics`. */
  summary: string;
  /** One readable line per unexpected change. */
  unexpected: string[];
}

export interface ParameterRow {
  name: string;
  a: string;
  b: string;
  status: ParameterChange['status'];
  changed: boolean;
}

export interface MetricRow {
  name: string;
  a: string;
  b: string;
  /** `+0.01852 (+2.17%)`; empty when either side is missing. */
  change: string;
  judgement: Judgement;
  /** A and B differ (within tolerance or beyond). */
  changed: boolean;
  /** `changed at steps 1, 3 (of 5)` for a logged series that differs, else `5 steps`. */
  series: string;
}

/** Where one side's output is in that side's executed notebook. */
export interface OutputLocation {
  cell: number;
  output: number;
  mime: string | null;
}

export interface TableCellRow {
  row: string;
  column: string;
  a: string;
  b: string;
}

/** How an output pair is drawn. */
export type OutputDisplay =
  /** A coloured unified diff of the text. */
  | { type: 'diff'; lines: DiffLine[]; truncated: boolean }
  /** Both images from the notebooks, and the change mask (a data URI) with its statistics. */
  | {
      type: 'image';
      a: OutputLocation | null;
      b: OutputLocation | null;
      mask: string | null;
      stats: string;
    }
  /** The changed cells of a table, and what else changed in its shape. */
  | { type: 'table'; cells: TableCellRow[]; more: number; notes: string[] }
  /** An error on each side, `ValueError: bad n=7`. */
  | { type: 'error'; a: string; b: string }
  /** A `log_metric` output in one line. */
  | { type: 'metric'; text: string }
  /** Both outputs as they are (identical, added, removed, or nothing finer to show). */
  | { type: 'sides'; a: OutputLocation | null; b: OutputLocation | null };

export interface OutputRow {
  /** Stable id in the view, `cell-3-output-1`. */
  key: string;
  /** `stdout`, `image/png`, `metric`, `error`. */
  label: string;
  judgement: Judgement;
  changed: boolean;
  /** One line on what changed, e.g. `1.80% of pixels changed, similarity 0.945`. */
  summary: string;
  display: OutputDisplay;
}

export interface CellRow {
  /** Stable id in the view, `cell-3`. */
  key: string;
  /** 1-based position, in B (in A for a removed cell). */
  number: number;
  indexA: number | null;
  indexB: number | null;
  cellType: string;
  tags: string[];
  judgement: Judgement;
  changed: boolean;
  /** The source diff, empty when the source is unchanged. */
  sourceDiff: DiffLine[];
  outputs: OutputRow[];
}

export interface CompareModel {
  header: HeaderRow;
  parameters: ParameterRow[];
  metrics: MetricRow[];
  cells: CellRow[];
}

/** `train.ipynb v1 ↔ v3` for two runs of one notebook, else `A ↔ B`. */
export function compareTitle(a: string, b: string): string {
  const [notebookA, versionA] = a.split('@');
  const [notebookB, versionB] = b.split('@');
  const name = (path: string): string => path.slice(path.lastIndexOf('/') + 1);
  if (versionA && versionB && notebookA === notebookB) {
    return `${name(notebookA)} ${versionA} ↔ ${versionB}`;
  }
  return `${name(a)} ↔ ${name(b)}`;
}

const CHANGED: ReadonlySet<Judgement> = new Set(['changed', 'added', 'removed']);

/** A change that counts: beyond tolerance, or only on one side. */
export function isChange(judgement: Judgement): boolean {
  return CHANGED.has(judgement);
}

/** The whole view model of a comparison. */
export function buildCompareModel(comparison: Comparison): CompareModel {
  return {
    header: headerRow(comparison),
    parameters: comparison.parameters.map(parameterRow),
    metrics: comparison.metrics.map(metricRow),
    cells: comparison.cells.map(cellRow)
  };
}

/** The parameters that differ, or all of them. */
export function visibleParameters(model: CompareModel, all: boolean): ParameterRow[] {
  return all ? model.parameters : model.parameters.filter(row => row.changed);
}

/** The metrics whose values differ, or all of them. */
export function visibleMetrics(model: CompareModel, all: boolean): MetricRow[] {
  return all ? model.metrics : model.metrics.filter(row => row.changed);
}

/** The changed cells (changed, added or removed), or all of them. */
export function visibleCells(model: CompareModel, onlyChanged: boolean): CellRow[] {
  return onlyChanged ? model.cells.filter(row => row.changed) : model.cells;
}

/** The keys "next change" visits, top to bottom: each changed cell among `cells`. */
export function changeOrder(cells: readonly CellRow[]): string[] {
  return cells.filter(cell => cell.changed).map(cell => cell.key);
}

/** The change after `current` (the first when none, wrapping at the end); null when none. */
export function nextChange(order: readonly string[], current: string | null): string | null {
  if (!order.length) {
    return null;
  }
  const at = current === null ? -1 : order.indexOf(current);
  return order[(at + 1) % order.length];
}

function headerRow(comparison: Comparison): HeaderRow {
  const summary = comparison.summary;
  const cells = comparison.cells.length;
  const changedCells = summary.cells.changed + summary.cells.added + summary.cells.removed;
  const changedOutputs =
    summary.outputs.changed + summary.outputs.added + summary.outputs.removed;
  const parts = [`${changedCells} of ${cells} ${plural(cells, 'cell')} changed`];
  if (changedOutputs) {
    parts.push(`${changedOutputs} ${plural(changedOutputs, 'output')} changed`);
  }
  if (summary.parameters_changed) {
    parts.push(`${summary.parameters_changed} ${plural(summary.parameters_changed, 'parameter')}`);
  }
  if (summary.metrics_changed) {
    parts.push(`${summary.metrics_changed} ${plural(summary.metrics_changed, 'metric')}`);
  }
  if (summary.errors_added) {
    parts.push(`${summary.errors_added} new ${plural(summary.errors_added, 'error')}`);
  }
  const artifacts = summary.artifacts;
  const changedArtifacts = artifacts ? artifacts.changed + artifacts.added + artifacts.removed : 0;
  if (changedArtifacts) {
    parts.push(`${changedArtifacts} ${plural(changedArtifacts, 'artifact')} changed`);
  }
  const state = summary.state;
  const changedState = state ? state.changed + state.added + state.removed : 0;
  if (changedState) {
    parts.push(`${changedState} state ${plural(changedState, 'object')} changed`);
  }
  return {
    a: sideHeader(comparison.a),
    b: sideHeader(comparison.b),
    verdict: summary.verdict,
    summary: parts.join(', '),
    unexpected: summary.unexpected
  };
}

function sideHeader(header: ComparisonHeader): SideHeader {
  const commit = header.git_commit ? header.git_commit.slice(0, 8) : '';
  return {
    label: header.label,
    ref: header.ref,
    runId: header.run_id,
    status: header.status ?? (header.kind === 'file' ? 'file' : 'unknown'),
    duration: formatDuration(header.duration),
    git: commit && header.git_dirty ? `${commit} (dirty)` : commit,
    user: header.user ?? ''
  };
}

function parameterRow(change: ParameterChange): ParameterRow {
  return {
    name: change.name,
    a: change.status === 'added' ? '' : parameterText(change.a, change.origin_a),
    b: change.status === 'removed' ? '' : parameterText(change.b, change.origin_b),
    status: change.status,
    changed: change.status !== 'same'
  };
}

/** `100 (default)`, `200` (set by the run), `np.arange(3) (default expression)`. */
function parameterText(value: unknown, origin: ParameterOrigin | undefined): string {
  const note = origin === 'default' ? ' (default)' : origin === 'expression' ? ' (default expression)' : '';
  return formatValue(value) + note;
}

const MAX_SHOWN_RANGES = 8;

/**
 * Where a series changed, as the terminal and the HTML report say it: `steps 1, 3 (of 5)`,
 * `steps 0-499, 601 (501 of 1000)`, ending in `…` past a few ranges, `all 5 steps`; empty when
 * no step makes the verdict or the series is in one run only.
 */
export function describeChangedSteps(series: SeriesDetail): string {
  const ranges = series.changed_steps ?? [];
  if (ranges.length === 0 || !series.steps_a || !series.steps_b) {
    return '';
  }
  const count = series.changed_steps_count;
  const pieces = ranges
    .slice(0, MAX_SHOWN_RANGES)
    .map(([first, last]) => (first === last ? String(first) : `${first}-${last}`));
  if (ranges.length > MAX_SHOWN_RANGES) {
    pieces.push('…');
  }
  const noun = series.aligned_by === 'position' ? 'position' : 'step';
  if (count === series.steps_compared && count > 1) {
    return `all ${count} ${noun}s`;
  }
  const of = pieces.length === count ? 'of' : `${count} of`;
  return `${noun}${count === 1 ? '' : 's'} ${pieces.join(', ')} (${of} ${series.steps_compared})`;
}

function metricRow(metric: MetricChange): MetricRow {
  const series = metric.series;
  let seriesText = '';
  if (series) {
    const steps =
      series.steps_a === series.steps_b
        ? `${series.steps_b} ${plural(series.steps_b, 'step')}`
        : `${series.steps_a} → ${series.steps_b} steps`;
    const where = describeChangedSteps(series);
    const verb = metric.judgement === 'changed' ? 'changed' : 'differs';
    seriesText = where ? `${verb} at ${where}` + (series.steps_a === series.steps_b ? '' : `; ${steps}`) : steps;
  }
  return {
    name: metric.name,
    a: metric.a === null ? '' : formatValue(metric.a),
    b: metric.b === null ? '' : formatValue(metric.b),
    change: formatChange(metric.abs_change, metric.rel_change),
    judgement: metric.judgement,
    changed: metric.judgement !== 'identical' && metric.judgement !== 'ignored',
    series: seriesText
  };
}

/** `+0.01852 (+2.17%)`, `-3`, or empty. */
export function formatChange(abs: number | null, rel: number | null): string {
  if (abs === null) {
    return '';
  }
  const sign = (n: number): string => (n > 0 ? '+' : n < 0 ? '−' : '±');
  const absText = `${sign(abs)}${formatValue(Math.abs(abs))}`;
  if (rel === null || !isFinite(rel)) {
    return absText;
  }
  return `${absText} (${sign(rel)}${(Math.abs(rel) * 100).toFixed(2)}%)`;
}

function cellRow(cell: CellComparison): CellRow {
  const index = cell.index_b ?? cell.index_a ?? 0;
  const key = `cell-${index}${cell.index_b === null ? '-a' : ''}`;
  return {
    key,
    number: index + 1,
    indexA: cell.index_a,
    indexB: cell.index_b,
    cellType: cell.cell_type,
    tags: cell.tags,
    judgement: cell.judgement,
    changed: isChange(cell.judgement),
    sourceDiff: cell.source.changed ? parseUnifiedDiff(cell.source.diff) : [],
    outputs: cell.outputs.map((output, i) => outputRow(cell, output, `${key}-output-${i}`))
  };
}

function outputRow(cell: CellComparison, output: OutputPair, key: string): OutputRow {
  return {
    key,
    label: outputLabel(output),
    judgement: output.judgement,
    changed: isChange(output.judgement),
    summary: outputSummary(output),
    display: outputDisplay(cell, output)
  };
}

function outputLabel(output: OutputPair): string {
  if (output.kind === 'stream') {
    return output.mime ?? 'stdout';
  }
  if (output.kind === 'metric' || output.kind === 'error') {
    return output.kind;
  }
  return output.mime ?? output.kind;
}

function outputSummary(output: OutputPair): string {
  const detail = output.detail;
  if (typeof detail.error === 'string') {
    return detail.error;
  }
  if (typeof detail.note === 'string') {
    return detail.note;
  }
  if (output.judgement === 'added') {
    return 'only in B';
  }
  if (output.judgement === 'removed') {
    return 'only in A';
  }
  if (output.kind === 'image' && detail.changed_fraction !== undefined) {
    return imageStats(detail);
  }
  if (output.kind === 'table' && detail.cells_changed_count !== undefined) {
    const count = detail.cells_changed_count;
    return `${count} ${plural(count, 'cell')} changed`;
  }
  const numbers = detail.numbers;
  if (output.judgement === 'within_tolerance' && numbers?.max_abs_diff != null) {
    return `numbers differ by at most ${formatValue(numbers.max_abs_diff)}`;
  }
  if (output.judgement === 'within_tolerance' && detail.normalized) {
    return 'only volatile text differs (times, addresses, progress bars)';
  }
  return '';
}

/** `1.80% of pixels changed (2,191 px), similarity 0.945, size 429×283 → 430×283`. */
export function imageStats(detail: OutputDetail): string {
  const parts = [`${((detail.changed_fraction ?? 0) * 100).toFixed(2)}% of pixels changed`];
  if (detail.changed_pixels !== undefined) {
    parts[0] += ` (${detail.changed_pixels.toLocaleString('en-US')} px)`;
  }
  if (detail.similarity !== undefined) {
    parts.push(`similarity ${detail.similarity.toFixed(3)}`);
  }
  if (detail.size_changed && detail.size_a && detail.size_b) {
    parts.push(`size ${detail.size_a.join('×')} → ${detail.size_b.join('×')}`);
  }
  return parts.join(', ');
}

function outputDisplay(cell: CellComparison, output: OutputPair): OutputDisplay {
  const detail = output.detail;
  const a = location(cell.index_a, output.index_a, output.mime);
  const b = location(cell.index_b, output.index_b, output.mime);
  const oneSided = output.judgement === 'added' || output.judgement === 'removed';
  if (output.kind === 'image' && !oneSided) {
    const mask = typeof detail.mask === 'string' ? `data:image/png;base64,${detail.mask}` : null;
    const stats = detail.changed_fraction !== undefined ? imageStats(detail) : '';
    return { type: 'image', a, b, mask, stats };
  }
  if (output.kind === 'metric' && !oneSided) {
    return { type: 'metric', text: metricLine(detail) };
  }
  if (output.kind === 'table' && Array.isArray(detail.cells_changed)) {
    return tableDisplay(detail);
  }
  if (output.kind === 'error' && (detail.ename_a || detail.ename_b)) {
    return {
      type: 'error',
      a: `${detail.ename_a ?? ''}: ${detail.evalue_a ?? ''}`,
      b: `${detail.ename_b ?? ''}: ${detail.evalue_b ?? ''}`
    };
  }
  if (typeof detail.diff === 'string' && detail.diff) {
    return { type: 'diff', lines: parseUnifiedDiff(detail.diff), truncated: !!detail.truncated };
  }
  return { type: 'sides', a, b };
}

function location(cell: number | null, output: number | null, mime: string | null): OutputLocation | null {
  return cell === null || output === null ? null : { cell, output, mime };
}

/** `accuracy: 0.8519 → 0.8704`, `loss[3] = 0.5`. */
function metricLine(detail: OutputDetail): string {
  const step = detail.step_b ?? detail.step_a;
  const label = `${detail.name ?? 'metric'}${step !== null && step !== undefined ? `[${step}]` : ''}`;
  const show = (value: unknown): string =>
    typeof value === 'number' ? formatValue(value) : formatValue(value);
  if (detail.a === detail.b || detail.a === undefined) {
    return `${label} = ${show(detail.b)}`;
  }
  return `${label}: ${show(detail.a)} → ${show(detail.b)}`;
}

export function tableDisplay(detail: OutputDetail): Extract<OutputDisplay, { type: 'table' }> {
  const changed = detail.cells_changed ?? [];
  const cells = changed.map(cell => ({
    row: String(cell.row),
    column: String(cell.column),
    a: formatValue(cell.a),
    b: formatValue(cell.b)
  }));
  const notes: string[] = [];
  const { shape_a: shapeA, shape_b: shapeB } = detail;
  if (shapeA && shapeB && shapeA.join('×') !== shapeB.join('×')) {
    notes.push(`shape ${shapeA.join('×')} → ${shapeB.join('×')}`);
  }
  const lists: [string[] | undefined, string][] = [
    [detail.rows_added, 'rows added'],
    [detail.rows_removed, 'rows removed'],
    [detail.columns_added, 'columns added'],
    [detail.columns_removed, 'columns removed']
  ];
  for (const [items, noun] of lists) {
    if (items?.length) {
      notes.push(`${noun}: ${items.join(', ')}`);
    }
  }
  if (detail.reordered?.length) {
    notes.push(`${detail.reordered.join(' and ')} reordered`);
  }
  const more = Math.max(0, (detail.cells_changed_count ?? cells.length) - cells.length);
  return { type: 'table', cells, more, notes };
}

function plural(count: number, noun: string): string {
  return count === 1 ? noun : `${noun}s`;
}
