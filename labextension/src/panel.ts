/**
 * The jupyter_mlx sidebar: a notebook chooser and refresh button over an accordion whose first
 * section lists the runs (runList.ts); plugins add more sections (Endpoints). Rows update live
 * from `/mlx/events`; a slow poll is the safety net.
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
import { AccordionPanel, Widget } from '@lumino/widgets';

import { listNotebooks, NotebookSummary, RunRecord } from './api';
import { runsIcon } from './icon';
import { LiveUpdates } from './liveUpdates';
import { RunList } from './runList';

export const PANEL_ID = 'jupyter-mlx-panel';

/** A (re)connected event stream refreshes the list unless it was refreshed this recently (ms). */
const CATCH_UP_AFTER = 2000;

/**
 * The sidebar panel. While visible it follows `/mlx/events` and refreshes every
 * `refreshInterval` ms; its Runs section never has two refreshes in flight.
 */
export class RunsPanel extends SidePanel {
  constructor(options: RunsPanel.IOptions = {}) {
    super(); // content: an accordion, one pane per section (Runs, then what plugins add)
    this._settings = options.serverSettings ?? ServerConnection.makeSettings();
    this._interval = options.refreshInterval ?? 5000;
    this._filter = createSelect();
    this._filter.select.addEventListener('change', () => this._onNotebook());
    this._runs = new RunList({
      serverSettings: this._settings,
      pageSize: options.pageSize,
      notebookChooser: this._filter.widget.node
    });
    this._live = new LiveUpdates(
      event => this._runs.applyEvent(event),
      () => {
        // catch up on what happened while disconnected (not right after a refresh)
        if (Date.now() - this._lastRefresh > CATCH_UP_AFTER) {
          void this.refresh();
        }
      },
      this._settings
    );
    this.id = PANEL_ID;
    this.addClass('jp-mlx-panel');
    this.title.icon = runsIcon;
    this.title.caption = 'jupyter_mlx runs';

    const heading = new Widget({ node: document.createElement('h2') });
    heading.node.textContent = 'Notebook Runs';
    this.header.addWidget(heading);

    this.toolbar.addItem('spacer', Toolbar.createSpacerItem());
    this._count.addClass('jp-mlx-count');
    this.header.addWidget(this._count);
    this._runs.countChanged.connect((_, text) => (this._count.node.textContent = text));
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
    this.addWidget(this._runs);
  }

  /** Add a section below the runs; the runs keep three quarters of the height. */
  addWidget(widget: Toolbar.IWidgetToolbar): void {
    super.addWidget(widget);
    const content = this.content;
    if (content instanceof AccordionPanel && content.widgets.length > 1) {
      const others = content.widgets.length - 1;
      content.setRelativeSizes([3 * others, ...Array(others).fill(1)]);
    }
  }

  /** Apply the user's settings. */
  configure(settings: RunsPanel.ISettings): void {
    this._runs.configure(settings);
    if (settings.refreshInterval !== undefined && settings.refreshInterval !== this._interval) {
      this._interval = settings.refreshInterval;
      if (this._timer !== null) {
        this._startPolling();
      }
    }
  }

  /** The Runs section. */
  get runs(): RunList {
    return this._runs;
  }

  /** Fetch the notebooks and the runs in view again. */
  async refresh(): Promise<void> {
    this._lastRefresh = Date.now();
    await Promise.all([this._loadNotebooks(), this._runs.refresh()]);
  }

  /** The selected runs, in the order they were picked. */
  get selectedRuns(): RunRecord[] {
    return this._runs.selectedRuns;
  }

  /** The notebook chosen in the filter, or '' for all notebooks. */
  get selectedNotebook(): string {
    return this._filter.select.value;
  }

  /** Show the runs of `notebook` (one without runs yet too), as if chosen in the filter. */
  showNotebook(notebook: string): void {
    if (notebook === this._filter.select.value) {
      return;
    }
    this._ensureOption(notebook);
    this._filter.select.value = notebook;
    this._onNotebook();
  }

  /** Emitted when the filter's notebook changes. */
  get notebookChanged(): ISignal<this, string> {
    return this._notebookChanged;
  }

  /** Emitted when the selection changes. */
  get selectionChanged(): ISignal<RunList, RunRecord[]> {
    return this._runs.selectionChanged;
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

  private async _loadNotebooks(): Promise<void> {
    try {
      this._setNotebooks(await listNotebooks(this._settings));
    } catch {
      // the Runs section shows the server's message
    }
  }

  private _onNotebook(): void {
    this._notebookChanged.emit(this.selectedNotebook);
    this._runs.setNotebook(this.selectedNotebook);
  }

  /** Offer "All notebooks", each notebook with runs, and the one shown (runs or not). */
  private _setNotebooks(notebooks: NotebookSummary[]): void {
    const select = this._filter.select;
    const selected = select.value;
    const paths = notebooks.map(summary => summary.notebook);
    if (selected && !paths.includes(selected)) {
      paths.push(selected);
    }
    const values = ['', ...paths];
    const current = Array.from(select.options, option => option.value);
    if (values.join('\n') !== current.join('\n')) {
      select.replaceChildren(
        new Option('All notebooks', ''),
        ...paths.map(path => new Option(path, path))
      );
    }
    select.value = selected;
  }

  private _ensureOption(notebook: string): void {
    const select = this._filter.select;
    if (!Array.from(select.options).some(option => option.value === notebook)) {
      select.append(new Option(notebook, notebook));
    }
  }

  /** Refresh now, follow the events, and poll every interval while visible (a tick never
   * queues behind a request). */
  private _startPolling(): void {
    void this.refresh();
    this._stopUpdates();
    this._live.start();
    this._timer = window.setInterval(() => void this.refresh(), this._interval);
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
  private _runs: RunList;
  private _filter: { widget: Widget; select: HTMLSelectElement };
  private _count = new Widget({ node: document.createElement('span') });
  private _timer: number | null = null;
  private _lastRefresh = 0;
  private _live: LiveUpdates;
  private _notebookChanged = new Signal<this, string>(this);
}

export namespace RunsPanel {
  /** What the settings editor can change (see schema/plugin.json). */
  export interface ISettings {
    refreshInterval?: number;
    pageSize?: number;
    metricsInRow?: number;
  }

  export interface IOptions {
    /** The Jupyter server to ask; default: the page's. */
    serverSettings?: ServerConnection.ISettings;
    /** Milliseconds between safety-net refreshes while the panel is visible (default 5 s). */
    refreshInterval?: number;
    /** Runs per request of the list (default 100). */
    pageSize?: number;
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
