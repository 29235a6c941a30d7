/**
 * The run list's view model: pure functions from server records to display rows (no DOM, no HTTP).
 */
import type { KernelStart, RunPage, RunRecord, RunStatus } from './api';

/** What one row of the run list shows, already formatted. */
export interface RunRow {
  id: string;
  /** `notebook@vN`, the run's stable name. */
  ref: string;
  notebook: string;
  /** `v3`. */
  version: string;
  status: RunStatus;
  /** `5 min ago`; empty when the run has no timestamp. */
  when: string;
  /** The same moment as a local date and time, for a tooltip. */
  whenTitle: string;
  /** `2.1 s`, `1 min 5 s`; `cell 3/7` while running; empty while unknown. */
  duration: string;
  /** Who ran it, `alice`; empty for a run recorded before users were. */
  user: string;
  /** `C=0.5, max_iter=200`. */
  params: string;
  /** The first few metrics, `accuracy=0.87, loss=0.31`. */
  metrics: string;
  /** `ValueError: bad n=7` for a failed run. */
  error: string;
  /** The 0-based index of the cell that failed, when known. */
  errorCell: number | null;
}

export interface RowOptions {
  /** Reference time for relative times (epoch milliseconds). */
  now?: number;
  /** How many metrics a row shows. */
  maxMetrics?: number;
  /** The notebook's parameter defaults (an expression: its source text): parameters at their default are not shown. */
  defaults?: Record<string, unknown>;
  /** A metric to show first (the one the list is sorted by). */
  firstMetric?: string | null;
}

/** Turn a page of runs into display rows, newest first. */
export function toRows(page: RunPage, options: RowOptions = {}): RunRow[] {
  return sortNewestFirst(page.runs).map(run => toRow(run, options));
}

/** One run as a display row. */
export function toRow(run: RunRecord, options: RowOptions = {}): RunRow {
  const now = options.now ?? Date.now();
  const moment = run.started_at ?? run.queued_at;
  const first = options.firstMetric;
  const entries = Object.entries(run.metrics);
  if (first && first in run.metrics) {
    entries.sort(([a], [b]) => Number(b === first) - Number(a === first));
  }
  const metrics = entries.slice(0, options.maxMetrics ?? 3);
  return {
    id: run.id,
    ref: run.ref,
    notebook: run.notebook,
    version: `v${run.version}`,
    status: run.status,
    when: moment ? formatRelative(moment, now) : '',
    whenTitle: moment ? formatAbsolute(moment) : '',
    duration: run.progress
      ? `cell ${run.progress.cell}/${run.progress.cells}`
      : formatDuration(run.duration),
    user: run.user ?? '',
    params: formatPairs(changedParameters(run, options.defaults)),
    metrics: formatPairs(Object.fromEntries(metrics)),
    error: run.error ? `${run.error.ename}: ${run.error.evalue}` : '',
    errorCell: run.error?.cell_index ?? null
  };
}

/**
 * The compact view of a run's parameters (it records every one): those whose value is not the
 * notebook's default today (a run that used an older default shows it); without the defaults
 * (the notebook is gone), those the run set. `defaults` holds a default expression's source
 * text, as runs record it.
 */
export function changedParameters(
  run: Pick<RunRecord, 'parameters'> & { overridden?: string[] },
  defaults: Record<string, unknown> | undefined
): Record<string, unknown> {
  const entries = Object.entries(run.parameters);
  if (!defaults) {
    const set = run.overridden ? new Set(run.overridden) : null;
    return Object.fromEntries(entries.filter(([name]) => !set || set.has(name)));
  }
  return Object.fromEntries(
    entries.filter(
      ([name, value]) => !(name in defaults) || JSON.stringify(defaults[name]) !== JSON.stringify(value)
    )
  );
}

/** Runs ordered by start (or queue) time, newest first; ties by version, highest first. */
export function sortNewestFirst(runs: readonly RunRecord[]): RunRecord[] {
  const time = (run: RunRecord): number =>
    Date.parse(run.started_at ?? run.queued_at ?? '') || 0;
  return [...runs].sort(
    (a, b) => time(b) - time(a) || b.version - a.version
  );
}

/** Rows whose notebook path contains `text`, ignoring case; all rows for empty text. */
export function filterRows(rows: readonly RunRow[], text: string): RunRow[] {
  const needle = text.trim().toLowerCase();
  if (!needle) {
    return [...rows];
  }
  return rows.filter(row => row.notebook.toLowerCase().includes(needle));
}

/** `1 run`, `12 runs`, or `50 of 120 runs` when the page holds only some. */
export function countLabel(shown: number, total: number): string {
  const noun = total === 1 ? 'run' : 'runs';
  return shown < total ? `${shown} of ${total} ${noun}` : `${total} ${noun}`;
}

/** `0.4 s`, `2.1 s`, `1 min 5 s`, `2 h 3 min`; empty for null. */
export function formatDuration(seconds: number | null | undefined): string {
  if (seconds === null || seconds === undefined || !isFinite(seconds)) {
    return '';
  }
  if (seconds < 59.95) {
    return `${seconds.toFixed(1)} s`;
  }
  const whole = Math.round(seconds);
  const minutes = Math.floor(whole / 60);
  if (minutes < 60) {
    const secs = whole % 60;
    return secs ? `${minutes} min ${secs} s` : `${minutes} min`;
  }
  const mins = minutes % 60;
  const hours = Math.floor(minutes / 60);
  return mins ? `${hours} h ${mins} min` : `${hours} h`;
}

