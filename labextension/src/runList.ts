/**
 * The Runs section of the sidebar: a filter box, a sort menu, and a virtualized list of the
 * matching runs that renders only the rows in view and asks the server only for their pages, so
 * ten thousand runs scroll as smoothly as ten.
 */
import { ServerConnection } from '@jupyterlab/services';
import { caretDownEmptyIcon } from '@jupyterlab/ui-components';
import type { Message } from '@lumino/messaging';
import { ISignal, Signal } from '@lumino/signaling';
import { Widget } from '@lumino/widgets';

import { cancelRun, getLaunchForm, listRuns, MLXApiError, RunRecord } from './api';
import { h } from './dom';
import type { MLXEvent } from './eventStream';
import { countLabel, isCancellable, toRow } from './model';
import {
  emptyMessage,
  errorMessage,
  message,
  placeholderRow,
  renderRow,
  RowCancelState
} from './rows';
import {
  DEFAULT_QUERY,
  ListQuery,
  RunWindow,
  sortChoices,
  sortedMetric,
  visibleRange
} from './runWindow';
import { selectOnly, toggleSelected } from './selection';

/** Height of one run row in pixels (the CSS sets rows to it). */
export const ROW_HEIGHT = 84;

/** Milliseconds the filter waits for typing to pause. */
const FILTER_DELAY = 250;

export class RunList extends Widget {
  constructor(options: RunList.IOptions) {
    super();
    this._settings = options.serverSettings;
    this._window = new RunWindow(options.pageSize ?? 100);
    this.addClass('jp-mlx-runs');
    this.title.label = 'Runs';

    this._search = h('input', 'jp-mlx-search-input');
    this._search.type = 'search';
    this._search.placeholder = 'Filter: C>0.5 accuracy>=0.9 failed';
    this._search.title =
      'Filter the runs: words match the notebook, status, user, parameters, tags or error; ' +
      'name=value, name>value … compare a parameter or metric (metrics.x, params.x), status, version, user, tag';
    this._search.spellcheck = false;
    this._search.setAttribute('aria-label', 'Filter runs');
    this._search.addEventListener('input', () => this._onFilterInput());
    this._search.addEventListener('keydown', event => {
      if (event.key === 'Enter') {
        this._applyFilter();
      }
    });
    this._sort = h('select', 'jp-mlx-sort-select');
    this._sort.title = 'Sort the runs by';
    this._sort.setAttribute('aria-label', 'Sort runs by');
    this._sort.addEventListener('change', () => this._setQuery({ sort: this._sort.value }));
    this._order = h('button', 'jp-mlx-order jp-mlx-button');
    this._order.type = 'button';
    this._order.addEventListener('click', () =>
      this._setQuery({ order: this._window.query.order === 'desc' ? 'asc' : 'desc' })
    );
    this._problem = h('div', 'jp-mlx-filter-error');
    this._problem.setAttribute('role', 'alert');
    const sortBox = h(
      'span',
      'jp-mlx-sort jp-HTMLSelect jp-DefaultStyle',
      this._sort,
      caretDownEmptyIcon.element({ tag: 'span', stylesheet: 'select', right: '4px', top: '4px' })
    );
    this.node.append(
      h('div', 'jp-mlx-controls', options.notebookChooser ?? '', sortBox, this._order),
      h('div', 'jp-mlx-controls jp-mlx-search', this._search),
      this._problem
    );

    this._scroller = h('div', 'jp-mlx-scroller');
    this._scroller.tabIndex = 0; // focusable, so the panel's keyboard shortcuts apply
    this._spacer = h('div', 'jp-mlx-spacer');
    this._list = h('ul', 'jp-mlx-list');
    this._list.setAttribute('role', 'listbox');
    this._list.setAttribute('aria-multiselectable', 'true');
    this._list.setAttribute('aria-label', 'Runs');
    this._list.style.setProperty('--jp-mlx-row-height', `${ROW_HEIGHT}px`);
    this._spacer.append(this._list);
    this._scroller.append(this._spacer);
    this.node.append(this._scroller);
    this._scroller.addEventListener('scroll', () => this._scheduleRender(), { passive: true });
    this._list.addEventListener('click', event => this._onClick(event));
    this._list.addEventListener('dblclick', event => this._onDoubleClick(event));
    this._updateSortMenu();
    this._render();
  }

