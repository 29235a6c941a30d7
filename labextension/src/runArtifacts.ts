/**
 * A run's artifacts in the run view: the files it wrote (path, size, type), how its folder was
 * made and its notes; selecting one previews it (a table, JSON, text or an image from its bytes)
 * and offers its download. Nothing a run wrote is rendered as markup: text goes in as text, images
 * as object URLs of the bytes fetched with the page's credentials.
 */
import { ServerConnection } from '@jupyterlab/services';
import { Widget } from '@lumino/widgets';

import {
  ArtifactPreview,
  getArtifactBlob,
  getArtifactPreview,
  getRunArtifacts,
  MLXApiError,
  RunArtifacts
} from './api';
import { artifactList, ArtifactListRow, fileName, previewDisplay } from './artifactsModel';
import { button, h } from './dom';

/** The artifacts section of one run; call `load()` to fill it. */
export class RunArtifactsView extends Widget {
  constructor(
    private readonly _runId: string,
    private readonly _settings: ServerConnection.ISettings = ServerConnection.makeSettings()
  ) {
    super({ node: h('details', 'jp-mlx-run-artifacts') });
    (this.node as HTMLDetailsElement).open = true;
    this.node.append(h('summary', 'jp-mlx-run-artifacts-title', h('strong', '', 'Artifacts'), this._count));
    this.node.append(this._body);
    this._body.append(h('div', 'jp-mlx-muted', 'Loading the run’s files…'));
  }

  /** Fetch the list of artifacts and show it. */
  async load(): Promise<void> {
    let files: RunArtifacts;
    try {
      files = await getRunArtifacts(this._runId, this._settings);
    } catch (reason) {
      this._body.replaceChildren(problem('Cannot list the run’s files', reason));
      return;
    }
    if (!this.isDisposed) {
      this._showList(files);
    }
  }

  /** Preview the artifact at `path` (it is marked selected in the list). */
  async select(path: string): Promise<void> {
    const ticket = ++this._selection;
    this._list.querySelectorAll<HTMLElement>('.jp-mlx-artifact-row').forEach(row => {
      row.setAttribute('aria-selected', String(row.dataset.path === path));
    });
    const row = this._rows.find(candidate => candidate.path === path);
    if (!row) {
      return;
    }
    this._preview.hidden = false;
    this._preview.replaceChildren(previewHead(row, () => void this.download(path)));
    const body = h('div', 'jp-mlx-artifact-preview-body', h('div', 'jp-mlx-muted', 'Loading…'));
    this._preview.append(body);
    let content: HTMLElement;
    try {
      content = await this._previewContent(path);
    } catch (reason) {
      content = problem('Cannot preview this file', reason);
    }
    if (ticket === this._selection && !this.isDisposed) {
      body.replaceChildren(content);
    }
  }

  /** Download the artifact at `path` under its own name (fetched with the page's credentials). */
  async download(path: string): Promise<void> {
    let blob: Blob;
    try {
      blob = await getArtifactBlob(this._runId, path, this._settings);
    } catch (reason) {
      this._preview.append(problem(`Cannot download ${path}`, reason));
      return;
    }
    const url = URL.createObjectURL(blob);
    const link = h('a', 'jp-mlx-download-link');
    link.href = url;
    link.download = fileName(path);
    link.hidden = true;
    document.body.append(link);
    link.click();
    link.remove();
    // the download has its own copy once it started
    setTimeout(() => URL.revokeObjectURL(url), 10_000);
  }

  dispose(): void {
    if (this.isDisposed) {
      return;
    }
    this._revokeImage();
    super.dispose();
  }

