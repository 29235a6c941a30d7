/**
 * The "Runs" sidebar: a notebook filter, a refresh button and the list of recorded runs, of
 * which one or two can be selected (click, Ctrl/Cmd-click or checkbox) to compare, and queued
 * or running ones cancelled. Rows update live from `/mlx/events`; a slow poll is the safety net.
 */
import { ServerConnection } from '@jupyterlab/services';
import {
  caretDownEmptyIcon,
  refreshIcon,
  SidePanel,
  Toolbar,
  ToolbarButton
} from '@jupyterlab/ui-components';
import type { Message } from '@lumino/messaging';
import { ISignal, Signal } from '@lumino/signaling';
import { Panel, Widget } from '@lumino/widgets';

import {
  cancelRun,
  listNotebooks,
  listRuns,
  MLXApiError,
  NotebookSummary,
  RunPage,
  RunRecord
} from './api';
import type { MLXEvent } from './eventStream';
import { runsIcon } from './icon';
import { LiveUpdates } from './liveUpdates';
import {
  applyProgress,
  applyRun,
  countLabel,
  filterRows,
  isCancellable,
  RunRow,
  toRows
} from './model';
import {
  emptyMessage,
  errorMessage,
  message,
  renderRow,
  RowCancelState
} from './rows';
import { pruneSelected, selectOnly, toggleSelected } from './selection';

export const PANEL_ID = 'jupyter-mlx-panel';

/** How many runs the panel asks for. */
const PAGE_SIZE = 50;

/** The run list's state: what the list area shows. */
type ListState =
  | { kind: 'loading' }
  | { kind: 'error'; message: string }
  | { kind: 'runs'; page: RunPage };

/**
 * The sidebar panel. While visible it follows `/mlx/events` and refreshes every
 * `refreshInterval` ms, and never has two list requests in flight: a refresh asked for
 * meanwhile runs once the current one ends.
 */
export class RunsPanel extends SidePanel {
  constructor(options: RunsPanel.IOptions = {}) {
    super({ content: new Panel() });
    this._settings = options.serverSettings ?? ServerConnection.makeSettings();
    this._interval = options.refreshInterval ?? 5000;
    this._live = new LiveUpdates(
      event => this._onEvent(event),
      () => void this.refresh(), // catch up on what happened while disconnected
      this._settings
    );
    this.id = PANEL_ID;
    this.addClass('jp-mlx-panel');
    this.title.icon = runsIcon;
    this.title.caption = 'jupyter_mlx runs';

    const heading = new Widget({ node: document.createElement('h2') });
    heading.node.textContent = 'Runs';
    this.header.addWidget(heading);

    this._filter = createSelect();
    this._filter.select.addEventListener('change', () => this._onFilter());
    this.toolbar.addItem('notebook', this._filter.widget);
    this.toolbar.addItem('spacer', Toolbar.createSpacerItem());
    this._count.addClass('jp-mlx-count');
    this.header.addWidget(this._count);
    const refresh: ToolbarButton = new ToolbarButton({
      icon: refreshIcon,
      className: 'jp-mlx-refresh',
      tooltip: 'Refresh the runs',
      onClick: () => {
        refresh.pressed = false; // a ToolbarButton toggles on click; this one only acts
        void this.refresh();
      }
    });
    this.toolbar.addItem('refresh', refresh);

    this._list.addClass('jp-mlx-list');
    this._list.node.setAttribute('role', 'listbox');
    this._list.node.setAttribute('aria-multiselectable', 'true');
    this._list.node.setAttribute('aria-label', 'Runs');
    this._list.node.tabIndex = 0; // focusable, so the panel's keyboard shortcuts apply
    this._list.node.addEventListener('click', event => this._onClick(event));
    this.addWidget(this._list);
    this._render();
  }

  /** Fetch the notebooks and runs again: now, or right after the request in flight. */
  refresh(): Promise<void> {
    if (this._inFlight) {
      this._again = true;
      return this._inFlight;
    }
    this._inFlight = this._load().finally(() => {
      this._inFlight = null;
      if (this._again && !this.isDisposed) {
        this._again = false;
        void this.refresh();
      }
    });
    return this._inFlight;
  }

  /** The selected runs, in the order they were picked (at most two). */
  get selectedRuns(): RunRecord[] {
    const runs = this._state.kind === 'runs' ? this._state.page.runs : [];
    return this._selected
      .map(id => runs.find(run => run.id === id))
      .filter((run): run is RunRecord => run !== undefined);
  }

  /** The notebook chosen in the filter, or '' for all notebooks. */
  get selectedNotebook(): string {
    return this._filter.select.value;
  }

  /** Emitted when the filter's notebook changes. */
  get notebookChanged(): ISignal<this, string> {
    return this._notebookChanged;
  }

