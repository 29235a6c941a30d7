/**
 * The model of the metrics table across runs: its columns (run, the parameters that vary, the
 * others, the metrics), sorting by any column, and the chart's starting choices. Pure: no DOM.
 */
import type { RunsTableData } from './api';
import { formatDuration, formatValue } from './model';

export type TableRow = RunsTableData['rows'][number];

export interface TableColumn {
  /** `ref`, `status`, `duration`, `param:<name>` or `metric:<name>`. */
  key: string;
  label: string;
  kind: 'run' | 'param' | 'metric';
  /** A parameter whose value differs between the runs. */
  varying: boolean;
}

/** Run columns, then varying parameters, then the other parameters, then metrics. */
export function tableColumns(data: RunsTableData): TableColumn[] {
  const varying = new Set(data.varying);
  const parameters = [
    ...data.parameters.filter(name => varying.has(name)),
    ...data.parameters.filter(name => !varying.has(name))
  ];
  return [
    { key: 'ref', label: 'run', kind: 'run', varying: false },
    { key: 'status', label: 'status', kind: 'run', varying: false },
    { key: 'duration', label: 'duration', kind: 'run', varying: false },
    ...parameters.map(name => ({
      key: `param:${name}`,
      label: name,
      kind: 'param' as const,
      varying: varying.has(name)
    })),
    ...data.metrics.map(name => ({
      key: `metric:${name}`,
      label: name,
      kind: 'metric' as const,
      varying: false
    }))
  ];
}

/** The raw value of a row in a column (undefined when the run lacks it). */
export function cellValue(row: TableRow, key: string): unknown {
  if (key.startsWith('param:')) {
    return row.parameters[key.slice('param:'.length)];
  }
  if (key.startsWith('metric:')) {
    return row.metrics[key.slice('metric:'.length)];
  }
  return (row as unknown as Record<string, unknown>)[key];
}

/** A cell as text: numbers to 4 significant digits, durations as `2.1 s`, missing as ''. */
export function cellText(row: TableRow, key: string): string {
  const value = cellValue(row, key);
  if (value === null || value === undefined) {
    return '';
  }
  if (key === 'duration') {
    return formatDuration(value as number);
  }
  return formatValue(value);
}

/** Rows sorted by a column: numbers numerically, text naturally, missing values last. */
export function sortRows(
  rows: readonly TableRow[],
  key: string,
  order: 'asc' | 'desc'
): TableRow[] {
  const sign = order === 'asc' ? 1 : -1;
  const collator = new Intl.Collator(undefined, { numeric: true });
  return [...rows].sort((a, b) => {
    const x = cellValue(a, key);
    const y = cellValue(b, key);
    const xMissing = x === null || x === undefined;
    const yMissing = y === null || y === undefined;
    if (xMissing || yMissing) {
      return Number(xMissing) - Number(yMissing);
    }
    if (typeof x === 'number' && typeof y === 'number') {
      return sign * (x - y);
    }
    return sign * collator.compare(String(x), String(y));
  });
}

/** The column best value of a metric for highlighting: the row refs holding the min and max. */
export function extremes(rows: readonly TableRow[], metric: string): { min: string; max: string } | null {
  const points = rows
    .map(row => ({ ref: row.ref, value: row.metrics[metric] }))
    .filter((point): point is { ref: string; value: number } => typeof point.value === 'number');
  if (points.length < 2) {
    return null;
  }
  const min = points.reduce((best, point) => (point.value < best.value ? point : best));
  const max = points.reduce((best, point) => (point.value > best.value ? point : best));
  return min.value === max.value ? null : { min: min.ref, max: max.ref };
}

/** What the charts start with: the first metric, against the first parameter that varies. */
export function chartDefaults(data: RunsTableData): { metric: string | null; by: string | null } {
  return { metric: data.metrics[0] ?? null, by: data.varying[0] ?? null };
}