  private _showList(files: RunArtifacts): void {
    const list = artifactList(files);
    this._rows = list.rows;
    this._count.textContent = list.summary;
    const parts: HTMLElement[] = [h('div', 'jp-mlx-run-folder', list.folder)];
    parts[0].dataset.runFolder = files.run_folder ?? 'none';
    if (list.notes.length) {
      parts.push(h('ul', 'jp-mlx-run-notes', ...list.notes.map(note => h('li', '', note))));
    }
    if (!list.rows.length) {
      parts.push(h('div', 'jp-mlx-muted', 'This run wrote no files.'));
      this._body.replaceChildren(...parts);
      return;
    }
    const head = h('tr', '', h('th', '', 'Path'), h('th', '', 'Size'), h('th', '', 'Type'));
    const rows = list.rows.map(row => this._listRow(row));
    this._list.replaceChildren(h('thead', '', head), h('tbody', '', ...rows));
    this._preview.hidden = true;
    this._body.replaceChildren(...parts, h('div', 'jp-mlx-artifact-browser', h('div', 'jp-mlx-artifact-list-scroll', this._list), this._preview));
  }

  private _listRow(row: ArtifactListRow): HTMLElement {
    const tr = h('tr', 'jp-mlx-artifact-row', h('td', '', row.path), h('td', '', row.size), h('td', '', row.type));
    tr.dataset.path = row.path;
    tr.tabIndex = 0;
    tr.setAttribute('aria-selected', 'false');
    tr.title = `Preview ${row.path}`;
    tr.addEventListener('click', () => void this.select(row.path));
    tr.addEventListener('keydown', event => {
      if (event.key === 'Enter' || event.key === ' ') {
        event.preventDefault();
        void this.select(row.path);
      }
    });
    return tr;
  }

  private async _previewContent(path: string): Promise<HTMLElement> {
    const preview: ArtifactPreview = await getArtifactPreview(this._runId, path, this._settings);
    const display = previewDisplay(preview);
    switch (display.type) {
      case 'table': {
        const head = h('tr', '', ...display.columns.map(column => h('th', '', column)));
        const rows = display.rows.map(cells => h('tr', '', ...cells.map(cell => h('td', '', cell))));
        const table = h('table', 'jp-mlx-table jp-mlx-artifact-table', h('thead', '', head), h('tbody', '', ...rows));
        return h('div', 'jp-mlx-artifact-preview-table', table, h('div', 'jp-mlx-muted', display.note));
      }
      case 'text': {
        const pre = h('pre', `jp-mlx-code jp-mlx-artifact-text${display.json ? ' jp-mlx-artifact-json' : ''}`, display.text);
        return display.note ? h('div', '', pre, h('div', 'jp-mlx-muted', display.note)) : pre;
      }
      case 'image': {
        const blob = await getArtifactBlob(this._runId, path, this._settings);
        this._revokeImage();
        this._imageUrl = URL.createObjectURL(blob);
        const image = h('img', 'jp-mlx-artifact-image');
        image.src = this._imageUrl;
        image.alt = path;
        return image;
      }
      case 'message':
        return h('div', 'jp-mlx-missing', display.text);
    }
  }

  private _revokeImage(): void {
    if (this._imageUrl) {
      URL.revokeObjectURL(this._imageUrl);
      this._imageUrl = null;
    }
  }

  private _count = h('span', 'jp-mlx-muted jp-mlx-run-artifacts-count');
  private _body = h('div', 'jp-mlx-run-artifacts-body');
  private _list = h('table', 'jp-mlx-table jp-mlx-artifact-list-table');
  private _preview = h('div', 'jp-mlx-artifact-preview');
  private _rows: ArtifactListRow[] = [];
  private _imageUrl: string | null = null;
  private _selection = 0;
}

/** The selected file's path, size and type, and its Download button. */
function previewHead(row: ArtifactListRow, onDownload: () => void): HTMLElement {
  const download = button('Download', 'jp-mlx-artifact-download', onDownload);
  download.title = `Download ${row.name}`;
  return h(
    'div',
    'jp-mlx-artifact-preview-head',
    h('code', 'jp-mlx-artifact-preview-path', row.path),
    h('span', 'jp-mlx-muted', `${row.size} · ${row.type}`),
    download
  );
}

function problem(title: string, reason: unknown): HTMLElement {
  const text = reason instanceof MLXApiError ? reason.message : String(reason);
  const node = h('div', 'jp-mlx-error', h('strong', '', `${title}: `), text);
  node.setAttribute('role', 'alert');
  return node;
}