  /** Emitted when the selection changes. */
  get selectionChanged(): ISignal<this, RunRecord[]> {
    return this._selectionChanged;
  }

  dispose(): void {
    this._stopUpdates();
    super.dispose();
  }

  protected onAfterAttach(msg: Message): void {
    super.onAfterAttach(msg);
    if (this.isVisible) {
      this._startPolling();
    }
  }

  protected onAfterShow(msg: Message): void {
    super.onAfterShow(msg);
    this._startPolling();
  }

  protected onBeforeHide(msg: Message): void {
    this._stopUpdates();
    super.onBeforeHide(msg);
  }

  protected onBeforeDetach(msg: Message): void {
    this._stopUpdates();
    super.onBeforeDetach(msg);
  }

  private async _load(): Promise<void> {
    try {
      this._setNotebooks(await listNotebooks(this._settings));
      const notebook = this._filter.select.value;
      const page = await listRuns(
        { notebook: notebook || undefined, limit: PAGE_SIZE },
        this._settings
      );
      if (notebook !== this._filter.select.value) {
        this._again = true; // the filter changed meanwhile: this page is stale
        return;
      }
      this._state = { kind: 'runs', page };
    } catch (reason) {
      const message =
        reason instanceof MLXApiError ? reason.message : String(reason);
      this._state = { kind: 'error', message };
    }
    if (!this.isDisposed) {
      this._render();
    }
  }

  /** Apply a live event to the loaded page; a new run of the shown notebook reloads the list. */
  private _onEvent(event: MLXEvent): void {
    if (this._state.kind !== 'runs' || this.isDisposed) {
      return;
    }
    const page = this._state.page;
    let next: RunPage | null;
    if (event.type === 'run') {
      next = applyRun(page, event.run);
      if (next && !isCancellable(event.run.status)) {
        this._cancels.delete(event.run.id);
      }
      const notebook = this._filter.select.value;
      if (!next && (!notebook || notebook === event.run.notebook)) {
        void this.refresh();
      }
    } else {
      next = applyProgress(page, event.progress);
    }
    if (next) {
      this._state = { kind: 'runs', page: next };
      this._render();
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
      for (const run of runs) {
        const next =
          this._state.kind === 'runs' ? applyRun(this._state.page, run) : null;
        if (next) {
          this._state = { kind: 'runs', page: next };
        }
      }
    } catch (reason) {
      const text = reason instanceof MLXApiError ? reason.message : String(reason);
      this._cancels.set(id, { error: `Cannot cancel: ${text}` });
    }
    if (!this.isDisposed) {
      this._render();
    }
  }

  /** Click: select the run; Ctrl/Cmd-click or its checkbox: add or remove it; cancel button: cancel. */
  private _onClick(event: MouseEvent): void {
    const target = event.target as HTMLElement;
    const item = target.closest<HTMLElement>('.jp-mlx-run');
    const id = item?.dataset.id;
    if (!id) {
      return;
    }
    if (target.closest('.jp-mlx-run-cancel')) {
      void this._cancel(id);
      return;
    }
    const toggle =
      event.ctrlKey || event.metaKey || target.classList.contains('jp-mlx-run-check');
    this._select(toggle ? toggleSelected(this._selected, id) : selectOnly(id));
  }

  private _select(ids: string[]): void {
    const changed = ids.join() !== this._selected.join();
    this._selected = ids;
    this._applySelection();
    if (changed) {
      this._selectionChanged.emit(this.selectedRuns);
    }
  }

  /** Mark the selected rows (and only them) in the DOM. */
  private _applySelection(): void {
    const rows = this._list.node.querySelectorAll<HTMLElement>('.jp-mlx-run');
    rows.forEach(row => {
      const selected = this._selected.includes(row.dataset.id ?? '');
      row.classList.toggle('jp-mod-selected', selected);
      row.setAttribute('aria-selected', String(selected));
      const check = row.querySelector<HTMLInputElement>('.jp-mlx-run-check');
      if (check) {
        check.checked = selected;
      }
    });
  }

  private _onFilter(): void {
    this._notebookChanged.emit(this.selectedNotebook);
    this._render(); // show the loaded runs of that notebook at once, then ask the server
    void this.refresh();
  }

  /** Offer "All notebooks" and each notebook with runs; a vanished selection falls back to all. */
  private _setNotebooks(notebooks: NotebookSummary[]): void {
    const select = this._filter.select;
    const selected = select.value;
    const values = ['', ...notebooks.map(summary => summary.notebook)];
    const current = Array.from(select.options, option => option.value);
    if (values.join('\n') !== current.join('\n')) {
      select.replaceChildren(
        new Option('All notebooks', ''),
        ...notebooks.map(
          summary => new Option(summary.notebook, summary.notebook)
        )
      );
    }
    select.value = values.includes(selected) ? selected : '';
    if (select.value !== selected) {
      this._notebookChanged.emit(select.value);
    }
  }

