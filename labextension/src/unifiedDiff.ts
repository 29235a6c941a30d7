/**
 * Unified diffs (as the comparison carries them) split into typed lines for colouring.
 */

/** `add`/`del`: a line only in B/A; `context`: in both; `hunk`: an `@@` range header. */
export type DiffLineKind = 'add' | 'del' | 'context' | 'hunk' | 'note';

export interface DiffLine {
  kind: DiffLineKind;
  /** The line without its one-character diff marker (hunk headers whole). */
  text: string;
}

/** The lines of a unified diff; the `--- A` / `+++ B` file headers are left out. */
export function parseUnifiedDiff(diff: string | null | undefined): DiffLine[] {
  if (!diff) {
    return [];
  }
  const lines: DiffLine[] = [];
  let inHunk = false;
  for (const line of diff.split('\n')) {
    if (!inHunk && (line.startsWith('--- ') || line.startsWith('+++ '))) {
      continue;
    }
    if (line.startsWith('@@')) {
      inHunk = true;
      lines.push({ kind: 'hunk', text: line });
    } else if (line.startsWith('+')) {
      lines.push({ kind: 'add', text: line.slice(1) });
    } else if (line.startsWith('-')) {
      lines.push({ kind: 'del', text: line.slice(1) });
    } else if (line.startsWith('\\')) {
      lines.push({ kind: 'note', text: line.slice(1).trim() });
    } else {
      lines.push({ kind: 'context', text: line.startsWith(' ') ? line.slice(1) : line });
    }
  }
  return lines;
}
