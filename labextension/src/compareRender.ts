/**
 * The DOM of the compare view's sections: header, parameters, metrics and cells, built from
 * `compareModel` rows and the two executed notebooks.
 */
import type { ArtifactDisplay, ArtifactRow, InputsLine } from './compareArtifacts';
import type { StateModel, StateRow } from './compareState';
import type { NotebookContent } from './comparison';
import type {
  CellRow,
  HeaderRow,
  MetricRow,
  OutputDisplay,
  OutputRow,
  ParameterRow,
  SideHeader
} from './compareModel';
import { badge, button, h } from './dom';
import { ImageMode, renderImagePair } from './imagePair';
import { cellSource, imageSource, OutputPreview, outputPreview } from './outputPreview';
import type { DiffLine } from './unifiedDiff';

/** The executed notebooks of A and B (null while unknown, e.g. a notebook file). */
export interface Notebooks {
  a: NotebookContent | null;
  b: NotebookContent | null;
}

/** A → B, each with its status, duration and commit; then the verdict and its reasons. */
export function renderHeader(header: HeaderRow): HTMLElement {
  const sides = h(
    'div',
    'jp-mlx-sides',
    sideCard(header.a),
    h('span', 'jp-mlx-arrow', '→'),
    sideCard(header.b)
  );
  const expected = header.verdict === 'as_expected';
  const verdict = h(
    'div',
    `jp-mlx-verdict jp-mlx-verdict-${expected ? 'ok' : 'changed'}`,
    h('strong', '', expected ? 'As expected' : 'Unexpected changes'),
    h('span', '', header.summary)
  );
  const root = h('div', 'jp-mlx-compare-header', sides, verdict);
  if (header.unexpected.length) {
    const list = h('ul', '', ...header.unexpected.map(line => h('li', '', line)));
    const summary = h('summary', '', `${header.unexpected.length} unexpected`);
    root.append(h('details', 'jp-mlx-unexpected', summary, list));
  }
  return root;
}

function sideCard(side: SideHeader): HTMLElement {
  const card = h(
    'div',
    'jp-mlx-side',
    h('span', 'jp-mlx-side-label', side.label),
    h('span', 'jp-mlx-side-ref', side.ref),
    badge(side.status),
    side.duration && h('span', 'jp-mlx-muted', side.duration),
    side.git && h('code', 'jp-mlx-muted', side.git),
    side.user && h('span', 'jp-mlx-muted jp-mlx-side-user', `by ${side.user}`)
  );
  card.dataset.side = side.label;
  return card;
}

/** A section with a heading, a count and a "show all" toggle. */
export function renderSection(
  title: string,
  className: string,
  count: string,
  toggle: { label: string; onClick: () => void } | null,
  ...content: HTMLElement[]
): HTMLElement {
  const heading = h('h3', '', title, h('span', 'jp-mlx-muted', count));
  if (toggle) {
    heading.append(button(toggle.label, 'jp-mlx-link jp-mlx-show-all', toggle.onClick));
  }
  return h('section', `jp-mlx-section ${className}`, heading, ...content);
}

export function renderParameters(rows: ParameterRow[]): HTMLElement {
  if (!rows.length) {
    return h('p', 'jp-mlx-muted', 'No parameter differs.');
  }
  return table(
    ['Parameter', 'A', 'B'],
    rows.map(row => {
      const tr = tableRow([row.name, row.a, row.b]);
      tr.dataset.status = row.status;
      tr.dataset.name = row.name;
      return tr;
    })
  );
}

export function renderMetrics(rows: MetricRow[]): HTMLElement {
  if (!rows.length) {
    return h('p', 'jp-mlx-muted', 'No metric differs.');
  }
  return table(
    ['Metric', 'A', 'B', 'Change', 'Judgement', 'Series'],
    rows.map(row => {
      const tr = tableRow([row.name, row.a, row.b, row.change, badge(row.judgement), row.series]);
      tr.dataset.name = row.name;
      tr.dataset.judgement = row.judgement;
      return tr;
    })
  );
}

function table(headings: string[], rows: HTMLElement[]): HTMLElement {
  const head = h('tr', '', ...headings.map(text => h('th', '', text)));
  return h('table', 'jp-mlx-table', h('thead', '', head), h('tbody', '', ...rows));
}

function tableRow(cells: (string | HTMLElement)[]): HTMLElement {
  return h('tr', '', ...cells.map(cell => h('td', '', cell)));
}

/** One cell: its heading and badge, its source (a diff when changed) and its output pairs. */
export function renderCell(cell: CellRow, notebooks: Notebooks, imageMode: ImageMode): HTMLElement {
  const tags = cell.tags.length ? h('span', 'jp-mlx-muted', cell.tags.join(', ')) : null;
  const heading = h(
    'div',
    'jp-mlx-cell-head',
    h('span', 'jp-mlx-cell-number', `Cell ${cell.number}`),
    h('span', 'jp-mlx-muted', cell.cellType),
    tags,
    badge(cell.judgement)
  );
  const node = h('section', 'jp-mlx-cell', heading, renderSource(cell, notebooks));
  node.dataset.key = cell.key;
  node.dataset.judgement = cell.judgement;
  for (const output of cell.outputs) {
    node.append(renderOutput(output, notebooks, imageMode));
  }
  return node;
}