  private _render(): void {
    const state = this._state;
    if (state.kind === 'loading') {
      this._show('', 'loading', () => [
        message('jp-mlx-message', 'Loading runs…')
      ]);
    } else if (state.kind === 'error') {
      this._show('', `error:${state.message}`, () => [
        errorMessage(state.message)
      ]);
    } else {
      const rows = filterRows(toRows(state.page), this._filter.select.value);
      const total =
        rows.length < state.page.runs.length ? rows.length : state.page.total;
      if (rows.length) {
        this._showRows(countLabel(rows.length, total), rows);
      } else {
        this._show(countLabel(0, total), 'empty', () => [emptyMessage()]);
      }
    }
    const listed = state.kind === 'runs' ? Array.from(
      this._list.node.querySelectorAll<HTMLElement>('.jp-mlx-run'),
      row => row.dataset.id ?? ''
    ) : this._selected;
    this._select(pruneSelected(this._selected, listed));
  }

  /** Replace the list's content, unless it would look the same (keeps hover and selection). */
  private _show(count: string, key: string, build: () => HTMLElement[]): void {
    this._count.node.textContent = count;
    this._rowKeys.clear();
    if (key !== this._shown) {
      this._shown = key;
      this._list.node.replaceChildren(...build());
    }
  }

  /** Show run rows, replacing only the rows that changed when the order is the same. */
  private _showRows(count: string, rows: RunRow[]): void {
    this._count.node.textContent = count;
    const keyed = rows.map(row => {
      const cancel: RowCancelState = isCancellable(row.status)
        ? this._cancels.get(row.id) ?? {}
        : {};
      return { row, cancel, key: JSON.stringify([row, cancel]) };
    });
    const order = rows.map(row => row.id).join();
    const nodes = Array.from(
      this._list.node.querySelectorAll<HTMLElement>(':scope > .jp-mlx-run')
    );
    if (this._shown === `rows:${order}` && nodes.length === rows.length) {
      keyed.forEach(({ row, cancel, key }, index) => {
        if (this._rowKeys.get(row.id) !== key) {
          this._rowKeys.set(row.id, key);
          nodes[index].replaceWith(renderRow(row, cancel));
        }
      });
      return;
    }
    this._shown = `rows:${order}`;
    this._rowKeys = new Map(keyed.map(({ row, key }) => [row.id, key]));
    this._list.node.replaceChildren(
      ...keyed.map(({ row, cancel }) => renderRow(row, cancel))
    );
  }

  /** Refresh now, follow the events, and poll every interval while visible (a tick never
   * queues behind a request). */
  private _startPolling(): void {
    void this.refresh();
    this._stopUpdates();
    this._live.start();
    this._timer = window.setInterval(() => {
      if (!this._inFlight) {
        void this.refresh();
      }
    }, this._interval);
  }

  private _stopUpdates(): void {
    this._live.stop();
    if (this._timer !== null) {
      window.clearInterval(this._timer);
      this._timer = null;
    }
  }

  private _settings: ServerConnection.ISettings;
  private _interval: number;
  private _filter: { widget: Widget; select: HTMLSelectElement };
  private _count = new Widget({ node: document.createElement('span') });
  private _list = new Widget({ node: document.createElement('ul') });
  private _state: ListState = { kind: 'loading' };
  private _shown = '';
  private _inFlight: Promise<void> | null = null;
  private _again = false;
  private _timer: number | null = null;
  private _selected: string[] = [];
  private _live: LiveUpdates;
  private _cancels = new Map<string, RowCancelState>();
  private _rowKeys = new Map<string, string>();
  private _selectionChanged = new Signal<this, RunRecord[]>(this);
  private _notebookChanged = new Signal<this, string>(this);
}

export namespace RunsPanel {
  export interface IOptions {
    /** The Jupyter server to ask; default: the page's. */
    serverSettings?: ServerConnection.ISettings;
    /** Milliseconds between safety-net refreshes while the panel is visible (default 5 s). */
    refreshInterval?: number;
  }
}

/** A JupyterLab-styled `<select>` in a toolbar item. */
function createSelect(): { widget: Widget; select: HTMLSelectElement } {
  const widget = new Widget();
  widget.addClass('jp-HTMLSelect');
  widget.addClass('jp-DefaultStyle');
  widget.addClass('jp-mlx-filter');
  const select = document.createElement('select');
  select.setAttribute('aria-label', 'Notebook');
  select.title = 'Show the runs of one notebook';
  select.append(new Option('All notebooks', ''));
  widget.node.append(
    select,
    caretDownEmptyIcon.element({
      tag: 'span',
      stylesheet: 'select',
      right: '4px',
      top: '4px'
    })
  );
  return { widget, select };
}
