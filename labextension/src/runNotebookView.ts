/**
 * A run's executed notebook, read-only in the main area: JupyterLab's own notebook rendering
 * (outputs through the rendermime registry, untrusted), a header with the run's status, its
 * parameters and metrics, how its kernel started, the failure (scrolled to and marked), "Restore Parameters", and the
 * files the run wrote (its artifacts, previewed and downloadable).
 */
import { MainAreaWidget } from '@jupyterlab/apputils';
import type { IEditorServices } from '@jupyterlab/codeeditor';
import { NotebookModel, StaticNotebook } from '@jupyterlab/notebook';
import type { IRenderMimeRegistry } from '@jupyterlab/rendermime';
import { ServerConnection } from '@jupyterlab/services';
import { notebookIcon } from '@jupyterlab/ui-components';
import { Panel, Widget } from '@lumino/widgets';

import { getExecutedNotebook, MLXApiError, RunRecord } from './api';
import { badge, button, h } from './dom';
import { formatDuration, formatPairs, kernelLabel } from './model';
import { RunArtifactsView } from './runArtifacts';

export interface RunNotebookOptions {
  run: RunRecord;
  /** The cell to scroll to and mark (a failure's), 0-based in the executed notebook. */
  cell: number | null;
  rendermime: IRenderMimeRegistry;
  editorServices: IEditorServices;
  serverSettings: ServerConnection.ISettings;
  /** "Restore Parameters": open the launch form with this run's parameters. */
  onRestore: (run: RunRecord) => void;
}

/** The view's content: header, then the notebook (or the reason it could not be loaded). */
export class RunNotebookView extends Panel {
  constructor(private readonly _options: RunNotebookOptions) {
    super();
    this.addClass('jp-mlx-run-notebook-view');
    this._header = new Widget({ node: runHeader(_options.run, _options.onRestore) });
    this.addWidget(this._header);
    this._artifacts = new RunArtifactsView(_options.run.id, _options.serverSettings);
    this.addWidget(this._artifacts);
  }

  /** The run's artifacts section. */
  get artifacts(): RunArtifactsView {
    return this._artifacts;
  }

  /** Fetch the executed notebook and render it; a failure shows the server's message. */
  async load(): Promise<void> {
    const { run, cell } = this._options;
    void this._artifacts.load();
    let content: Awaited<ReturnType<typeof getExecutedNotebook>>;
    try {
      content = await getExecutedNotebook(run.id, this._options.serverSettings);
    } catch (reason) {
      const text = reason instanceof MLXApiError ? reason.message : String(reason);
      const problem = h('div', 'jp-mlx-message jp-mlx-error', h('strong', '', 'Cannot open the executed notebook'), h('div', '', text));
      problem.setAttribute('role', 'alert');
      this.addWidget(new Widget({ node: problem }));
      return;
    }
    const notebook = this._createNotebook();
    const model = new NotebookModel();
    model.fromJSON(content as never);
    model.readOnly = true;
    notebook.model = model;
    notebook.widgets.forEach(widget => (widget.readOnly = true));
    this.addWidget(notebook);
    if (cell !== null && cell >= 0 && cell < notebook.widgets.length) {
      const target = notebook.widgets[cell];
      target.addClass('jp-mlx-failed-cell');
      // once laid out: bring the cell into view
      requestAnimationFrame(() => target.node.scrollIntoView({ block: 'center' }));
    }
  }

  /** The rendered notebook, for tests and commands. */
  get notebook(): StaticNotebook | null {
    return (this.widgets.find(widget => widget instanceof StaticNotebook) as StaticNotebook) ?? null;
  }

  private _createNotebook(): StaticNotebook {
    const { rendermime, editorServices } = this._options;
    const notebook = new StaticNotebook({
      rendermime,
      contentFactory: new StaticNotebook.ContentFactory({
        editorFactory: editorServices.factoryService.newInlineEditor
      }),
      mimeTypeService: editorServices.mimeTypeService,
      notebookConfig: { ...StaticNotebook.defaultNotebookConfig, windowingMode: 'none' }
    });
    notebook.addClass('jp-mlx-executed-notebook');
    return notebook;
  }

  private _header: Widget;
  private _artifacts: RunArtifactsView;
}

/** Open a run's executed notebook in a main-area widget (its load runs in the background). */
export function createRunNotebookWidget(options: RunNotebookOptions): MainAreaWidget<RunNotebookView> {
  const content = new RunNotebookView(options);
  const widget = new MainAreaWidget({ content });
  widget.id = `jupyter-mlx-run-${options.run.id}`;
  widget.title.label = `${options.run.ref} (executed)`;
  widget.title.caption = `${options.run.ref}: the executed notebook, read-only`;
  widget.title.icon = notebookIcon;
  widget.title.closable = true;
  widget.addClass('jp-mlx-run-notebook-widget');
  return widget;
}

/** Ref, status, when and how long; parameters, metrics and the kernel's start; the failure; Restore Parameters. */
function runHeader(run: RunRecord, onRestore: (run: RunRecord) => void): HTMLElement {
  const title = h(
    'div',
    'jp-mlx-run-view-title',
    h('strong', '', run.ref),
    badge(run.status),
    h(
      'span',
      'jp-mlx-run-view-meta',
      [
        run.started_at ? new Date(run.started_at).toLocaleString() : '',
        formatDuration(run.duration),
        run.user ? `by ${run.user}` : ''
      ]
        .filter(Boolean)
        .join(' · ')
    ),
    h('span', 'jp-mlx-run-view-readonly', 'read-only'),
    button('Restore Parameters', 'jp-mlx-restore', () => onRestore(run))
  );
  title.querySelector('.jp-mlx-restore')?.setAttribute(
    'title',
    'Open "Run with Parameters" for this notebook, filled with this run’s parameters'
  );
  const header = h('div', 'jp-mlx-run-view-header', title);
  const params = formatPairs(run.parameters);
  const metrics = formatPairs(run.metrics);
  header.append(
    h('div', 'jp-mlx-run-view-field', h('span', 'jp-mlx-run-label', 'params'), params || '(defaults)'),
    h('div', 'jp-mlx-run-view-field', h('span', 'jp-mlx-run-label', 'metrics'), metrics || '—')
  );
  const kernel = kernelLabel(run.kernel_start, run.backend);
  if (kernel) {
    const field = h('div', 'jp-mlx-run-view-field jp-mlx-run-view-kernel', h('span', 'jp-mlx-run-label', 'kernel'), kernel.text);
    if (kernel.title) {
      field.title = kernel.title;
    }
    header.append(field);
  }
  if (run.error) {
    const where = run.error.cell_index !== null ? ` in cell ${run.error.cell_index + 1}` : '';
    const failure = h(
      'div',
      'jp-mlx-run-view-failure',
      h('strong', '', `Failed${where}: `),
      `${run.error.ename}: ${run.error.evalue}`
    );
    failure.setAttribute('role', 'alert');
    header.append(failure);
  }
  return header;
}