  /** Apply the user's settings: runs per request, metrics per row. */
  configure(options: { pageSize?: number; metricsInRow?: number }): void {
    if (options.metricsInRow !== undefined && options.metricsInRow !== this._metricsInRow) {
      this._metricsInRow = options.metricsInRow;
      this._rowKeys.clear();
      this._render();
    }
    if (options.pageSize !== undefined && options.pageSize !== this._window.pageSize) {
      const query = this._window.query;
      this._window = new RunWindow(options.pageSize);
      this._window.setQuery(query);
      this._updateSortMenu();
      void this.refresh();
    }
  }

  /** The list's query: notebook, filter and sort. */
  get query(): ListQuery {
    return this._window.query;
  }

  /** How many runs match, null until known. */
  get total(): number | null {
    return this._window.total;
  }

  /** The selected runs, in the order they were picked. */
  get selectedRuns(): RunRecord[] {
    return [...this._selected.values()];
  }

  /** Emitted when the selection changes. */
  get selectionChanged(): ISignal<this, RunRecord[]> {
    return this._selectionChanged;
  }

  /** Emitted with a run to open (double-click, a failure's link): `cell` is the cell to show. */
  get openRequested(): ISignal<this, { run: RunRecord; cell: number | null }> {
    return this._openRequested;
  }

  /** Emitted when the count label changes. */
  get countChanged(): ISignal<this, string> {
    return this._countChanged;
  }

  /** The run of a row's element (for context menus), if loaded. */
  runOf(element: Element | null): RunRecord | undefined {
    const id = element?.closest<HTMLElement>('.jp-mlx-run')?.dataset.id;
    return id ? this.runById(id) : undefined;
  }

  /** A loaded or selected run by id. */
  runById(id: string): RunRecord | undefined {
    for (const run of this._window.loaded()) {
      if (run.id === id) {
        return run;
      }
    }
    return this._selected.get(id);
  }

  /** Show the runs of `notebook` ('' for all); a new notebook clears the selection. */
  setNotebook(notebook: string): void {
    if (notebook !== this._window.query.notebook && this._selected.size) {
      this._selected.clear();
      this._selectionChanged.emit([]);
    }
    this._setQuery({ notebook });
  }

  /** Fetch the rows in view again: now, or right after the fetch in flight. */
  refresh(): Promise<void> {
    if (this._inFlight) {
      this._again = true;
      return this._inFlight;
    }
    this._window.invalidate();
    this._inFlight = this._fetchVisible().finally(() => {
      this._inFlight = null;
      if (this._again && !this.isDisposed) {
        this._again = false;
        void this.refresh();
      }
    });
    return this._inFlight;
  }

  /** Apply a live event; a run not loaded that may belong here refreshes the list. */
  applyEvent(event: MLXEvent): void {
    if (this.isDisposed) {
      return;
    }
    if (event.type === 'run') {
      const run = event.run;
      if (this._selected.has(run.id)) {
        this._selected.set(run.id, run);
      }
      if (!isCancellable(run.status)) {
        this._cancels.delete(run.id);
      }
      const known = this._window.applyRun(run);
      const notebook = this._window.query.notebook;
      if (!known && (!notebook || notebook === run.notebook)) {
        void this.refresh();
      } else if (known && this._window.query.filter.trim()) {
        void this.refresh(); // it may no longer match the filter
      }
      if (known) {
        this._render();
      }
    } else if (this._window.applyProgress(event.progress)) {
      this._render();
    }
  }

  protected onAfterAttach(msg: Message): void {
    super.onAfterAttach(msg);
    this._render();
  }

  protected onResize(msg: Widget.ResizeMessage): void {
    super.onResize(msg);
    this._scheduleRender();
  }

  protected onAfterShow(msg: Message): void {
    super.onAfterShow(msg);
    this._scheduleRender();
  }

