/**
 * The "Deploy as Endpoint" dialog: what to serve (one of the cell's functions, or the notebook's
 * annotated cell routes), the endpoint's name, the run version (the newest succeeded run by
 * default) and the workers. Deploy posts to `/mlx/endpoints`; a refusal shows the server's
 * message in the dialog, which stays open. On success a second dialog shows the URL and the
 * new token, once, with copy buttons.
 */
import { Clipboard, Dialog, showDialog, showErrorMessage } from '@jupyterlab/apputils';
import { ServerConnection } from '@jupyterlab/services';
import { Widget } from '@lumino/widgets';

import {
  DeployedEndpoint,
  deployEndpoint,
  listRuns,
  MLXApiError,
  RunRecord
} from './api';
import {
  CellTargets,
  curlCommand,
  defaultEndpointName,
  DeployMode,
  deployRequest,
  exampleBody
} from './deployModel';
import { h } from './dom';
import { SubmitDialog } from './submitDialog';
import type { EndpointTokens } from './endpointsModel';
import { formatPairs, formatRelative } from './model';

/** The cell to deploy: its notebook (project path) and source. */
export interface DeployTarget {
  notebook: string;
  source: string;
}

const CELLS = ':cells'; // the Serve select's value for "annotated cell routes" (no function's name)

/** The dialog's form and the last submit error. */
export class DeployBody extends Widget {
  constructor(
    readonly target: DeployTarget,
    readonly targets: CellTargets,
    readonly runs: RunRecord[],
    private readonly _settings: ServerConnection.ISettings,
    private readonly _onDeploying?: (name: string, work: Promise<unknown>) => void
  ) {
    super();
    this.addClass('jp-mlx-deploy');

    for (const fn of targets.functions) {
      this._serve.append(new Option(`${fn}()  —  POST /${fn}`, fn));
    }
    if (targets.route) {
      const { method, path } = targets.route;
      this._serve.append(new Option(`annotated cell routes (${method} ${path}, …)`, CELLS));
    }
    this._serve.addEventListener('change', () => this._onServeChange());

    for (const run of runs) {
      this._version.append(new Option(versionOption(run), run.ref));
    }
    if (targets.route) {
      // Annotated cells read REQUEST, which a plain run lacks: their runs usually fail, so the
      // saved file can be served as it is.
      this._version.append(new Option('the saved notebook file (no run)', target.notebook));
    }
    this._name.value = defaultEndpointName(target.notebook, this._function);
    this._reexecuteRow.hidden = this._function === null;
    this._name.addEventListener('input', () => {
      this._nameEdited = true;
      this._showError('');
    });
    this._workers.type = 'number';
    this._workers.min = '1';
    this._workers.max = '64';
    this._workers.step = '1';
    this._workers.value = '1';
    this._reexecute.type = 'checkbox';
    this._reexecute.className = 'jp-mlx-deploy-reexecute-input';
    this._reexecute.title =
      'Run the version’s code with its parameters when the endpoint starts, instead of loading ' +
      'the objects its run left (a retrained model can differ from the run’s)';

    this._error.setAttribute('role', 'alert');
    this._error.hidden = true;
    this.node.append(
      h('div', 'jp-mlx-deploy-notebook', target.notebook),
      this._field('Serve', wrapSelect(this._serve), 'jp-mlx-deploy-serve'),
      this._field('Name', this._name, 'jp-mlx-deploy-name'),
      this._field('Version', wrapSelect(this._version), 'jp-mlx-deploy-version'),
      this._field('Workers', this._workers, 'jp-mlx-deploy-workers'),
      this._reexecuteRow,
      h(
        'div',
        'jp-mlx-deploy-help',
        'A function is served from the objects its run left (the model it trained), loaded at ' +
          'start; a run that did not capture it re-executes the version’s code with its ' +
          'parameters, as annotated cells do. On this server’s machine.'
      ),
      this._error
    );
  }

  /** The form's choices as a deploy mode. */
  get mode(): DeployMode {
    const fn = this._function;
    return fn ? { kind: 'function', function: fn } : { kind: 'cells' };
  }

