/**
 * Metrics across several runs, in the main area: a table (run, the parameters that vary first,
 * metrics; sort by any column, each metric's lowest and highest marked) and two charts drawn by
 * the server: a metric against a parameter, and the metric's logged series, a line per run.
 */
import { MainAreaWidget } from '@jupyterlab/apputils';
import { ServerConnection } from '@jupyterlab/services';
import { caretDownEmptyIcon } from '@jupyterlab/ui-components';
import { Widget } from '@lumino/widgets';

import { getRunsChart, getRunsTable, MLXApiError, RunsTableData } from './api';
import { h } from './dom';
import {
  cellText,
  chartDefaults,
  extremes,
  sortRows,
  TableColumn,
  tableColumns
} from './metricsModel';
import { runsIcon } from './icon';

export interface MetricsViewOptions {
  /** Run refs (`train.ipynb@v3`), in the order picked. */
  runs: string[];
  serverSettings: ServerConnection.ISettings;
}

export class MetricsView extends Widget {
  constructor(private readonly _options: MetricsViewOptions) {
    super();
    this.addClass('jp-mlx-metrics-view');
    this.node.tabIndex = 0;
    this.node.append(h('div', 'jp-mlx-message', `Loading ${_options.runs.length} runs…`));
  }

  /** Fetch the table and draw everything; a failure shows the server's message. */
  async load(): Promise<void> {
    try {
      this._data = await getRunsTable(this._options.runs, this._options.serverSettings);
    } catch (reason) {
      const text = reason instanceof MLXApiError ? reason.message : String(reason);
      const problem = h('div', 'jp-mlx-message jp-mlx-error', h('strong', '', 'Cannot load the runs'), h('div', '', text));
      problem.setAttribute('role', 'alert');
      this.node.replaceChildren(problem);
      return;
    }
    const defaults = chartDefaults(this._data);
    this._metric = defaults.metric;
    this._by = defaults.by;
    this._render();
    await this.refreshCharts();
  }

  /** Draw the charts again (after a theme change, or a new choice). */
  async refreshCharts(): Promise<void> {
    const data = this._data;
    if (!data || !this._metric) {
      return;
    }
    const theme = document.body.dataset.jpThemeLight === 'false' ? 'dark' : 'light';
    const metric = this._metric;
    const runs = this._options.runs;
    await Promise.all([
      this._chart(this._byChart, () =>
        getRunsChart('chart', runs, { metric, by: this._by ?? undefined, theme }, this._options.serverSettings)
      ),
      this._chart(this._seriesChart, () =>
        getRunsChart('series', runs, { metric, theme }, this._options.serverSettings)
      )
    ]);
  }

  dispose(): void {
    this._urls.forEach(url => URL.revokeObjectURL(url));
    super.dispose();
  }

  private async _chart(figure: HTMLElement, fetch: () => Promise<Blob>): Promise<void> {
    figure.setAttribute('aria-busy', 'true');
    try {
      const url = URL.createObjectURL(await fetch());
      this._urls.push(url);
      const image = h('img', 'jp-mlx-chart-image');
      image.src = url;
      image.alt = figure.dataset.caption ?? '';
      figure.replaceChildren(image);
    } catch (reason) {
      const text = reason instanceof MLXApiError ? reason.message : String(reason);
      figure.replaceChildren(h('div', 'jp-mlx-chart-message', text));
    }
    figure.removeAttribute('aria-busy');
  }

  private _render(): void {
    const data = this._data!;
    const columns = tableColumns(data);
    this._table = h('table', 'jp-mlx-metrics-table');
    this._renderTable(columns);

    const metricSelect = select(data.metrics, this._metric, 'Metric');
    metricSelect.addEventListener('change', () => {
      this._metric = metricSelect.value;
      void this.refreshCharts();
    });
    const bySelect = select(data.parameters, this._by, 'Against parameter', '(each run)');
    bySelect.addEventListener('change', () => {
      this._by = bySelect.value || null;
      void this.refreshCharts();
    });
    this._byChart.dataset.caption = 'The metric against the parameter';
    this._seriesChart.dataset.caption = 'The metric’s logged series, one line per run';
    const charts = data.metrics.length
      ? h(
          'div',
          'jp-mlx-charts',
          h(
            'div',
            'jp-mlx-chart-controls',
            h('label', '', 'Metric ', styledSelect(metricSelect)),
            h('label', '', 'against ', styledSelect(bySelect))
          ),
          h('div', 'jp-mlx-chart-row', this._byChart, this._seriesChart)
        )
      : h('div', 'jp-mlx-message', 'These runs logged no metrics to chart.');

    const varying = data.varying.length
      ? `varying: ${data.varying.join(', ')}`
      : 'no parameter varies';
    this.node.replaceChildren(
      h(
        'div',
        'jp-mlx-metrics-header',
        h('strong', '', `Metrics across ${data.rows.length} runs`),
        h('span', 'jp-mlx-metrics-varying', varying)
      ),
      h('div', 'jp-mlx-metrics-table-wrap', this._table),
      charts
    );
  }

