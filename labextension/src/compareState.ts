/**
 * The compare view's State section as a model: one row per name of the state the runs captured
 * for their functions, with each side's object and the verdict; the packages whose version
 * differs; or why nothing was compared (one run captured nothing). Pure: no DOM, no HTTP.
 */
import { formatBytes } from './artifactsModel';
import type { Comparison, Judgement, StateComparison, StateEntry, StateObjectComparison } from './comparison';
import { isChange } from './compareModel';

export interface StateRow {
  /** Stable id in the view, `state-weights`. */
  key: string;
  name: string;
  judgement: Judgement;
  /** A and B differ (or it is on one side only). */
  changed: boolean;
  /** Each side's object: `ndarray, 151 bytes, 5d41402abc4b`, `module numpy`, `not capturable: …`; '' where absent. */
  a: string;
  b: string;
  /** How it changed, in a few words: `different content`, `no longer capturable`. */
  summary: string;
}

export interface StatePackage {
  name: string;
  /** `1.26.4 → 2.0.1`, `(none) → 1.5.0`. */
  text: string;
  status: 'changed' | 'added' | 'removed';
}

export interface StateModel {
  /** The section has something to say: objects compared, or why one run has nothing. */
  shown: boolean;
  /** Both runs captured their state: the rows are the comparison. */
  known: boolean;
  /** `B: not captured (…); nothing compared` when only one run captured its state. */
  missing: string | null;
  rows: StateRow[];
  packages: StatePackage[];
  /** Why a run's capture stopped early (`B: the capture took longer than 5 s`). */
  notes: string[];
}

/** The State section of a comparison (none for a comparison made before captures). */
export function buildStateModel(comparison: Comparison): StateModel {
  const state = comparison.state;
  if (!state) {
    return { shown: false, known: false, missing: null, rows: [], packages: [], notes: [] };
  }
  const missing = state.known ? null : missingCapture(state);
  const rows = state.objects.map(stateRow);
  const notes = state.known
    ? (['a', 'b'] as const).filter(side => state[side].note).map(side => `${side.toUpperCase()}: ${state[side].note}`)
    : [];
  return {
    shown: rows.length > 0 || missing !== null,
    known: state.known,
    missing,
    rows,
    packages: state.packages.map(({ name, a, b, status }) => ({
      name,
      text: `${a ?? '(none)'} → ${b ?? '(none)'}`,
      status
    })),
    notes
  };
}

/** The names that differ, or all of them. */
export function visibleState(model: StateModel, all: boolean): StateRow[] {
  return all ? model.rows : model.rows.filter(row => row.changed);
}

export function stateRow(entry: StateObjectComparison): StateRow {
  return {
    key: `state-${entry.name}`,
    name: entry.name,
    judgement: entry.judgement,
    changed: isChange(entry.judgement),
    a: sideText(entry.a),
    b: sideText(entry.b),
    summary: describeStateObject(entry)
  };
}

/** As `describe_state_object` says it on the terminal, shorter: the sides show the details. */
export function describeStateObject(entry: StateObjectComparison): string {
  switch (entry.judgement) {
    case 'added':
      return 'only in B';
    case 'removed':
      return 'only in A';
    case 'changed':
      return {
        content: 'different content',
        module: 'another module',
        not_capturable: 'no longer capturable',
        capturable: 'captured now'
      }[entry.change ?? 'content'];
    default:
      return '';
  }
}

/** `ndarray, 151 bytes, 5d41402abc4b`, `module numpy`, `not capturable: …`; '' where absent. */
export function sideText(entry: StateEntry | null): string {
  if (!entry) {
    return '';
  }
  if ('not_capturable' in entry) {
    return `not capturable: ${entry.not_capturable}`;
  }
  if (entry.kind === 'module') {
    return `module ${entry.module ?? '?'}`;
  }
  return `${entry.kind}, ${formatBytes(entry.size)}, ${(entry.sha256 ?? '').slice(0, 12)}`;
}

/** Only one run captured its state: which, and why not (else null: nothing worth a line). */
function missingCapture(state: StateComparison): string | null {
  const missing = (['a', 'b'] as const).filter(side => !state[side].captured);
  if (missing.length !== 1) {
    return null;
  }
  const side = missing[0];
  return `${side.toUpperCase()}: ${state[side].note ?? 'not captured'}; nothing compared`;
}
