/**
 * The compare view's Artifacts section as a model: one row per file either run wrote, with its
 * verdict and what changed, and the line on the project files (inputs) that changed between the
 * runs. Pure: no DOM, no HTTP; an image's bytes are fetched by the view from each run.
 */
import { formatBytes } from './artifactsModel';
import type {
  ArtifactComparison,
  ArtifactKind,
  Comparison,
  InputChanges,
  Judgement,
  JsonValueChange
} from './comparison';
import { imageStats, isChange, tableDisplay, TableCellRow } from './compareModel';
import { formatValue } from './model';
import { DiffLine, parseUnifiedDiff } from './unifiedDiff';

/** How an artifact pair is drawn. */
export type ArtifactDisplay =
  /** Both runs' images (fetched by path from each run) and the change mask, a data URI. */
  | { type: 'image'; path: string; mask: string | null }
  | { type: 'table'; cells: TableCellRow[]; more: number; notes: string[] }
  | { type: 'diff'; lines: DiffLine[]; truncated: boolean }
  | { type: 'json'; changes: JsonChangeRow[]; more: number }
  /** Nothing finer than the summary line. */
  | { type: 'none' };

export interface JsonChangeRow {
  /** A JSON Pointer, `/metrics/accuracy`. */
  path: string;
  change: JsonValueChange['change'];
  a: string;
  b: string;
}

export interface ArtifactRow {
  /** Stable id in the view, `artifact-predictions.csv`. */
  key: string;
  path: string;
  kind: ArtifactKind;
  judgement: Judgement;
  /** A and B differ (within tolerance or beyond). */
  changed: boolean;
  /** `24 bytes`, `24 bytes → 30 bytes`. */
  sizes: string;
  /** What changed, in a few words: `1 cell changed`, `8.54% of pixels changed, …`. */
  summary: string;
  display: ArtifactDisplay;
}

export interface InputsLine {
  /** Both runs recorded the project files they saw. */
  known: boolean;
  /** `1 project file changed between the runs (2 unchanged)`. */
  text: string;
  changes: { path: string; status: 'changed' | 'added' | 'removed' }[];
}

export interface ArtifactsModel {
  /** The comparison has artifacts at all (older ones do not). */
  known: boolean;
  rows: ArtifactRow[];
  inputs: InputsLine | null;
}

/** The Artifacts section of a comparison. */
export function buildArtifactsModel(comparison: Comparison): ArtifactsModel {
  return {
    known: Array.isArray(comparison.artifacts),
    rows: (comparison.artifacts ?? []).map(artifactRow),
    inputs: comparison.inputs ? inputsLine(comparison.inputs) : null
  };
}

/** The artifacts that differ, or all of them. */
export function visibleArtifacts(model: ArtifactsModel, all: boolean): ArtifactRow[] {
  return all ? model.rows : model.rows.filter(row => row.changed);
}

/** The images the view fetches from both runs: the paths of the rows drawn as image pairs. */
export function imagePaths(rows: readonly ArtifactRow[]): string[] {
  return rows.filter(row => row.display.type === 'image').map(row => row.path);
}

export function artifactRow(entry: ArtifactComparison): ArtifactRow {
  return {
    key: `artifact-${entry.path}`,
    path: entry.path,
    kind: entry.kind,
    judgement: entry.judgement,
    changed: entry.judgement !== 'identical' && entry.judgement !== 'ignored',
    sizes: sizes(entry),
    summary: describeArtifact(entry),
    display: artifactDisplay(entry)
  };
}

function sizes(entry: ArtifactComparison): string {
  const a = entry.a ? formatBytes(entry.a.size) : null;
  const b = entry.b ? formatBytes(entry.b.size) : null;
  return a !== null && b !== null && a !== b ? `${a} → ${b}` : (b ?? a ?? '');
}

