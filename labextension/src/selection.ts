/**
 * Which runs of the list are selected, and which pair to compare. Pure: no DOM.
 */
import type { RunRecord } from './api';
import { sortNewestFirst } from './model';

/** How many runs can be selected at once (two to compare, more for a metrics table). */
export const MAX_SELECTED = 500;

/** A plain click: only this run. */
export function selectOnly(id: string): string[] {
  return [id];
}

/** Ctrl/Cmd-click or checkbox: add the run (dropping the earliest pick beyond the maximum), or remove it. */
export function toggleSelected(selected: readonly string[], id: string): string[] {
  if (selected.includes(id)) {
    return selected.filter(other => other !== id);
  }
  return [...selected, id].slice(-MAX_SELECTED);
}

/** The selection without runs that are no longer listed. */
export function pruneSelected(selected: readonly string[], listed: readonly string[]): string[] {
  const ids = new Set(listed);
  return selected.filter(id => ids.has(id));
}

/**
 * Exactly two runs as `{a, b}`, the older as A, the newer as B: by version for runs of one
 * notebook (runs of a sweep start in any order), else by when they ran; null otherwise.
 */
export function comparePair(runs: readonly RunRecord[]): { a: RunRecord; b: RunRecord } | null {
  if (runs.length !== 2) {
    return null;
  }
  const [first, second] = runs;
  if (first.notebook === second.notebook) {
    return first.version < second.version ? { a: first, b: second } : { a: second, b: first };
  }
  const [newer, older] = sortNewestFirst(runs);
  return { a: older, b: newer };
}