  /** Deploy; the answer, or null (with the server's message shown) if it was refused. */
  async submit(): Promise<DeployedEndpoint | null> {
    this._showError('');
    const workers = Number(this._workers.value);
    const request = deployRequest({
      ref: this._version.value,
      mode: this.mode,
      name: this._name.value,
      workers: Number.isInteger(workers) && workers > 0 ? workers : 1,
      reexecute: this._reexecute.checked
    });
    try {
      const work = deployEndpoint(request, this._settings);
      this._onDeploying?.(request.name ?? '', work);
      return await work;
    } catch (reason) {
      this._showError(reason instanceof MLXApiError ? reason.message : String(reason));
      return null;
    }
  }

  private get _function(): string | null {
    const value = this._serve.value;
    return value && value !== CELLS ? value : null;
  }

  private _onServeChange(): void {
    this._reexecuteRow.hidden = this._function === null;
    if (!this._nameEdited) {
      const fn = this._function;
      this._name.value = defaultEndpointName(this.target.notebook, fn);
    }
  }

  private _field(label: string, input: HTMLElement, className: string): HTMLElement {
    const control = input.querySelector('select, input') ?? input;
    const id = `${className}-input`;
    control.id = id;
    const caption = h('label', 'jp-mlx-deploy-label', label);
    caption.htmlFor = id;
    return h('div', `jp-mlx-deploy-field ${className}`, caption, input);
  }

  private _showError(message: string): void {
    this._error.className = 'jp-mlx-deploy-error';
    this._error.textContent = message;
    this._error.hidden = !message;
  }

  private _serve = document.createElement('select');
  private _version = document.createElement('select');
  private _name = styledInput();
  private _workers = styledInput();
  private _reexecute = document.createElement('input');
  private _reexecuteRow = h(
    'label',
    'jp-mlx-deploy-reexecute',
    this._reexecute,
    'Re-execute the notebook at start instead of loading the run’s state'
  );
  private _nameEdited = false;
  private _error = h('div', 'jp-mlx-deploy-error');
}

export async function openDeployDialog(
  target: DeployTarget,
  targets: CellTargets,
  tokens: EndpointTokens,
  settings: ServerConnection.ISettings = ServerConnection.makeSettings(),
  onDeploying?: (name: string, work: Promise<unknown>) => void
): Promise<DeployedEndpoint | null> {
  if (targets.functions.length === 0 && !targets.route) {
    await showErrorMessage(
      'Nothing to deploy in this cell',
      'Deploy a cell that defines a function (def name(...):), or one annotated with a ' +
        'route such as “# GET /hello” (Kernel Gateway’s notebook-http style).'
    );
    return null;
  }
  let runs: RunRecord[];
  try {
    const page = await listRuns(
      { notebook: target.notebook, status: 'succeeded', limit: 50 },
      settings
    );
    runs = [...page.runs].sort((a, b) => b.version - a.version);
  } catch (reason) {
    if (reason instanceof MLXApiError && reason.status === 404) {
      runs = []; // the server knows no run of this notebook yet
    } else {
      const message = reason instanceof MLXApiError ? reason.message : String(reason);
      await showErrorMessage('Cannot list the runs to deploy', message);
      return null;
    }
  }
  if (runs.length === 0 && !targets.route) {
    await showDialog({
      title: 'Deploy as Endpoint',
      body: noRunsBody(target.notebook),
      buttons: [Dialog.okButton({ label: 'Close' })]
    });
    return null;
  }
  const form = new DeployBody(target, targets, runs, settings, onDeploying);
  const dialog = new SubmitDialog({
    title: 'Deploy as Endpoint',
    body: form,
    accept: 'Deploy',
    focus: 'select',
    className: 'jp-mlx-deploy-dialog'
  });
  await dialog.launch();
  const deployed = dialog.submitted;
  dialog.dispose();
  if (!deployed) {
    return null;
  }
  tokens.set(deployed.name, deployed.token);
  const fn = form.mode.kind === 'function' ? form.mode.function : null;
  await showDeployed(deployed, fn ? JSON.stringify(exampleBody(target.source, fn)) : '');
  return deployed;
}