/** As `describe_artifact` says it on the terminal, without the judgement. */
export function describeArtifact(entry: ArtifactComparison): string {
  const detail = entry.detail ?? {};
  if (entry.judgement === 'added') {
    return 'only in B';
  }
  if (entry.judgement === 'removed') {
    return 'only in A';
  }
  if (entry.judgement === 'identical' || entry.judgement === 'ignored') {
    return '';
  }
  if (typeof detail.error === 'string' && detail.error) {
    return detail.error;
  }
  const note = typeof detail.note === 'string' ? detail.note : '';
  if (detail.compared_by === 'hash') {
    return `different content${note ? `; ${note}` : ''}`;
  }
  if (detail.cells_changed_count !== undefined) {
    const count = detail.cells_changed_count;
    const parts = [`${count} ${count === 1 ? 'cell' : 'cells'} changed`];
    if (detail.cells_within_tolerance) {
      parts.push(`${detail.cells_within_tolerance} within tolerance`);
    }
    return parts.join(', ');
  }
  if (detail.changed_fraction !== undefined) {
    return imageStats(detail);
  }
  if (detail.changes_count !== undefined) {
    const count = detail.changes_count;
    const parts = count ? [`${count} ${count === 1 ? 'value' : 'values'} changed`] : [];
    if (detail.values_within_tolerance) {
      parts.push(`${detail.values_within_tolerance} within tolerance`);
    }
    return parts.join(', ') || note;
  }
  if (typeof detail.diff === 'string' && detail.diff) {
    const lines = detail.diff.split('\n').slice(2);
    const removed = lines.filter(line => line.startsWith('-')).length;
    const added = lines.filter(line => line.startsWith('+')).length;
    return `−${removed} +${added} lines${detail.truncated ? ' (diff cut)' : ''}`;
  }
  const numbers = detail.numbers;
  if (numbers?.max_abs_diff != null) {
    return `numbers differ by at most ${formatValue(numbers.max_abs_diff)}`;
  }
  if (detail.normalized) {
    return 'only volatile text differs';
  }
  return note;
}

function artifactDisplay(entry: ArtifactComparison): ArtifactDisplay {
  const detail = entry.detail ?? {};
  if (!entry.a || !entry.b || entry.judgement === 'identical' || entry.judgement === 'ignored') {
    return { type: 'none' };
  }
  if (entry.kind === 'image' && detail.changed_fraction !== undefined) {
    const mask = typeof detail.mask === 'string' ? `data:image/png;base64,${detail.mask}` : null;
    return { type: 'image', path: entry.path, mask };
  }
  if (Array.isArray(detail.cells_changed)) {
    return tableDisplay(detail);
  }
  if (Array.isArray(detail.changes)) {
    const changes = detail.changes.map(change => ({
      path: change.path || '/',
      change: change.change,
      a: change.change === 'added' ? '' : formatValue(change.a),
      b: change.change === 'removed' ? '' : formatValue(change.b)
    }));
    const more = Math.max(0, (detail.changes_count ?? changes.length) - changes.length);
    return { type: 'json', changes, more };
  }
  if (typeof detail.diff === 'string' && detail.diff) {
    return { type: 'diff', lines: parseUnifiedDiff(detail.diff), truncated: !!detail.truncated };
  }
  return { type: 'none' };
}

/** The project files that changed between the runs' starts, in a line. */
export function inputsLine(inputs: InputChanges): InputsLine {
  const changes = inputs.changes.map(({ path, status }) => ({ path, status }));
  if (!inputs.known) {
    return { known: false, text: 'not recorded for both runs', changes };
  }
  const count = changes.length;
  const text = count
    ? `${count} project ${count === 1 ? 'file' : 'files'} changed between the runs (${inputs.unchanged} unchanged)`
    : `no project file changed between the runs (${inputs.unchanged} unchanged)`;
  return { known: true, text, changes };
}

/** Counts as a change a user must look at (beyond tolerance, or on one side only). */
export function isArtifactChange(row: ArtifactRow): boolean {
  return isChange(row.judgement);
}
