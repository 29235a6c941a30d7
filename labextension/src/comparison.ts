/**
 * Types of the comparison JSON that `GET /mlx/compare` answers
 * (`jupyter_mlx/diff/comparison.schema.json`, format version 1). Types only: no code.
 */

/** The verdict on a cell, an output or a metric. */
export type Judgement =
  | 'identical'
  | 'within_tolerance'
  | 'changed'
  | 'added'
  | 'removed'
  | 'ignored';

/** One side (A or B) of the comparison. */
export interface ComparisonHeader {
  label: 'A' | 'B';
  kind: 'run' | 'file';
  /** `NOTEBOOK@vN` for a run, the path for a file. */
  ref: string;
  notebook: string | null;
  run_id: string | null;
  version: number | null;
  status: string | null;
  started_at: string | null;
  finished_at: string | null;
  duration: number | null;
  git_commit: string | null;
  git_dirty: boolean | null;
  sweep_id: string | null;
  /** Who asked for the run; null for a file or a run recorded before users were (absent from older servers). */
  user?: string | null;
}

/**
 * Where a side's parameter value comes from: set by the run (`override`), the parameters cell's
 * literal (`default`), or a default expression's source text (`expression`); null: absent.
 */
export type ParameterOrigin = 'override' | 'default' | 'expression' | null;

/** A parameter on both sides: each side records every parameter's effective value. */
export interface ParameterChange {
  name: string;
  a: unknown;
  b: unknown;
  status: 'same' | 'changed' | 'added' | 'removed';
  origin_a: ParameterOrigin;
  origin_b: ParameterOrigin;
}

export interface SeriesDetail {
  name: string;
  steps_a: number;
  steps_b: number;
  max_abs_diff: number | null;
  first_difference_step: number | null;
  /** Points matched by step, or by 0-based position when some point has no step. */
  aligned_by: 'step' | 'position';
  /** Distinct steps (or positions) in either run. */
  steps_compared: number;
  /** The steps that make the verdict as ascending `[first, last]` ranges of logged steps (100 at most). */
  changed_steps: [number, number][];
  /** How many steps make the verdict, listed or not. */
  changed_steps_count: number;
}

export interface MetricChange {
  name: string;
  a: number | null;
  b: number | null;
  abs_change: number | null;
  rel_change: number | null;
  judgement: Judgement;
  threshold: { rtol: number; atol: number };
  series: SeriesDetail | null;
}

/** Text, stream and error outputs. */
export interface TextDetail {
  diff?: string;
  truncated?: boolean;
  normalized?: boolean;
  numbers?: {
    compared?: number;
    max_abs_diff?: number | null;
    max_rel_diff?: number | null;
  } | null;
  /** Errors only. */
  ename_a?: string | null;
  ename_b?: string | null;
  evalue_a?: string | null;
  evalue_b?: string | null;
}

export interface ImageDetail {
  mime?: string;
  size_a?: [number, number];
  size_b?: [number, number];
  size_changed?: boolean;
  changed_pixels?: number;
  changed_fraction?: number;
  similarity?: number;
  bbox?: number[] | null;
  /** Base64 PNG: the changed pixels. */
  mask?: string | null;
  error?: string;
}

export interface TableCellChange {
  row: string;
  column: string;
  a: unknown;
  b: unknown;
}

export interface TableDetail {
  shape_a?: number[];
  shape_b?: number[];
  columns_added?: string[];
  columns_removed?: string[];
  rows_added?: string[];
  rows_removed?: string[];
  cells_changed?: TableCellChange[];
  cells_changed_count?: number;
  cells_within_tolerance?: number;
  reordered?: string[];
}

/** A `log_metric` output. */
export interface MetricOutputDetail {
  name?: string | null;
  a?: unknown;
  b?: unknown;
  step_a?: number | null;
  step_b?: number | null;
}

/** Any detail: the fields of one kind, plus a free `note` when the kind itself changed. */
export type OutputDetail = TextDetail &
  ImageDetail &
  TableDetail &
  MetricOutputDetail & { note?: unknown };

export type OutputKind =
  | 'stream'
  | 'error'
  | 'image'
  | 'table'
  | 'text'
  | 'metric'
  | 'other';

export interface OutputPair {
  index_a: number | null;
  index_b: number | null;
  kind: OutputKind;
  mime: string | null;
  judgement: Judgement;
  detail: OutputDetail;
}