function renderSource(cell: CellRow, notebooks: Notebooks): HTMLElement {
  if (cell.sourceDiff.length) {
    return renderDiff(cell.sourceDiff, 'jp-mlx-source');
  }
  const text =
    cellSource(notebooks.b, cell.indexB) ?? cellSource(notebooks.a, cell.indexA) ?? '';
  return h('pre', 'jp-mlx-source jp-mlx-code', text);
}

/** Unified diff lines, deletions and additions coloured. */
export function renderDiff(lines: DiffLine[], className = ''): HTMLElement {
  const marks = { add: '+', del: '-', context: ' ', hunk: '', note: '\\' };
  return h(
    'pre',
    `jp-mlx-diff jp-mlx-code ${className}`,
    ...lines.map(line =>
      h(
        'div',
        `jp-mlx-diff-${line.kind}`,
        line.kind === 'hunk' ? line.text : `${marks[line.kind]} ${line.text}`
      )
    )
  );
}

function renderOutput(output: OutputRow, notebooks: Notebooks, imageMode: ImageMode): HTMLElement {
  const head = h(
    'div',
    'jp-mlx-output-head',
    h('span', 'jp-mlx-output-label', output.label),
    badge(output.judgement),
    output.summary && h('span', 'jp-mlx-output-summary', output.summary)
  );
  const node = h('div', 'jp-mlx-output', head, renderDisplay(output.display, notebooks, imageMode));
  node.dataset.key = output.key;
  node.dataset.kind = output.display.type;
  node.dataset.judgement = output.judgement;
  return node;
}

function renderDisplay(display: OutputDisplay, notebooks: Notebooks, imageMode: ImageMode): HTMLElement {
  switch (display.type) {
    case 'diff': {
      const diff = renderDiff(display.lines);
      return display.truncated
        ? h('div', '', diff, h('div', 'jp-mlx-muted', 'The diff is truncated.'))
        : diff;
    }
    case 'image':
      return renderImagePair({
        a: imageSource(notebooks.a, display.a),
        b: imageSource(notebooks.b, display.b),
        mask: display.mask, // display.stats is already the output's summary line
        mode: imageMode
      });
    case 'table':
      return renderTableChanges(display);
    case 'error':
      return pair(
        h('pre', 'jp-mlx-code jp-mlx-error-text', display.a),
        h('pre', 'jp-mlx-code jp-mlx-error-text', display.b)
      );
    case 'metric':
      return h('div', 'jp-mlx-code jp-mlx-metric-line', display.text);
    case 'sides':
      return pair(
        preview(outputPreview(notebooks.a, display.a)),
        preview(outputPreview(notebooks.b, display.b))
      );
  }
}

function renderTableChanges(
  display: Extract<OutputDisplay, { type: 'table' }> | Extract<ArtifactDisplay, { type: 'table' }>
): HTMLElement {
  const root = h('div', 'jp-mlx-table-changes');
  if (display.cells.length) {
    const rows = display.cells.map(cell => {
      const tr = tableRow([cell.row, cell.column, cell.a, cell.b]);
      tr.lastElementChild?.classList.add('jp-mlx-new-value');
      tr.children[2]?.classList.add('jp-mlx-old-value');
      return tr;
    });
    root.append(table(['Row', 'Column', 'A', 'B'], rows));
  }
  if (display.more) {
    root.append(h('div', 'jp-mlx-muted', `and ${display.more} more changed cells`));
  }
  for (const note of display.notes) {
    root.append(h('div', 'jp-mlx-table-note', note));
  }
  return root;
}

/** Each side's image of an artifact (object URLs of the bytes fetched from each run), by path. */
export type ArtifactImages = ReadonlyMap<string, { a: string | null; b: string | null }>;

/** The artifacts either run wrote: path, verdict (as outputs show it), sizes and what changed. */
export function renderArtifacts(
  rows: ArtifactRow[],
  images: ArtifactImages,
  imageMode: ImageMode
): HTMLElement {
  if (!rows.length) {
    return h('p', 'jp-mlx-muted', 'No artifact differs.');
  }
  return h('div', 'jp-mlx-artifact-list', ...rows.map(row => renderArtifact(row, images, imageMode)));
}

