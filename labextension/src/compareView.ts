/**
 * The compare view: a main-area widget showing two runs side by side, cell by cell, with a
 * toolbar to show only changed cells, jump to the next change and open the HTML report.
 */
import { MainAreaWidget } from '@jupyterlab/apputils';
import { ServerConnection } from '@jupyterlab/services';
import { caretDownIcon, launchIcon, ToolbarButton } from '@jupyterlab/ui-components';
import { Widget } from '@lumino/widgets';

import {
  comparisonReportUrl,
  getArtifactBlob,
  getComparison,
  getExecutedNotebook,
  MLXApiError
} from './api';
import { ArtifactsModel, buildArtifactsModel, imagePaths, visibleArtifacts } from './compareArtifacts';
import { buildStateModel, StateModel, visibleState } from './compareState';
import type { Comparison, NotebookContent } from './comparison';
import {
  buildCompareModel,
  changeOrder,
  CompareModel,
  compareTitle,
  nextChange,
  visibleCells,
  visibleMetrics,
  visibleParameters
} from './compareModel';
import {
  ArtifactImages,
  Notebooks,
  renderArtifacts,
  renderCell,
  renderInputs,
  renderHeader,
  renderMetrics,
  renderParameters,
  renderSection,
  renderState
} from './compareRender';
import { h } from './dom';
import { runsIcon } from './icon';

/** What the view shows: loading, the server's error, or the comparison. */
type ViewState =
  | { kind: 'loading' }
  | { kind: 'error'; message: string }
  | {
      kind: 'ready';
      model: CompareModel;
      notebooks: Notebooks;
      artifacts: ArtifactsModel;
      state: StateModel;
      /** The run ids of A and B, to fetch artifact images from. */
      runs: { a: string | null; b: string | null };
    };

/** The body of the compare view; `createCompareWidget` wraps it with its toolbar. */
export class CompareView extends Widget {
  constructor(options: CompareView.IOptions) {
    super();
    this._options = options;
    this._settings = options.serverSettings ?? ServerConnection.makeSettings();
    this.addClass('jp-mlx-compare');
    this.node.tabIndex = -1;
    this._render();
  }

  /** The refs compared, A then B. */
  get refs(): [string, string] {
    return [this._options.a.ref, this._options.b.ref];
  }

  /** The self-contained HTML report of the same comparison. */
  get reportUrl(): string {
    return comparisonReportUrl(this._options.a.ref, this._options.b.ref, {}, this._settings);
  }

  get onlyChanged(): boolean {
    return this._onlyChanged;
  }

  set onlyChanged(value: boolean) {
    if (value !== this._onlyChanged) {
      this._onlyChanged = value;
      this._current = null;
      this._render();
    }
  }

  /** Fetch the comparison and both executed notebooks, then show them. */
  async load(): Promise<void> {
    const { a, b } = this._options;
    const notebook = (id: string | null | undefined): Promise<NotebookContent | null> =>
      id ? getExecutedNotebook(id, this._settings).catch(() => null) : Promise.resolve(null);
    const early = [notebook(a.runId), notebook(b.runId)];
    try {
      const comparison = await getComparison(a.ref, b.ref, {}, this._settings);
      const [notebookA, notebookB] = await Promise.all([
        comparison.a.run_id === a.runId ? early[0] : notebook(comparison.a.run_id),
        comparison.b.run_id === b.runId ? early[1] : notebook(comparison.b.run_id)
      ]);
      this._state = {
        kind: 'ready',
        model: buildCompareModel(comparison),
        notebooks: { a: notebookA, b: notebookB },
        artifacts: buildArtifactsModel(comparison),
        state: buildStateModel(comparison),
        runs: { a: comparison.a.run_id, b: comparison.b.run_id }
      };
      void this._loadArtifactImages(comparison);
    } catch (reason) {
      const message = reason instanceof MLXApiError ? reason.message : String(reason);
      this._state = { kind: 'error', message };
    }
    if (!this.isDisposed) {
      this._render();
    }
  }

  dispose(): void {
    if (this.isDisposed) {
      return;
    }
    this._imageUrls.forEach(url => URL.revokeObjectURL(url));
    this._imageUrls = [];
    super.dispose();
  }