/** `just now`, `42 s ago`, `5 min ago`, `3 h ago`, `2 days ago`; a date beyond a week. */
export function formatRelative(iso: string, now: number): string {
  const then = Date.parse(iso);
  if (isNaN(then)) {
    return '';
  }
  const seconds = Math.round((now - then) / 1000);
  if (seconds < 5) {
    return 'just now';
  }
  if (seconds < 60) {
    return `${seconds} s ago`;
  }
  const minutes = Math.floor(seconds / 60);
  if (minutes < 60) {
    return `${minutes} min ago`;
  }
  const hours = Math.floor(minutes / 60);
  if (hours < 24) {
    return `${hours} h ago`;
  }
  const days = Math.floor(hours / 24);
  if (days < 7) {
    return days === 1 ? 'yesterday' : `${days} days ago`;
  }
  return formatAbsolute(iso).slice(0, 10);
}

/** The moment in local time, `2025-11-25 21:43:10`. */
export function formatAbsolute(iso: string): string {
  const date = new Date(iso);
  if (isNaN(date.getTime())) {
    return '';
  }
  const pad = (n: number): string => String(n).padStart(2, '0');
  return (
    `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())} ` +
    `${pad(date.getHours())}:${pad(date.getMinutes())}:${pad(date.getSeconds())}`
  );
}

/** `C=0.5, max_iter=200, label=a`, in the record's order. */
export function formatPairs(values: Record<string, unknown>): string {
  return Object.entries(values)
    .map(([name, value]) => `${name}=${formatValue(value)}`)
    .join(', ');
}

/** Numbers to 4 significant digits (integers whole), strings bare, anything else as JSON. */
export function formatValue(value: unknown): string {
  if (typeof value === 'number') {
    if (Number.isInteger(value) || !isFinite(value)) {
      return String(value);
    }
    return String(Number(value.toPrecision(4)));
  }
  if (typeof value === 'string') {
    return value;
  }
  return JSON.stringify(value) ?? String(value);
}

/** The page with `run` in place of the record of the same id; null when the page lacks it. */
export function applyRun(page: RunPage, run: RunRecord): RunPage | null {
  const index = page.runs.findIndex(known => known.id === run.id);
  if (index < 0) {
    return null;
  }
  const runs = [...page.runs];
  runs[index] = run;
  return { ...page, runs };
}

/** The page with the run's progress set (a queued run is running by then); null when unknown. */
export function applyProgress(
  page: RunPage,
  progress: { run_id: string; cell: number; cells: number }
): RunPage | null {
  const run = page.runs.find(known => known.id === progress.run_id);
  if (!run || (run.status !== 'queued' && run.status !== 'running')) {
    return null;
  }
  return applyRun(page, {
    ...run,
    status: 'running',
    progress: { cell: progress.cell, cells: progress.cells }
  });
}

/** Whether a run in this status can still be cancelled. */
export function isCancellable(status: RunStatus): boolean {
  return status === 'queued' || status === 'running';
}

/** The run view's kernel line and its tooltip. */
export interface KernelLabel {
  /** `started warm (numpy, pandas) after 0.02 s`, `started cold after 1.3 s`. */
  text: string;
  /** A cold start's reason, the modules left out and why; empty when there is nothing more. */
  title: string;
}

const KERNEL_WHERE: Record<string, string> = { gateway: 'on the gateway', dask: 'on a Dask worker' };
/** How many of a warm kernel's modules the line names (the tooltip names them all). */
const KERNEL_MODULES_SHOWN = 4;

/** How a run's kernel started, as `jupyter mlx show` says it; null for a run that had no kernel. */
export function kernelLabel(start: KernelStart | null | undefined, backend: string): KernelLabel | null {
  if (!start) {
    return null;
  }
  const after = start.waited !== null && start.waited !== undefined ? ` after ${formatWait(start.waited)}` : '';
  const leftOut = Object.entries(start.left_out ?? {});
  const notPreloaded = leftOut.map(([module, why]) => `not preloaded: ${module}: ${why}`);
  let text: string;
  const title: string[] = [];
  if (start.warm) {
    const shown = start.modules.slice(0, KERNEL_MODULES_SHOWN);
    const more = start.modules.length - shown.length;
    text = `started warm (${[...shown, ...(more ? [`+${more} more`] : [])].join(', ')})${after}`;
    title.push(`It started with ${start.modules.join(', ')} imported.`);
  } else if (start.cold) {
    text = `started cold${after}`;
    title.push(`Cold: ${start.cold}`);
  } else {
    text = `started ${KERNEL_WHERE[backend] ?? `by the ${backend} backend`}${after}`;
  }
  if (leftOut.length) {
    text += ` · ${leftOut.length} not preloaded`;
  }
  if (start.threads) {
    title.push(`${start.threads} BLAS/OpenMP thread${start.threads > 1 ? 's' : ''}: the sweep's runs shared the cores.`);
  }
  return { text, title: [...title, ...notPreloaded].join('\n') };
}

/** `0 s`, `0.02 s`, `1.3 s`, `12 s`: a wait, to the hundredth below 10 s (as `jupyter mlx show`). */
export function formatWait(seconds: number): string {
  return seconds < 10 ? `${Math.round(seconds * 100) / 100} s` : `${seconds.toFixed(0)} s`;
}
