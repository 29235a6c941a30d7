/**
 * The run list's data: which query the panel shows (notebook, filter, sort) and the pages of it
 * loaded so far, so a virtualized list of any length asks the server only for the rows in view.
 * Pure: no DOM, no HTTP.
 */
import type { RunPage, RunQuery, RunRecord } from './api';
import { applyProgress as progressOnPage, applyRun as runOnPage } from './model';

/** What the list shows. */
export interface ListQuery {
  /** Project-relative notebook path, or '' for every notebook. */
  notebook: string;
  /** The server's filter expression (`C>0.5 failed`), '' for none. */
  filter: string;
  /** `queued_at`, `version`, `duration`, `status`, `metrics.<name>`, `params.<name>`. */
  sort: string;
  order: 'asc' | 'desc';
}

export const DEFAULT_QUERY: ListQuery = { notebook: '', filter: '', sort: 'queued_at', order: 'desc' };

/** The parameter and metric names of the runs listed, for the sort menu. */
export interface ListKeys {
  parameters: string[];
  metrics: string[];
}

/** One sort choice of the menu. */
export interface SortChoice {
  value: string;
  label: string;
}

/**
 * What a page request was made under: answers are applied in the order the requests were made,
 * not the order they arrive (a slow answer to an older request never overwrites a newer one).
 */
export interface PageTicket {
  /** The query's generation: an answer to another query is dropped. */
  generation: number;
  /** Increases with every request of the window. */
  sequence: number;
}

/** Loaded pages of one query; rows not loaded yet read as undefined. */
export class RunWindow {
  constructor(readonly pageSize = 100) {}

  get query(): ListQuery {
    return this._query;
  }

  /** How many runs match the query; null before the first page arrives. */
  get total(): number | null {
    return this._total;
  }

  get keys(): ListKeys {
    return this._keys;
  }

  /** Show another query: forget the pages of the old one. Answers whether it changed. */
  setQuery(query: ListQuery): boolean {
    if (sameQuery(query, this._query)) {
      return false;
    }
    this._query = { ...query };
    this._pages.clear();
    this._answered.clear();
    this._stale.clear();
    this._total = null;
    this._totalAnswered = 0;
    this._generation += 1;
    this._freshness += 1;
    return true;
  }

  /** A number that changes with the query: a page requested under an older one is dropped. */
  get generation(): number {
    return this._generation;
  }

  /** A number that changes with the query and with every `invalidate`: a request made before
   * it changed cannot stand in for one made after (its answer may predate the change). */
  get freshness(): number {
    return this._freshness;
  }

  /** Take a ticket for a page request about to be made. */
  ticket(): PageTicket {
    this._sequence += 1;
    return { generation: this._generation, sequence: this._sequence };
  }

  /** The server request for page `index` of the current query. */
  request(index: number, withKeys = false): RunQuery {
    const query: RunQuery = {
      notebook: this._query.notebook || undefined,
      filter: this._query.filter.trim() || undefined,
      limit: this.pageSize,
      offset: index * this.pageSize
    };
    if (this._query.sort !== DEFAULT_QUERY.sort || this._query.order !== DEFAULT_QUERY.order) {
      query.sort = this._query.sort;
      query.order = this._query.order;
    }
    if (withKeys) {
      query.keys = true;
    }
    return query;
  }

  /** The pages that hold rows `first`..`last` (inclusive); all of page 0 before the total is known. */
  pagesFor(first: number, last: number): number[] {
    const end = this._total === null ? 0 : Math.min(last, this._total - 1);
    const pages: number[] = [];
    for (let page = Math.floor(Math.max(first, 0) / this.pageSize); page * this.pageSize <= end; page++) {
      pages.push(page);
    }
    return pages.length ? pages : [0];
  }

  /** Of `pages`, those not loaded (or loaded before the last `invalidate`). */
  missing(pages: number[]): number[] {
    return pages.filter(page => !this._pages.has(page) || this._stale.has(page));
  }

  /**
   * Store a page the server answered for the request of `ticket`. Ignored when the query changed
   * since, or when an answer to a later request of this page came first; the total (and the
   * keys) are those of the latest request answered, whichever page it was for.
   */
  put(index: number, page: RunPage & { keys?: ListKeys }, ticket: PageTicket): boolean {
    if (ticket.generation !== this._generation || ticket.sequence < (this._answered.get(index) ?? 0)) {
      return false;
    }
    this._pages.set(index, page.runs);
    this._answered.set(index, ticket.sequence);
    this._stale.delete(index);
    if (ticket.sequence < this._totalAnswered) {
      // a later request (of another page) told the total: these rows are older, fetch them again
      if (page.total !== this._total) {
        this._stale.add(index);
      }
      return true;
    }
    this._totalAnswered = ticket.sequence;
    if (page.total !== this._total) {
      // the number of matching runs changed: other pages are shifted, fetch them again
      this._total = page.total;
      for (const other of this._pages.keys()) {
        if (other !== index) {
          this._stale.add(other);
        }
      }
    }
    if (page.keys) {
      this._keys = page.keys;
    }
    return true;
  }