export interface CellComparison {
  index_a: number | null;
  index_b: number | null;
  id: string | null;
  cell_type: string;
  tags: string[];
  judgement: Judgement;
  source: { changed: boolean; diff: string | null };
  outputs: OutputPair[];
}

export type JudgementCounts = Record<Judgement, number>;

export interface ComparisonSummary {
  cells: JudgementCounts;
  outputs: JudgementCounts;
  sources_changed: number;
  parameters_changed: number;
  metrics_changed: number;
  errors_added: number;
  /** Absent from comparisons made before artifacts were kept. */
  artifacts?: JudgementCounts;
  inputs_changed?: number;
  /** The captured state's names by judgement; absent from comparisons made before captures. */
  state?: JudgementCounts;
  unexpected: string[];
  verdict: 'as_expected' | 'unexpected_changes';
}

/** The whole comparison of A and B. */
export interface Comparison {
  format: 'jupyter_mlx.comparison';
  version: 1;
  a: ComparisonHeader;
  b: ComparisonHeader;
  options: Record<string, unknown>;
  parameters: ParameterChange[];
  metrics: MetricChange[];
  environment: Record<string, unknown>;
  cells: CellComparison[];
  /** The files either run wrote (sorted by path); absent from older comparisons. */
  artifacts?: ArtifactComparison[];
  /** The project files each run saw when it started. */
  inputs?: InputChanges;
  /** The state each run captured for its functions; absent from older comparisons. */
  state?: StateComparison;
  summary: ComparisonSummary;
}

/** A name of a run's captured state: the object kept, or why it could not be. */
export type StateEntry =
  | { kind: string; size: number; sha256: string | null; module: string | null }
  | { not_capturable: string };

/** One name of either run's captured state, as each has it (null: absent), and the verdict. */
export interface StateObjectComparison {
  name: string;
  /** `module`, `function` or a type name (B's, else A's); null when not capturable. */
  kind: string | null;
  a: StateEntry | null;
  b: StateEntry | null;
  judgement: Judgement;
  /** How a changed one changed: content (SHA-256), module, became or stopped being not capturable. */
  change: 'content' | 'module' | 'not_capturable' | 'capturable' | null;
}

/** Whether a side captured its state, and if not why (or why its capture stopped early). */
export interface StateCapture {
  captured: boolean;
  note: string | null;
  functions: string[] | null;
}

/** The state the runs captured, compared name by name when both captured it. */
export interface StateComparison {
  known: boolean;
  a: StateCapture;
  b: StateCapture;
  objects: StateObjectComparison[];
  /** The state's packages whose version differs (informational). */
  packages: { name: string; a: string | null; b: string | null; status: 'changed' | 'added' | 'removed' }[];
}

/** How an artifact's content is compared when its hashes differ. */
export type ArtifactKind = 'table' | 'image' | 'json' | 'text' | 'binary';

/** A JSON value that changed, was added or removed, by JSON Pointer. */
export interface JsonValueChange {
  path: string;
  change: 'changed' | 'added' | 'removed';
  a: unknown;
  b: unknown;
}

/** The JSON comparer's detail, and the hash-only one's. */
export interface ArtifactOnlyDetail {
  compared_by?: 'hash' | 'json' | 'table' | string;
  changes?: JsonValueChange[];
  changes_count?: number;
  values_within_tolerance?: number;
}

/** One artifact path and its file in A and/or B (null where absent). */
export interface ArtifactComparison {
  path: string;
  kind: ArtifactKind;
  media_type: string | null;
  a: { size: number; sha256: string } | null;
  b: { size: number; sha256: string } | null;
  judgement: Judgement;
  detail: OutputDetail & ArtifactOnlyDetail;
}

export interface InputFile {
  size: number;
  mtime: number;
  sha256: string | null;
}

/** The project files added, removed or changed between the two runs' starts. */
export interface InputChanges {
  /** Both runs recorded their inputs. */
  known: boolean;
  changes: { path: string; status: 'changed' | 'added' | 'removed'; a: InputFile | null; b: InputFile | null }[];
  unchanged: number;
}

/** The parts of an nbformat 4 notebook the compare view reads. */
export interface NotebookOutput {
  output_type: string;
  name?: string;
  text?: string | string[];
  data?: Record<string, unknown>;
  ename?: string;
  evalue?: string;
}

export interface NotebookCell {
  cell_type: string;
  source: string | string[];
  outputs?: NotebookOutput[];
}

export interface NotebookContent {
  cells: NotebookCell[];
}
