/**
 * The "Run with Parameters" dialog: a form generated from `GET /mlx/parameters`, a sweep
 * switch with a live "N runs" preview, a backend select. Submitting starts a run or a sweep;
 * a server error is shown in the dialog, which stays open.
 */
import { showErrorMessage } from '@jupyterlab/apputils';
import { ServerConnection } from '@jupyterlab/services';
import { Widget } from '@lumino/widgets';

import { getLaunchForm, MLXApiError, startRun, startSweep } from './api';
import { h } from './dom';
import { SubmitDialog } from './submitDialog';
import {
  buildRequest,
  FieldState,
  initialFields,
  gridSize,
  LaunchForm,
  runsLabel
} from './launchModel';

/** The dialog's body: the form, its preview and the last submit error. */
export class LaunchBody extends Widget {
  constructor(
    readonly form: LaunchForm,
    private readonly _settings: ServerConnection.ISettings,
    restored?: LaunchDialog.IRestored
  ) {
    super();
    this.addClass('jp-mlx-launch');
    this._fields = initialFields(form.parameters, restored?.parameters);

    const sweepLabel = h('label', 'jp-mlx-launch-sweep', this._sweep, ' Sweep');
    this._sweep.type = 'checkbox';
    this._sweep.setAttribute('role', 'switch');
    this._sweep.title = 'Give fields several comma-separated values: one run per combination';
    this._sweep.addEventListener('change', () => this._renderFields());

    this._backend.setAttribute('aria-label', 'Backend');
    for (const backend of form.backends) {
      const label = backend.address ? `${backend.name} (${backend.address})` : backend.name;
      this._backend.append(new Option(label, backend.name));
    }
    this._backend.value = form.default_backend;
    const backendRow = h(
      'label',
      'jp-mlx-launch-backend',
      'Backend ',
      h('span', 'jp-HTMLSelect jp-DefaultStyle', this._backend)
    );

    this._preview.setAttribute('aria-live', 'polite');
    this._error.setAttribute('role', 'alert');
    this._error.hidden = true;
    this.node.append(h('div', 'jp-mlx-launch-notebook', form.notebook));
    if (restored) {
      this.node.append(
        h('div', 'jp-mlx-launch-restored', `Parameters restored from ${restored.from}`)
      );
    }
    this.node.append(
      h('div', 'jp-mlx-launch-options', sweepLabel, backendRow),
      this._list,
      this._preview,
      this._error
    );
    this._renderFields();
  }

  /** Whether sweep mode is on. */
  get sweep(): boolean {
    return this._sweep.checked;
  }

  /** Start the run or sweep; false (with the message shown) if the server refused it. */
  async submit(): Promise<boolean> {
    const request = buildRequest(this.form.notebook, this._fields, this.sweep, this._backend.value);
    this._showError('');
    try {
      if (request.kind === 'run') {
        await startRun(request.body, this._settings);
      } else {
        await startSweep(request.body, this._settings);
      }
      return true;
    } catch (reason) {
      this._showError(reason instanceof MLXApiError ? reason.message : String(reason));
      return false;
    }
  }

  /** (Re)build the inputs for the current mode, keeping what was typed. */
  private _renderFields(): void {
    const sweep = this.sweep;
    this._list.replaceChildren(
      ...this._fields.map(field => this._renderField(field, sweep))
    );
    if (this._fields.length === 0) {
      this._list.append(h('p', 'jp-mlx-launch-empty', 'This notebook declares no parameters.'));
    }
    this._updatePreview();
  }

  private _renderField(field: FieldState, sweep: boolean): HTMLElement {
    const { name, type, help } = field.parameter;
    const input = document.createElement('input');
    input.name = name;
    input.className = 'jp-mlx-launch-input';
    input.dataset.type = type;
    if (type === 'bool' && !sweep) {
      input.type = 'checkbox';
      input.checked = field.text.trim().toLowerCase() === 'true';
      input.addEventListener('change', () => {
        field.text = input.checked ? 'true' : 'false';
        this._updatePreview();
      });
    } else {
      const numeric = (type === 'int' || type === 'float') && !sweep;
      input.type = numeric ? 'number' : 'text';
      if (numeric) {
        input.step = type === 'int' ? '1' : 'any';
      }
      input.classList.add('jp-mod-styled');
      input.value = field.text;
      input.placeholder = sweep
        ? 'values, comma-separated'
        : field.parameter.expression
          ? `default: ${field.parameter.expression}`
          : '';
      input.addEventListener('input', () => {
        field.text = input.value;
        this._updatePreview();
      });
    }
    const label = h('label', 'jp-mlx-launch-label', name, h('span', 'jp-mlx-launch-type', type));
    label.htmlFor = input.id = `jp-mlx-launch-${name}`;
    return h(
      'div',
      'jp-mlx-launch-field',
      label,
      input,
      help ? h('div', 'jp-mlx-launch-help', help) : null
    );
  }

  private _updatePreview(): void {
    this._preview.className = 'jp-mlx-launch-preview';
    this._preview.textContent = this.sweep
      ? runsLabel(gridSize(this._fields, true))
      : '';
  }

  private _showError(message: string): void {
    this._error.className = 'jp-mlx-launch-error';
    this._error.textContent = message;
    this._error.hidden = !message;
  }

  private _fields: FieldState[];
  private _sweep = document.createElement('input');
  private _backend = document.createElement('select');
  private _list = h('div', 'jp-mlx-launch-fields');
  private _preview = h('div', 'jp-mlx-launch-preview');
  private _error = h('div', 'jp-mlx-launch-error');
}

export namespace LaunchDialog {
  /** Parameters to start from instead of the defaults: a run's, for "Restore Parameters". */
  export interface IRestored {
    parameters: Record<string, unknown>;
    /** The run they come from, `train.ipynb@v3`. */
    from: string;
  }
}

/** Fetch `notebook`'s launch form and show the dialog; resolves when it closes. */
export async function openLaunchDialog(
  notebook: string,
  settings: ServerConnection.ISettings = ServerConnection.makeSettings(),
  restored?: LaunchDialog.IRestored
): Promise<void> {
  let form: LaunchForm;
  try {
    form = await getLaunchForm(notebook, settings);
  } catch (reason) {
    const message = reason instanceof MLXApiError ? reason.message : String(reason);
    await showErrorMessage('Cannot run the notebook', message);
    return;
  }
  await new SubmitDialog({
    title: 'Run with Parameters',
    body: new LaunchBody(form, settings, restored),
    accept: 'Run',
    focus: 'input',
    className: 'jp-mlx-launch-dialog'
  }).launch();
}