  private _renderTable(columns: TableColumn[]): void {
    const data = this._data!;
    const rows = this._sort ? sortRows(data.rows, this._sort.key, this._sort.order) : data.rows;
    const marks = new Map(data.metrics.map(name => [name, extremes(data.rows, name)]));
    const head = h('tr', '');
    for (const column of columns) {
      const sorted = this._sort?.key === column.key ? this._sort.order : null;
      const cell = h('th', `jp-mlx-col-${column.kind}${column.varying ? ' jp-mlx-varying' : ''}`, column.label);
      cell.dataset.key = column.key;
      cell.setAttribute('aria-sort', sorted === 'asc' ? 'ascending' : sorted === 'desc' ? 'descending' : 'none');
      cell.title = `Sort by ${column.label}` + (column.varying ? ' (varies between these runs)' : '');
      if (sorted) {
        cell.append(sorted === 'asc' ? ' ↑' : ' ↓');
      }
      cell.addEventListener('click', () => {
        const order = this._sort?.key === column.key && this._sort.order === 'desc' ? 'asc' : 'desc';
        this._sort = { key: column.key, order };
        this._renderTable(columns);
      });
      head.append(cell);
    }
    const body = h('tbody', '');
    for (const row of rows) {
      const tr = h('tr', '');
      tr.dataset.ref = row.ref;
      for (const column of columns) {
        const td = h('td', `jp-mlx-col-${column.kind}`, cellText(row, column.key));
        if (column.kind === 'metric') {
          const mark = marks.get(column.label);
          if (mark?.max === row.ref) {
            td.classList.add('jp-mlx-max');
            td.title = `the highest ${column.label} of these runs`;
          } else if (mark?.min === row.ref) {
            td.classList.add('jp-mlx-min');
            td.title = `the lowest ${column.label} of these runs`;
          }
        } else if (column.key === 'status') {
          td.dataset.status = row.status;
        }
        tr.append(td);
      }
      body.append(tr);
    }
    this._table.replaceChildren(h('thead', '', head), body);
  }

  private _data: RunsTableData | null = null;
  private _metric: string | null = null;
  private _by: string | null = null;
  private _sort: { key: string; order: 'asc' | 'desc' } | null = null;
  private _table = h('table', 'jp-mlx-metrics-table');
  private _byChart = h('figure', 'jp-mlx-chart jp-mlx-chart-by');
  private _seriesChart = h('figure', 'jp-mlx-chart jp-mlx-chart-series');
  private _urls: string[] = [];
}

/** Open the metrics of these runs in a main-area widget (loading in the background). */
export function createMetricsWidget(options: MetricsViewOptions): MainAreaWidget<MetricsView> {
  const content = new MetricsView(options);
  const widget = new MainAreaWidget({ content });
  widget.id = `jupyter-mlx-metrics-${Date.now().toString(36)}`;
  widget.title.label = `Metrics: ${options.runs.length} runs`;
  widget.title.caption = options.runs.join('\n');
  widget.title.icon = runsIcon;
  widget.title.closable = true;
  return widget;
}

/** A select in JupyterLab's style, with its caret. */
function styledSelect(node: HTMLSelectElement): HTMLElement {
  return h(
    'span',
    'jp-HTMLSelect jp-DefaultStyle jp-mlx-select',
    node,
    caretDownEmptyIcon.element({ tag: 'span', stylesheet: 'select', right: '4px', top: '5px' })
  );
}

function select(names: string[], value: string | null, label: string, empty?: string): HTMLSelectElement {
  const node = h('select', '');
  node.setAttribute('aria-label', label);
  if (empty !== undefined) {
    node.append(new Option(empty, ''));
  }
  names.forEach(name => node.append(new Option(name, name)));
  node.value = value ?? '';
  return node;
}