  /**
   * Fetch both runs' bytes of each changed image artifact (with the page's credentials) as
   * object URLs for the image pair; a side that cannot be read shows "no image".
   */
  private async _loadArtifactImages(comparison: Comparison): Promise<void> {
    if (this._state.kind !== 'ready') {
      return;
    }
    const { artifacts, runs } = this._state;
    const fetchImage = async (runId: string | null, path: string): Promise<string | null> => {
      if (!runId) {
        return null;
      }
      try {
        const url = URL.createObjectURL(await getArtifactBlob(runId, path, this._settings));
        this._imageUrls.push(url);
        return url;
      } catch {
        return null;
      }
    };
    const paths = imagePaths(artifacts.rows);
    const pairs = await Promise.all(
      paths.map(async path => {
        const [a, b] = await Promise.all([fetchImage(runs.a, path), fetchImage(runs.b, path)]);
        return [path, { a, b }] as const;
      })
    );
    if (this.isDisposed) {
      this._imageUrls.forEach(url => URL.revokeObjectURL(url));
      return;
    }
    this._artifactImages = new Map(pairs);
    if (paths.length) {
      this._render();
    }
  }

  /** Scroll to the next changed cell (wrapping); false when nothing changed. */
  nextChange(): boolean {
    if (this._state.kind !== 'ready') {
      return false;
    }
    const order = changeOrder(visibleCells(this._state.model, this._onlyChanged));
    this._current = nextChange(order, this._current);
    this.node
      .querySelectorAll('.jp-mlx-cell.jp-mlx-current')
      .forEach(node => node.classList.remove('jp-mlx-current'));
    const target = this._current
      ? this.node.querySelector<HTMLElement>(`.jp-mlx-cell[data-key="${this._current}"]`)
      : null;
    if (!target) {
      return false;
    }
    target.classList.add('jp-mlx-current');
    target.scrollIntoView({ block: 'start', behavior: 'smooth' });
    return true;
  }

  private _render(): void {
    const state = this._state;
    const [a, b] = this.refs;
    if (state.kind === 'loading') {
      this.node.replaceChildren(h('div', 'jp-mlx-message', `Comparing ${a} with ${b}…`));
    } else if (state.kind === 'error') {
      const alert = h(
        'div',
        'jp-mlx-error jp-mlx-compare-error',
        h('strong', '', `Cannot compare ${a} with ${b}`),
        h('div', '', state.message)
      );
      alert.setAttribute('role', 'alert');
      this.node.replaceChildren(alert);
    } else {
      const scroll = this.node.scrollTop;
      this.node.replaceChildren(...this._sections(state.model, state.notebooks, state.artifacts, state.state));
      this.node.scrollTop = scroll;
    }
  }

  private _sections(
    model: CompareModel,
    notebooks: Notebooks,
    artifacts: ArtifactsModel,
    state: StateModel
  ): HTMLElement[] {
    const toggle = (all: boolean, flip: () => void) => ({
      label: all ? 'Show differences only' : 'Show all',
      onClick: () => {
        flip();
        this._render();
      }
    });
    const parameters = visibleParameters(model, this._allParameters);
    const metrics = visibleMetrics(model, this._allMetrics);
    const cells = visibleCells(model, this._onlyChanged);
    const changedParameters = visibleParameters(model, false).length;
    const changedMetrics = visibleMetrics(model, false).length;
    return [
      renderHeader(model.header),
      renderSection(
        'Parameters',
        'jp-mlx-parameters',
        `${changedParameters} of ${model.parameters.length} differ`,
        changedParameters < model.parameters.length
          ? toggle(this._allParameters, () => (this._allParameters = !this._allParameters))
          : null,
        renderParameters(parameters)
      ),
      renderSection(
        'Metrics',
        'jp-mlx-metrics',
        `${changedMetrics} of ${model.metrics.length} differ`,
        changedMetrics < model.metrics.length
          ? toggle(this._allMetrics, () => (this._allMetrics = !this._allMetrics))
          : null,
        renderMetrics(metrics)
      ),
      ...this._artifactsSection(artifacts, toggle),
      ...this._stateSection(state, toggle),
      renderSection(
        'Cells',
        'jp-mlx-cells',
        this._onlyChanged
          ? `${cells.length} changed of ${model.cells.length}`
          : `${model.cells.length}`,
        null,
        ...(cells.length
          ? cells.map(cell => renderCell(cell, notebooks, 'side'))
          : [h('p', 'jp-mlx-muted', 'No cell changed.')])
      )
    ];
  }