  /** The run at position `index`, if its page is loaded. */
  at(index: number): RunRecord | undefined {
    return this._pages.get(Math.floor(index / this.pageSize))?.[index % this.pageSize];
  }

  /** Every loaded run (for looking selected runs up by id). */
  *loaded(): IterableIterator<RunRecord> {
    for (const runs of this._pages.values()) {
      yield* runs;
    }
  }

  /** Mark every loaded page for a refetch; rows stay readable until the new pages arrive. */
  invalidate(): void {
    for (const page of this._pages.keys()) {
      this._stale.add(page);
    }
    this._freshness += 1;
  }

  /** Put `run` in place of the loaded record with its id; false when no loaded page has it. */
  applyRun(run: RunRecord): boolean {
    return this._update(page => runOnPage(page, run));
  }

  /** Set a loaded run's progress; false when no loaded page has it running. */
  applyProgress(progress: { run_id: string; cell: number; cells: number }): boolean {
    return this._update(page => progressOnPage(page, progress));
  }

  private _update(change: (page: RunPage) => RunPage | null): boolean {
    for (const [index, runs] of this._pages) {
      const next = change({ runs, total: runs.length, limit: this.pageSize, offset: 0 });
      if (next) {
        this._pages.set(index, next.runs);
        return true;
      }
    }
    return false;
  }

  private _query: ListQuery = { ...DEFAULT_QUERY };
  private _pages = new Map<number, RunRecord[]>();
  private _stale = new Set<number>();
  private _total: number | null = null;
  /** The sequence of the request whose answer set `_total`. */
  private _totalAnswered = 0;
  /** Per page, the sequence of the request whose answer is shown. */
  private _answered = new Map<number, number>();
  private _keys: ListKeys = { parameters: [], metrics: [] };
  private _generation = 0;
  private _freshness = 0;
  private _sequence = 0;
}

export function sameQuery(a: ListQuery, b: ListQuery): boolean {
  return (
    a.notebook === b.notebook &&
    a.filter.trim() === b.filter.trim() &&
    a.sort === b.sort &&
    a.order === b.order
  );
}

/** The sort menu: fixed orders, then each metric and parameter of the listed runs. */
export function sortChoices(keys: ListKeys, current: string): SortChoice[] {
  const choices: SortChoice[] = [
    { value: 'queued_at', label: 'Newest' },
    { value: 'version', label: 'Version' },
    { value: 'duration', label: 'Duration' },
    { value: 'status', label: 'Status' },
    ...keys.metrics.map(name => ({ value: `metrics.${name}`, label: `metric: ${name}` })),
    ...keys.parameters.map(name => ({ value: `params.${name}`, label: `param: ${name}` }))
  ];
  if (!choices.some(choice => choice.value === current)) {
    // keep a choice the keys no longer list (say, a metric of deleted runs) selectable
    choices.push({ value: current, label: sortLabel(current) });
  }
  return choices;
}

/** `metric: accuracy` for `metrics.accuracy`. */
export function sortLabel(sort: string): string {
  if (sort.startsWith('metrics.')) {
    return `metric: ${sort.slice('metrics.'.length)}`;
  }
  if (sort.startsWith('params.')) {
    return `param: ${sort.slice('params.'.length)}`;
  }
  return sort === 'queued_at' ? 'Newest' : sort.charAt(0).toUpperCase() + sort.slice(1);
}

/** The metric a sort is by, or null: rows show it first. */
export function sortedMetric(sort: string): string | null {
  return sort.startsWith('metrics.') ? sort.slice('metrics.'.length) : null;
}

/** Rows to render for a viewport: `[first, last]` with `overscan` rows either side, clamped. */
export function visibleRange(
  scrollTop: number,
  height: number,
  rowHeight: number,
  total: number,
  overscan = 8
): [number, number] {
  if (total <= 0) {
    return [0, -1];
  }
  const first = Math.max(0, Math.floor(scrollTop / rowHeight) - overscan);
  const last = Math.min(total - 1, Math.ceil((scrollTop + height) / rowHeight) + overscan);
  return [first, Math.max(first, last)];
}
