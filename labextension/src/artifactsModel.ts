/**
 * A run's artifacts as the run view shows them: the list (path, size, type), where the run's
 * folder was, and what a preview draws. Pure: no DOM, no HTTP.
 */
import type { ArtifactPreview, RunArtifacts } from './api';

export interface ArtifactListRow {
  path: string;
  /** The file's name, for the download. */
  name: string;
  /** `532 bytes`, `1.5 KiB`. */
  size: string;
  /** `text/csv`, or `unknown`. */
  type: string;
}

export interface ArtifactList {
  rows: ArtifactListRow[];
  /** `2 files, 1.2 KiB`. */
  summary: string;
  /** How the run's folder was made, in words. */
  folder: string;
  notes: string[];
}

/** What a preview shows: cells of a table, text (JSON pretty-printed), the image, or why not. */
export type PreviewDisplay =
  | { type: 'table'; columns: string[]; rows: string[][]; note: string }
  | { type: 'text'; text: string; note: string; json: boolean }
  | { type: 'image' }
  | { type: 'message'; text: string };

/** `532 bytes`, `1.5 KiB`, `12.0 MiB` (as `jupyter mlx artifacts` says it). */
export function formatBytes(size: number): string {
  if (size < 1024) {
    return `${size} bytes`;
  }
  let value = size;
  for (const unit of ['KiB', 'MiB', 'GiB']) {
    value /= 1024;
    if (value < 1024 || unit === 'GiB') {
      return `${value.toFixed(1)} ${unit}`;
    }
  }
  return `${size} bytes`;
}

/** The last segment of a '/'-separated path. */
export function fileName(path: string): string {
  return path.slice(path.lastIndexOf('/') + 1) || 'artifact';
}

/** How a run's folder was made: its own (an overlay or a copy of the project), or the project's. */
export function describeRunFolder(runFolder: RunArtifacts['run_folder']): string {
  switch (runFolder) {
    case 'overlay':
      return 'Ran in its own folder: an overlay of the project (the project was left untouched)';
    case 'copy':
      return 'Ran in its own folder: a copy of the project (the project was left untouched)';
    case 'in-place':
      return 'Ran in the project folder itself (in-place): its writes landed in the project';
    default:
      return 'Ran in the project folder (recorded before runs had folders of their own)';
  }
}

/** The list of a run's artifacts, with its folder and notes. */
export function artifactList(files: RunArtifacts): ArtifactList {
  const total = files.artifacts.reduce((sum, artifact) => sum + artifact.size, 0);
  const count = files.artifacts.length;
  return {
    rows: files.artifacts.map(artifact => ({
      path: artifact.path,
      name: fileName(artifact.path),
      size: formatBytes(artifact.size),
      type: artifact.media_type ?? 'unknown'
    })),
    summary: count ? `${count} ${count === 1 ? 'file' : 'files'}, ${formatBytes(total)}` : 'no files',
    folder: describeRunFolder(files.run_folder),
    notes: files.notes
  };
}

/** What to draw of an artifact's preview. */
export function previewDisplay(preview: ArtifactPreview): PreviewDisplay {
  switch (preview.kind) {
    case 'table': {
      const rows = preview.rows.map(row => row.map(cellText));
      const note =
        preview.total_rows > rows.length
          ? `the first ${rows.length} of ${preview.total_rows} rows`
          : `${preview.total_rows} ${preview.total_rows === 1 ? 'row' : 'rows'}`;
      return { type: 'table', columns: preview.columns, rows, note };
    }
    case 'json':
      return { type: 'text', text: JSON.stringify(preview.value, null, 2) ?? 'undefined', note: '', json: true };
    case 'text':
      return {
        type: 'text',
        text: preview.text,
        note: preview.truncated ? `the start of the file (${formatBytes(preview.size)} in all)` : '',
        json: false
      };
    case 'image':
      return { type: 'image' };
    case 'binary':
      return { type: 'message', text: `No preview: ${preview.reason}` };
    default:
      return { type: 'message', text: 'No preview for this file' };
  }
}

/** A table cell as text: empty for null (a missing value), numbers in full, strings as they are. */
function cellText(value: unknown): string {
  if (value === null || value === undefined) {
    return '';
  }
  return typeof value === 'string' ? value : (JSON.stringify(value) ?? String(value));
}
