/**
 * The DOM of the run list: one element per run row, and the empty, loading and error messages.
 */
import { isCancellable, RunRow } from './model';

/** What the panel adds to a row: a cancel request in flight, or its failure. */
export interface RowCancelState {
  pending?: boolean;
  error?: string;
}

/**
 * A run as a list item with a compare checkbox, and a cancel button while queued or running:
 * `data-id`, `data-ref`, `data-status` name it.
 */
export function renderRow(row: RunRow, cancel: RowCancelState = {}): HTMLElement {
  const item = element('li', 'jp-mlx-run');
  item.dataset.id = row.id;
  item.dataset.ref = row.ref;
  item.dataset.status = row.status;
  item.title = row.ref;

  item.setAttribute('role', 'option');
  item.setAttribute('aria-selected', 'false');

  const check = document.createElement('input');
  check.type = 'checkbox';
  check.className = 'jp-mlx-run-check';
  check.tabIndex = -1;
  check.setAttribute('aria-label', `Select ${row.ref} to compare`);
  check.title = 'Select to compare (or Ctrl/Cmd-click the run)';

  const more = element('button', 'jp-mlx-run-more', '⋯');
  (more as HTMLButtonElement).type = 'button';
  more.tabIndex = -1;
  more.title = `Actions for ${row.ref}: open the executed notebook, restore its parameters…`;
  more.setAttribute('aria-label', `Actions for ${row.ref}`);

  const head = element('div', 'jp-mlx-run-head');
  head.append(
    check,
    notebookName(row.notebook),
    element('span', 'jp-mlx-run-version', row.version),
    element('span', 'jp-mlx-run-when', row.when),
    more
  );
  head.querySelector('.jp-mlx-run-when')?.setAttribute('title', row.whenTitle);

  const status = element('div', 'jp-mlx-run-status');
  status.append(
    element('span', `jp-mlx-badge jp-mlx-badge-${row.status}`, row.status),
    element('span', 'jp-mlx-run-duration', row.duration)
  );
  if (row.user) {
    const user = element('span', 'jp-mlx-run-user', `by ${row.user}`);
    user.title = `Run by ${row.user}`;
    status.append(user);
  }
  if (cancel.error) {
    const failure = element('span', 'jp-mlx-run-cancel-error', cancel.error);
    failure.setAttribute('role', 'alert');
    failure.title = cancel.error;
    status.append(failure);
  } else if (row.error) {
    const failure = element('span', 'jp-mlx-run-failure', row.error);
    failure.title = `${row.error}\nClick to open the executed notebook at the failing cell`;
    status.append(failure);
  }
  if (isCancellable(row.status)) {
    status.append(cancelButton(row, cancel.pending ?? false));
  }
  item.append(head, status);
  item.append(field('jp-mlx-run-params', 'params', row.params || '(defaults)'));
  item.append(field('jp-mlx-run-metrics', 'metrics', row.metrics || '—'));
  return item;
}

/** A row not loaded yet: same height, so the scroll bar and positions are right. */
export function placeholderRow(): HTMLElement {
  const item = element('li', 'jp-mlx-run jp-mlx-run-placeholder', 'Loading…');
  item.setAttribute('aria-busy', 'true');
  return item;
}

function cancelButton(row: RunRow, pending: boolean): HTMLElement {
  const button = element('button', 'jp-mlx-button jp-mlx-run-cancel', pending ? 'Cancelling…' : 'Cancel');
  (button as HTMLButtonElement).type = 'button';
  (button as HTMLButtonElement).disabled = pending;
  button.tabIndex = -1;
  button.title = `Cancel ${row.ref} (${row.status === 'queued' ? 'before it starts' : 'stop it now'})`;
  button.setAttribute('aria-label', `Cancel ${row.ref}`);
  return button;
}

/** `train.ipynb` in bold, then its folder, muted (it is the part cut off when space runs out). */
function notebookName(path: string): HTMLElement {
  const node = element('span', 'jp-mlx-run-notebook');
  node.title = path;
  const slash = path.lastIndexOf('/');
  node.append(element('span', 'jp-mlx-run-name', path.slice(slash + 1)));
  if (slash > 0) {
    node.append(' ', element('span', 'jp-mlx-run-folder', path.slice(0, slash)));
  }
  return node;
}

function field(className: string, label: string, text: string): HTMLElement {
  const node = element('div', `jp-mlx-run-field ${className}`);
  node.title = `${label}: ${text}`;
  node.append(element('span', 'jp-mlx-run-label', label), element('span', 'jp-mlx-run-value', text));
  return node;
}

/** No runs (of `notebook`, when given) yet: how to record one. */
export function emptyMessage(notebook = ''): HTMLElement {
  if (notebook) {
    const node = message('jp-mlx-message jp-mlx-empty', `No runs of ${notebook} yet. Run it with `);
    node.append(element('strong', '', 'Run with Parameters'), ' (▶ above), or ');
    node.append(element('code', '', `jupyter mlx run ${notebook}`), '.');
    return node;
  }
  const node = message('jp-mlx-message jp-mlx-empty', 'No runs yet. Run one with ');
  node.append(element('code', '', 'jupyter mlx run NOTEBOOK'), '.');
  return node;
}

export function errorMessage(text: string): HTMLElement {
  const node = message('jp-mlx-message jp-mlx-error', '');
  node.setAttribute('role', 'alert');
  node.append(element('strong', '', 'Cannot load runs'), element('div', '', text));
  return node;
}

export function message(className: string, text: string): HTMLElement {
  return element('li', className, text);
}

function element(tag: string, className: string, text = ''): HTMLElement {
  const node = document.createElement(tag);
  if (className) {
    node.className = className;
  }
  if (text) {
    node.textContent = text;
  }
  return node;
}