/** `v5 · 3 min ago · C=0.5, seed=1` (parameters cut at 48 characters). */
function versionOption(run: RunRecord): string {
  const parts = [`v${run.version}`];
  const when = run.finished_at ?? run.queued_at;
  if (when) {
    parts.push(formatRelative(when, Date.now()));
  }
  const params = formatPairs(run.parameters);
  if (params) {
    parts.push(params.length > 48 ? `${params.slice(0, 47)}…` : params);
  }
  return parts.join(' · ');
}

function noRunsBody(notebook: string): Widget {
  const body = new Widget();
  body.addClass('jp-mlx-deploy');
  body.addClass('jp-mlx-deploy-noruns');
  body.node.append(
    h(
      'p',
      '',
      'An endpoint serves a recorded run, and ',
      h('code', '', notebook),
      ' has no successful run yet.'
    ),
    h('p', '', 'Run it first (Run with Parameters…), then deploy again.')
  );
  return body;
}

/** The deployed endpoint: its URL, the token (once, for a new endpoint) and a curl example. */
async function showDeployed(deployed: DeployedEndpoint, exampleJSON: string): Promise<void> {
  const body = new Widget();
  body.addClass('jp-mlx-deploy');
  body.addClass('jp-mlx-deployed');
  const version = deployed.serving.ref ?? deployed.serving.notebook;
  body.node.append(
    h('p', '', h('strong', '', deployed.name), ` serves ${version}.`),
    h('p', 'jp-mlx-deployed-source', `It ${deployed.serving.source ?? 're-executes the notebook at start'}.`),
    copyRow('URL', deployed.url, 'jp-mlx-deployed-url')
  );
  if (deployed.token) {
    body.node.append(
      copyRow('Token', deployed.token, 'jp-mlx-deployed-token'),
      h(
        'p',
        'jp-mlx-deployed-note',
        'Copy the token now: it is shown only this once (the server keeps only its hash). ' +
          'The Try it form remembers it until you reload JupyterLab.'
      )
    );
  } else if (deployed.auth) {
    body.node.append(
      h('p', 'jp-mlx-deployed-note', 'Redeployed: the endpoint keeps its address and its token.')
    );
  }
  if (deployed.serving.mode === 'function' && deployed.serving.function) {
    const curl = curlCommand({
      url: deployed.url,
      method: 'POST',
      path: `/${deployed.serving.function}`,
      auth: deployed.auth,
      body: exampleJSON || '{}'
    });
    body.node.append(copyRow('curl', curl, 'jp-mlx-deployed-curl'));
  }
  await showDialog({
    title: deployed.token ? 'Endpoint Deployed' : 'Endpoint Redeployed',
    body,
    buttons: [Dialog.okButton({ label: 'Done' })]
  });
}

/** A label, a read-only value and a Copy button. */
export function copyRow(label: string, value: string, className: string): HTMLElement {
  const text = h('code', 'jp-mlx-copy-value', value);
  const copy = h('button', 'jp-mlx-button jp-mlx-copy', 'Copy');
  copy.type = 'button';
  copy.title = `Copy the ${label.toLowerCase()}`;
  copy.addEventListener('click', () => {
    Clipboard.copyToSystem(value);
    copy.textContent = 'Copied';
    window.setTimeout(() => (copy.textContent = 'Copy'), 1500);
  });
  return h('div', `jp-mlx-copy-row ${className}`, h('span', 'jp-mlx-copy-label', label), text, copy);
}

function styledInput(): HTMLInputElement {
  const input = document.createElement('input');
  input.className = 'jp-mod-styled jp-mlx-deploy-input';
  return input;
}

function wrapSelect(select: HTMLSelectElement): HTMLElement {
  return h('span', 'jp-HTMLSelect jp-DefaultStyle jp-mlx-deploy-select', select);
}