  /** The Artifacts section (none for a comparison made before runs kept their files). */
  private _artifactsSection(
    artifacts: ArtifactsModel,
    toggle: (all: boolean, flip: () => void) => { label: string; onClick: () => void }
  ): HTMLElement[] {
    if (!artifacts.known && !artifacts.inputs) {
      return [];
    }
    const changed = visibleArtifacts(artifacts, false).length;
    const total = artifacts.rows.length;
    const content = [renderArtifacts(visibleArtifacts(artifacts, this._allArtifacts), this._artifactImages, 'side')];
    if (artifacts.inputs) {
      content.push(renderInputs(artifacts.inputs));
    }
    return [
      renderSection(
        'Artifacts',
        'jp-mlx-artifacts',
        `${changed} of ${total} differ`,
        changed < total ? toggle(this._allArtifacts, () => (this._allArtifacts = !this._allArtifacts)) : null,
        ...content
      )
    ];
  }

  /** The State section (none when neither run captured its state, or nothing was compared). */
  private _stateSection(
    state: StateModel,
    toggle: (all: boolean, flip: () => void) => { label: string; onClick: () => void }
  ): HTMLElement[] {
    if (!state.shown) {
      return [];
    }
    const changed = visibleState(state, false).length;
    const total = state.rows.length;
    return [
      renderSection(
        'State',
        'jp-mlx-state',
        state.known ? `${changed} of ${total} differ` : 'not compared',
        changed < total ? toggle(this._allState, () => (this._allState = !this._allState)) : null,
        ...renderState(state, visibleState(state, this._allState))
      )
    ];
  }

  private _options: CompareView.IOptions;
  private _settings: ServerConnection.ISettings;
  private _state: ViewState = { kind: 'loading' };
  private _onlyChanged = true;
  private _allParameters = false;
  private _allMetrics = false;
  private _allArtifacts = false;
  private _allState = false;
  private _artifactImages: ArtifactImages = new Map();
  private _imageUrls: string[] = [];
  private _current: string | null = null;
}

export namespace CompareView {
  /** A side to compare: its ref, and its run id when known (to fetch its notebook early). */
  export interface ISide {
    ref: string;
    runId?: string | null;
  }

  export interface IOptions {
    a: ISide;
    b: ISide;
    serverSettings?: ServerConnection.ISettings;
  }
}

/** The compare view in a main-area widget, with its toolbar; call `content.load()` to fill it. */
export function createCompareWidget(options: CompareView.IOptions): MainAreaWidget<CompareView> {
  const content = new CompareView(options);
  const widget = new MainAreaWidget({ content });
  widget.id = `jupyter-mlx-compare-${compareKey(options.a.ref, options.b.ref)}`;
  widget.addClass('jp-mlx-compare-widget');
  widget.title.label = compareTitle(options.a.ref, options.b.ref);
  widget.title.caption = `Compare ${options.a.ref} (A) with ${options.b.ref} (B)`;
  widget.title.icon = runsIcon;
  widget.title.closable = true;

  widget.toolbar.addItem('only-changed', onlyChangedToggle(content));
  const next: ToolbarButton = new ToolbarButton({
    icon: caretDownIcon,
    label: 'Next change',
    className: 'jp-mlx-next-change',
    tooltip: 'Scroll to the next changed cell',
    onClick: () => {
      next.pressed = false; // an action, not a toggle
      content.nextChange();
    }
  });
  widget.toolbar.addItem('next-change', next);
  const report: ToolbarButton = new ToolbarButton({
    icon: launchIcon,
    label: 'Open HTML report',
    className: 'jp-mlx-open-report',
    tooltip: 'Open the self-contained HTML report in a new browser tab',
    onClick: () => {
      report.pressed = false;
      window.open(content.reportUrl, '_blank', 'noopener');
    }
  });
  widget.toolbar.addItem('report', report);
  return widget;
}

/** A DOM-id-safe key of a pair of refs. */
export function compareKey(a: string, b: string): string {
  return `${a}--${b}`.replace(/[^A-Za-z0-9_-]/g, '_');
}

function onlyChangedToggle(view: CompareView): Widget {
  const input = h('input');
  input.type = 'checkbox';
  input.checked = view.onlyChanged;
  input.addEventListener('change', () => {
    view.onlyChanged = input.checked;
  });
  const label = h('label', 'jp-mlx-only-changed', input, 'Only changed cells');
  label.title = 'Hide the cells that are identical (or within tolerance)';
  return new Widget({ node: label });
}