  private _setQuery(change: Partial<ListQuery>): void {
    const query = { ...this._window.query, ...change };
    if (!this._window.setQuery(query)) {
      return;
    }
    this._problem.textContent = '';
    this._scroller.scrollTop = 0;
    if (query.notebook && !this._defaults.has(query.notebook)) {
      void this._loadDefaults(query.notebook);
    }
    this._updateSortMenu();
    this._render();
    void this.refresh();
  }

  private _onFilterInput(): void {
    if (this._filterTimer !== null) {
      window.clearTimeout(this._filterTimer);
    }
    this._filterTimer = window.setTimeout(() => this._applyFilter(), FILTER_DELAY);
  }

  private _applyFilter(): void {
    if (this._filterTimer !== null) {
      window.clearTimeout(this._filterTimer);
      this._filterTimer = null;
    }
    this._setQuery({ filter: this._search.value });
  }

  /** The notebook's parameter defaults (as runs record them), so rows show only what differs. */
  private async _loadDefaults(notebook: string): Promise<void> {
    this._defaults.set(notebook, {});
    try {
      const form = await getLaunchForm(notebook, this._settings);
      this._defaults.set(
        notebook,
        Object.fromEntries(
          form.parameters.map(parameter => [parameter.name, parameter.expression ?? parameter.default])
        )
      );
      this._rowKeys.clear();
      this._render();
    } catch {
      // a notebook deleted since its runs: rows show every parameter
    }
  }

  /** Load the pages of the rows in view that are missing or stale. */
  private async _fetchVisible(): Promise<void> {
    const [first, last] = this._range();
    const pages = this._window.missing(this._window.pagesFor(first, last));
    await Promise.all(pages.map(page => this._fetchPage(page)));
  }

  private async _fetchPage(index: number): Promise<void> {
    // a request in flight answers for this one only if nothing changed since it was made
    const key = `${this._window.freshness}:${index}`;
    const pending = this._fetching.get(key);
    if (pending) {
      return pending;
    }
    const ticket = this._window.ticket();
    const generation = ticket.generation;
    const fetch = (async () => {
      try {
        const page = await listRuns(
          this._window.request(index, index === 0),
          this._settings
        );
        if (this._window.put(index, page, ticket)) {
          this._error = '';
          if (this._search.value.trim() === this._window.query.filter.trim()) {
            this._problem.textContent = ''; // (else: the runs of the last good filter, under its error)
          }
          this._lastGood = this._window.query;
          if (index === 0) {
            this._updateSortMenu();
          }
        }
      } catch (reason) {
        const notebook = this._window.query.notebook;
        if (
          reason instanceof MLXApiError &&
          reason.error === 'not_found' &&
          notebook &&
          generation === this._window.generation
        ) {
          // a notebook without runs yet (say, the one just opened): an empty list, not an error
          this._error = '';
          this._window.put(index, { runs: [], total: 0, limit: this._window.pageSize, offset: 0 }, ticket);
        } else if (generation === this._window.generation) {
          const text = reason instanceof MLXApiError ? reason.message : String(reason);
          if (reason instanceof MLXApiError && reason.error === 'invalid_request') {
            // a bad filter: say so next to it, and keep showing the runs of the last good one
            this._problem.textContent = text;
            if (this._lastGood && this._window.setQuery(this._lastGood)) {
              void this.refresh();
            }
          } else {
            this._error = text;
          }
        }
      } finally {
        this._fetching.delete(key);
      }
      if (!this.isDisposed) {
        this._render();
      }
    })();
    this._fetching.set(key, fetch);
    return fetch;
  }

  private _range(): [number, number] {
    const total = this._window.total ?? 0;
    return visibleRange(
      this._scroller.scrollTop,
      this._scroller.clientHeight || ROW_HEIGHT * 10,
      ROW_HEIGHT,
      total
    );
  }

  private _scheduleRender(): void {
    if (this._frame !== null) {
      return;
    }
    this._frame = window.requestAnimationFrame(() => {
      this._frame = null;
      this._render();
      void this._fetchVisible();
    });
  }