function renderArtifact(row: ArtifactRow, images: ArtifactImages, imageMode: ImageMode): HTMLElement {
  const head = h(
    'div',
    'jp-mlx-output-head',
    h('span', 'jp-mlx-artifact-path', row.path),
    badge(row.judgement),
    row.sizes && h('span', 'jp-mlx-output-label', row.sizes),
    row.summary && h('span', 'jp-mlx-output-summary', row.summary)
  );
  const node = h('div', 'jp-mlx-output jp-mlx-artifact', head);
  const body = renderArtifactDisplay(row.display, images, imageMode);
  if (body) {
    node.append(body);
  }
  node.dataset.key = row.key;
  node.dataset.path = row.path;
  node.dataset.kind = row.kind;
  node.dataset.display = row.display.type;
  node.dataset.judgement = row.judgement;
  return node;
}

function renderArtifactDisplay(
  display: ArtifactDisplay,
  images: ArtifactImages,
  imageMode: ImageMode
): HTMLElement | null {
  switch (display.type) {
    case 'image': {
      const pairOf = images.get(display.path);
      if (!pairOf) {
        return h('div', 'jp-mlx-muted jp-mlx-artifact-loading', 'Loading the images…');
      }
      return renderImagePair({ a: pairOf.a, b: pairOf.b, mask: display.mask, mode: imageMode });
    }
    case 'table':
      return renderTableChanges(display);
    case 'diff': {
      const diff = renderDiff(display.lines);
      return display.truncated
        ? h('div', '', diff, h('div', 'jp-mlx-muted', 'The diff is truncated.'))
        : diff;
    }
    case 'json': {
      const rows = display.changes.map(change => {
        const tr = tableRow([change.path, change.change, change.a, change.b]);
        tr.dataset.change = change.change;
        tr.lastElementChild?.classList.add('jp-mlx-new-value');
        tr.children[2]?.classList.add('jp-mlx-old-value');
        return tr;
      });
      const root = h('div', 'jp-mlx-json-changes', table(['Value', 'Change', 'A', 'B'], rows));
      if (display.more) {
        root.append(h('div', 'jp-mlx-muted', `and ${display.more} more changed values`));
      }
      return root;
    }
    case 'none':
      return null;
  }
}

/** `Inputs: 1 project file changed between the runs (2 unchanged): data.txt (changed)`. */
export function renderInputs(line: InputsLine): HTMLElement {
  const node = h('div', 'jp-mlx-inputs', h('strong', '', 'Inputs: '), line.text);
  if (line.changes.length) {
    node.append(
      h(
        'ul',
        'jp-mlx-inputs-list',
        ...line.changes.map(change => {
          const item = h('li', '', h('code', '', change.path), ' ', badge(change.status));
          item.dataset.path = change.path;
          item.dataset.status = change.status;
          return item;
        })
      )
    );
  }
  node.dataset.known = String(line.known);
  return node;
}

/**
 * The captured state: a row per name (its object in A and B, the verdict, how it changed), the
 * packages whose version differs, and why one run has nothing to compare.
 */
export function renderState(model: StateModel, rows: StateRow[]): HTMLElement[] {
  if (model.missing) {
    return [h('p', 'jp-mlx-muted jp-mlx-state-missing', model.missing)];
  }
  const content = [
    rows.length
      ? table(
          ['Name', 'A', 'B', '', ''],
          rows.map(row => {
            const tr = tableRow([
              h('code', '', row.name),
              h('span', 'jp-mlx-state-object', row.a),
              h('span', 'jp-mlx-state-object', row.b),
              badge(row.judgement),
              h('span', 'jp-mlx-muted', row.summary)
            ]);
            tr.className = 'jp-mlx-state-row';
            tr.dataset.key = row.key;
            tr.dataset.name = row.name;
            tr.dataset.judgement = row.judgement;
            return tr;
          })
        )
      : h('p', 'jp-mlx-muted', 'No object of the state differs.')
  ];
  if (model.packages.length) {
    content.push(
      h(
        'div',
        'jp-mlx-state-packages',
        h('strong', '', 'Packages: '),
        ...model.packages.map(p => {
          const item = h('span', 'jp-mlx-state-package', h('code', '', p.name), ` ${p.text} `, badge(p.status));
          item.dataset.name = p.name;
          return item;
        })
      )
    );
  }
  content.push(...model.notes.map(note => h('div', 'jp-mlx-muted jp-mlx-state-note', note)));
  return content;
}

/** A and B in two columns. */
function pair(a: HTMLElement, b: HTMLElement): HTMLElement {
  return h(
    'div',
    'jp-mlx-pair',
    h('div', 'jp-mlx-pair-side', h('div', 'jp-mlx-pair-label', 'A'), a),
    h('div', 'jp-mlx-pair-side', h('div', 'jp-mlx-pair-label', 'B'), b)
  );
}

function preview(item: OutputPreview): HTMLElement {
  if (item.type === 'image') {
    const image = h('img', 'jp-mlx-preview-image');
    image.src = item.src;
    image.alt = 'output';
    return image;
  }
  const className = {
    text: 'jp-mlx-code',
    error: 'jp-mlx-code jp-mlx-error-text',
    missing: 'jp-mlx-missing'
  }[item.type];
  return h(item.type === 'missing' ? 'div' : 'pre', className, item.text);
}