  /** Draw the rows in view (or the loading, error or empty message) and the count. */
  private _render(): void {
    const total = this._window.total;
    let count = '';
    if (this._error && total !== null) {
      this._problem.textContent = `Cannot refresh the runs: ${this._error}`;
    }
    if (this._error && total === null) {
      this._showMessage(`error:${this._error}`, () => errorMessage(this._error));
    } else if (total === null) {
      this._showMessage(
        this._problem.textContent ? 'problem' : 'loading',
        () => message('jp-mlx-message', this._problem.textContent ? '' : 'Loading runs…')
      );
    } else if (total === 0) {
      count = countLabel(0, 0);
      const { filter, notebook } = this._window.query;
      const filtered = filter.trim() !== '';
      this._showMessage(`empty:${filtered}:${notebook}`, () =>
        filtered
          ? message('jp-mlx-message jp-mlx-empty', 'No runs match the filter.')
          : emptyMessage(notebook)
      );
    } else {
      count = countLabel(total, total);
      this._showRows(total);
    }
    if (this._selected.size) {
      count += ` · ${this._selected.size} selected`;
    }
    if (count !== this._count) {
      this._count = count;
      this._countChanged.emit(count);
    }
  }

  private _showMessage(key: string, build: () => HTMLElement): void {
    this._spacer.style.height = '';
    this._list.style.top = '0px';
    this._rowKeys.clear();
    if (this._shown !== key) {
      this._shown = key;
      this._list.replaceChildren(build());
    }
  }

  /** Render rows `first`..`last` at their place; rows that look the same keep their element. */
  private _showRows(total: number): void {
    const [first, last] = this._range();
    this._spacer.style.height = `${total * ROW_HEIGHT}px`;
    this._list.style.top = `${first * ROW_HEIGHT}px`;
    const query = this._window.query;
    const defaults = this._defaults.get(query.notebook);
    const firstMetric = sortedMetric(query.sort);
    const previous = this._rowKeys;
    const next = new Map<string, HTMLElement>();
    const nodes: HTMLElement[] = [];
    for (let index = first; index <= last; index++) {
      const run = this._window.at(index);
      if (!run) {
        nodes.push(placeholderRow());
        continue;
      }
      const cancel: RowCancelState = isCancellable(run.status)
        ? this._cancels.get(run.id) ?? {}
        : {};
      const row = toRow(run, {
        defaults: query.notebook ? defaults : undefined,
        firstMetric,
        maxMetrics: this._metricsInRow
      });
      const key = JSON.stringify([row, cancel]);
      const node = previous.get(key) ?? renderRow(row, cancel);
      node.dataset.index = String(index);
      this._mark(node);
      next.set(key, node);
      nodes.push(node);
    }
    this._rowKeys = next;
    this._shown = 'rows';
    const current = this._list.children;
    const same =
      current.length === nodes.length && nodes.every((node, index) => current[index] === node);
    if (!same) {
      this._list.replaceChildren(...nodes);
    }
  }

  private _mark(node: HTMLElement): void {
    const selected = this._selected.has(node.dataset.id ?? '');
    node.classList.toggle('jp-mod-selected', selected);
    node.setAttribute('aria-selected', String(selected));
    const check = node.querySelector<HTMLInputElement>('.jp-mlx-run-check');
    if (check) {
      check.checked = selected;
    }
  }

  private _updateSortMenu(): void {
    const query = this._window.query;
    const choices = sortChoices(this._window.keys, query.sort);
    const signature = choices.map(choice => choice.value).join('\n');
    if (signature !== this._sortSignature) {
      this._sortSignature = signature;
      this._sort.replaceChildren(...choices.map(choice => new Option(choice.label, choice.value)));
    }
    this._sort.value = query.sort;
    const descending = query.order === 'desc';
    this._order.textContent = descending ? '↓' : '↑';
    this._order.title = descending
      ? 'Descending (newest, highest first): click for ascending'
      : 'Ascending (oldest, lowest first): click for descending';
    this._order.setAttribute('aria-label', this._order.title);
  }

  /** Click: select the run; Ctrl/Cmd-click or checkbox: add or remove it; cancel; the failure: open. */
  private _onClick(event: MouseEvent): void {
    const target = event.target as HTMLElement;
    const run = this.runOf(target);
    if (!run) {
      return;
    }
    if (target.closest('.jp-mlx-run-cancel')) {
      void this._cancel(run.id);
      return;
    }
    if (target.closest('.jp-mlx-run-failure')) {
      this._openRequested.emit({ run, cell: run.error?.cell_index ?? null });
      return;
    }
    if (target.closest('.jp-mlx-run-more')) {
      return; // the panel opens the context menu
    }
    const toggle =
      event.ctrlKey || event.metaKey || target.classList.contains('jp-mlx-run-check');
    const ids = toggle ? toggleSelected([...this._selected.keys()], run.id) : selectOnly(run.id);
    this._select(ids, run);
  }

  private _onDoubleClick(event: MouseEvent): void {
    const target = event.target as HTMLElement;
    const run = this.runOf(target);
    if (run && !target.closest('button, input')) {
      this._openRequested.emit({ run, cell: run.error?.cell_index ?? null });
    }
  }

  private _select(ids: string[], clicked: RunRecord): void {
    const next = new Map<string, RunRecord>();
    for (const id of ids) {
      const run = id === clicked.id ? clicked : this._selected.get(id) ?? this.runById(id);
      if (run) {
        next.set(id, run);
      }
    }
    const changed = [...next.keys()].join() !== [...this._selected.keys()].join();
    this._selected = next;
    this._list.querySelectorAll<HTMLElement>('.jp-mlx-run').forEach(node => this._mark(node));
    if (changed) {
      this._render();
      this._selectionChanged.emit(this.selectedRuns);
    }
  }

  /** Ask the server to cancel a run; the row shows the failure, or the runs it cancelled. */
  private async _cancel(id: string): Promise<void> {
    if (this._cancels.get(id)?.pending) {
      return;
    }
    this._cancels.set(id, { pending: true });
    this._render();
    try {
      const runs = await cancelRun(id, this._settings);
      this._cancels.delete(id);
      runs.forEach(run => this._window.applyRun(run));
    } catch (reason) {
      const text = reason instanceof MLXApiError ? reason.message : String(reason);
      this._cancels.set(id, { error: `Cannot cancel: ${text}` });
    }
    if (!this.isDisposed) {
      this._render();
    }
  }

  private _settings: ServerConnection.ISettings;
  private _window: RunWindow;
  /** The last query the server answered: shown again when a new filter is refused. */
  private _lastGood: ListQuery | null = null;
  private _metricsInRow = 3;
  private _search: HTMLInputElement;
  private _sort: HTMLSelectElement;
  private _sortSignature = '';
  private _order: HTMLButtonElement;
  private _problem: HTMLElement;
  private _scroller: HTMLElement;
  private _spacer: HTMLElement;
  private _list: HTMLElement;
  private _shown = '';
  private _count = '';
  private _error = '';
  private _frame: number | null = null;
  private _filterTimer: number | null = null;
  private _inFlight: Promise<void> | null = null;
  private _again = false;
  private _fetching = new Map<string, Promise<void>>();
  private _rowKeys = new Map<string, HTMLElement>();
  private _selected = new Map<string, RunRecord>();
  private _cancels = new Map<string, RowCancelState>();
  private _defaults = new Map<string, Record<string, unknown>>();
  private _selectionChanged = new Signal<this, RunRecord[]>(this);
  private _openRequested = new Signal<this, { run: RunRecord; cell: number | null }>(this);
  private _countChanged = new Signal<this, string>(this);
}

export namespace RunList {
  export interface IOptions {
    serverSettings: ServerConnection.ISettings;
    /** Runs per request (default 100). */
    pageSize?: number;
    /** An element shown first in the controls (the panel's notebook chooser). */
    notebookChooser?: HTMLElement;
  }
}

export { DEFAULT_QUERY };
