/**
 * The "Endpoints" section of the jupyter_mlx sidebar: one item per managed endpoint with its
 * state, the version it serves, its URL, a curl example, Redeploy / Rollback / Stop / Logs, and
 * a "Try it" form whose request goes through the Jupyter server. Refreshes when shown, after
 * each action, and every few seconds while visible; items are updated in place, so what is
 * typed in a form survives a refresh.
 */
import { ServerConnection } from '@jupyterlab/services';
import { refreshIcon, Toolbar, ToolbarButton } from '@jupyterlab/ui-components';
import type { Message } from '@lumino/messaging';
import { Widget } from '@lumino/widgets';

import {
  deployEndpoint,
  EndpointDeployment,
  EndpointRecord,
  getEndpoint,
  getExecutedNotebook,
  getNotebookFile,
  listEndpoints,
  listRuns,
  MLXApiError,
  rollbackEndpoint,
  RunRecord,
  stopEndpoint,
  tryEndpoint
} from './api';
import { copyRow } from './deployDialog';
import { curlCommand } from './deployModel';
import { badge, button, h } from './dom';
import {
  describeAnswer,
  endpointState,
  EndpointTokens,
  healthLabel,
  initialTryForm,
  notebookRoutes,
  parseTryBody,
  redeployLabel,
  redeployPlan,
  redeployRequest,
  RedeployPlan,
  rollbackTarget,
  servesLabel,
  sourceLabel,
  shortRef,
  TryForm,
  versionLabel
} from './endpointsModel';

const LOG_LINES = 50;
const METHODS = ['GET', 'POST', 'PUT', 'PATCH', 'DELETE'];

/** The section: a toolbar (refresh) in its title, and the list of endpoints. */
export class EndpointsSection extends Widget {
  readonly toolbar = new Toolbar();

  constructor(options: EndpointsSection.IOptions) {
    super();
    this._settings = options.serverSettings ?? ServerConnection.makeSettings();
    this._tokens = options.tokens;
    this._interval = options.refreshInterval ?? 4000;
    this.id = 'jupyter-mlx-endpoints';
    this.addClass('jp-mlx-endpoints');
    this.title.label = 'Endpoints';
    this.title.caption = 'Notebook functions served as HTTP endpoints';
    const refresh: ToolbarButton = new ToolbarButton({
      icon: refreshIcon,
      className: 'jp-mlx-endpoints-refresh',
      tooltip: 'Refresh the endpoints',
      onClick: () => {
        refresh.pressed = false;
        void this.refresh();
      }
    });
    this.toolbar.addItem('refresh', refresh);
    this._message.setAttribute('role', 'status');
    this.node.append(this._message, this._list);
    this._list.setAttribute('aria-label', 'Endpoints');
    this._showMessage('Loading endpoints…');
  }

  /** Fetch the endpoints again: now, or right after the request in flight. */
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

  /** How many endpoints the last refresh listed. */
  get count(): number {
    return this._items.size;
  }

  /** Show `name` as `state` (e.g. `deploying`) until `work` settles, then refresh. */
  track(name: string, work: Promise<unknown>, state = 'deploying'): void {
    this._pending.set(name, state);
    void this.refresh();
    void work
      .catch(() => undefined)
      .then(() => {
        this._pending.delete(name);
        return this.refresh();
      });
  }

  dispose(): void {
    this._stopPolling();
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
    this._stopPolling();
    super.onBeforeHide(msg);
  }

  private _startPolling(): void {
    this._stopPolling();
    void this.refresh();
    this._timer = window.setInterval(() => {
      if (this.isVisible) {
        void this.refresh();
      }
    }, this._interval);
  }

  private _stopPolling(): void {
    if (this._timer !== null) {
      window.clearInterval(this._timer);
      this._timer = null;
    }
  }

  private async _load(): Promise<void> {
    let records: EndpointRecord[];
    try {
      records = await listEndpoints(this._settings);
    } catch (reason) {
      this._showMessage(`Cannot load endpoints: ${messageOf(reason)}`, true);
      return;
    }
    const runs = await this._newestRuns(records);
    this._render(records, runs);
  }

  /** The newest succeeded runs of each served notebook (for Redeploy); none on failure. */
  private async _newestRuns(records: EndpointRecord[]): Promise<RunRecord[]> {
    const notebooks = [...new Set(records.map(record => record.serving.notebook))];
    const pages = await Promise.all(
      notebooks.map(notebook =>
        listRuns({ notebook, status: 'succeeded', limit: 5 }, this._settings).catch(() => null)
      )
    );
    return pages.flatMap(page => page?.runs ?? []);
  }

  private _render(records: EndpointRecord[], runs: RunRecord[]): void {
    if (records.length === 0) {
      this._showMessage(
        'No endpoints yet. Right-click a code cell that defines a function and choose ' +
          '“Deploy as Endpoint…”.'
      );
    } else {
      this._showMessage('');
    }
    const names = new Set(records.map(record => record.name));
    for (const [name, item] of this._items) {
      if (!names.has(name)) {
        item.node.remove();
        this._items.delete(name);
      }
    }
    records.forEach((record, index) => {
      let item = this._items.get(record.name);
      if (!item) {
        item = new EndpointItem(record.name, this._settings, this._tokens, this._cells, () =>
          this.refresh()
        );
        this._items.set(record.name, item);
      }
      item.update(record, redeployPlan(record, runs), this._pending.get(record.name));
      if (this._list.children[index] !== item.node) {
        this._list.insertBefore(item.node, this._list.children[index] ?? null);
      }
    });
  }

  private _showMessage(text: string, error = false): void {
    this._message.textContent = text;
    this._message.hidden = !text;
    this._message.classList.toggle('jp-mlx-endpoints-error', error);
  }

  private _settings: ServerConnection.ISettings;
  private _tokens: EndpointTokens;
  private _interval: number;
  private _timer: number | null = null;
  private _inFlight: Promise<void> | null = null;
  private _again = false;
  private _items = new Map<string, EndpointItem>();
  private _pending = new Map<string, string>();
  private _cells = new CodeCache(() => this._settings);
  private _message = h('div', 'jp-mlx-endpoints-message');
  private _list = h('ul', 'jp-mlx-endpoints-list');
}

export namespace EndpointsSection {
  export interface IOptions {
    tokens: EndpointTokens;
    serverSettings?: ServerConnection.ISettings;
    /** Milliseconds between refreshes while visible. */
    refreshInterval?: number;
  }
}

/** The code cells a version serves (for example bodies and routes): a run's, fetched once, or
 * the notebook file's, once per deployment. Null when they cannot be read. */
class CodeCache {
  constructor(private readonly _settings: () => ServerConnection.ISettings) {}

  get(deployment: EndpointDeployment): Promise<string[] | null> {
    const key = deployment.run_id ?? `${deployment.notebook}@${deployment.deployed_at}`;
    let found = this._cache.get(key);
    if (!found) {
      const notebook = deployment.run_id
        ? getExecutedNotebook(deployment.run_id, this._settings())
        : getNotebookFile(deployment.notebook, this._settings());
      found = notebook
        .then(content =>
          content.cells
            .filter(cell => cell.cell_type === 'code')
            .map(cell => (Array.isArray(cell.source) ? cell.source.join('') : cell.source))
        )
        .catch(() => null);
      this._cache.set(key, found);
    }
    return found;
  }

  private _cache = new Map<string, Promise<string[] | null>>();
}

/** One endpoint in the list. */
class EndpointItem {
  readonly node = h('li', 'jp-mlx-endpoint');

  constructor(
    readonly name: string,
    private readonly _settings: ServerConnection.ISettings,
    private readonly _tokens: EndpointTokens,
    private readonly _cells: CodeCache,
    private readonly _refresh: () => Promise<void>
  ) {
    this.node.dataset.name = name;
    this._buildTryForm();
    this._logs.hidden = true;
    this._tryPanel.hidden = true;
    this._feedback.setAttribute('role', 'status');
    this._feedback.hidden = true;
    this._error.hidden = true;
    this._health.hidden = true;
    this.node.append(
      h('div', 'jp-mlx-endpoint-head', h('span', 'jp-mlx-endpoint-name', name), this._badge),
      this._version,
      this._source,
      this._url,
      this._error,
      this._health,
      this._curl,
      h(
        'div',
        'jp-mlx-endpoint-actions',
        this._redeploy,
        this._rollback,
        this._stop,
        this._logsButton,
        this._tryButton
      ),
      this._feedback,
      this._logs,
      this._tryPanel
    );
  }

  /** Show `record`'s current state (or `pending`, while a change is under way); Redeploy offers `plan`. */
  update(record: EndpointRecord, plan: RedeployPlan | null, pending?: string): void {
    this._record = record;
    this._plan = plan;
    this._pending = pending ?? null;
    const state = this._pending ?? this._working ?? endpointState(record);
    this._showState(state);
    this._version.textContent = `${versionLabel(record.serving)} · ${servesLabel(record.serving)}`;
    this._version.dataset.ref = record.serving.ref ?? '';
    this._version.title =
      `Serving ${versionLabel(record.serving)} (deployment ${record.current + 1} of ` +
      `${record.history.length} under this name)`;
    this._source.textContent = sourceLabel(record.serving);
    this._source.dataset.serves = record.serving.serves ?? 'reexecution';
    // a function re-executed may serve another model than its run's: said in the warning colour
    this._source.dataset.warn = String(record.serving.mode === 'function' && record.serving.serves !== 'state');
    this._source.title = `It ${record.serving.source ?? 're-executes the notebook at start'}`;
    if (this._url.dataset.url !== record.url) {
      const row = copyRow('URL', record.url, 'jp-mlx-endpoint-url');
      row.dataset.url = record.url;
      this._url.replaceWith(row);
      this._url = row;
    }
    const error = record.status?.error ?? '';
    this._error.textContent = error;
    this._error.hidden = !error;
    const health = healthLabel(record);
    this._health.textContent = health;
    this._health.hidden = !health;

    const previous = rollbackTarget(record);
    this._redeploy.textContent = redeployLabel(plan);
    this._redeploy.title = plan
      ? `Serve ${plan.ref}, the newest successful run of ${record.serving.notebook}, with zero downtime`
      : `No successful run of ${record.serving.notebook} to deploy`;
    this._rollback.textContent = previous ? `Rollback to ${shortRef(versionLabel(previous))}` : 'Rollback';
    this._rollback.title = previous
      ? `Serve ${versionLabel(previous)} again (the version deployed before this one)`
      : 'No earlier version deployed under this name';
    this._setBusy(this._busy);
    void this._loadExample(record);
    if (!this._form.token) {
      this._form.token = this._tokens.get(this.name);
      this._tokenInput.value = this._form.token;
    }
    this._renderCurl();
  }

  private _setBusy(busy: boolean): void {
    this._busy = busy;
    const record = this._record;
    const stopped = record ? endpointState(record) === 'stopped' : true;
    busy = busy || this._pending !== null;
    this._redeploy.disabled = busy || !this._plan;
    this._rollback.disabled = busy || !record || !rollbackTarget(record);
    this._stop.disabled = busy || stopped;
    this._send.disabled = busy;
  }

  /** Fill the try-it form from the served run's code, unless the user has typed in it. */
  private async _loadExample(record: EndpointRecord): Promise<void> {
    const serving = record.serving;
    const key = `${serving.run_id ?? serving.deployed_at}:${serving.mode}:${serving.function}`;
    if (this._exampleKey === key) {
      return;
    }
    this._exampleKey = key;
    const cells = await this._cells.get(serving);
    if (this._exampleKey !== key) {
      return;
    }
    this._setRoutes(record.serving.mode === 'cells' ? notebookRoutes(cells ?? []) : []);
    if (!this._edited) {
      const form = initialTryForm(record, cells, this._form.token);
      this._setForm(form);
    }
  }

  private _setForm(form: TryForm): void {
    this._form = { ...form };
    this._method.value = form.method;
    this._path.value = form.path;
    this._body.value = form.body;
    this._tokenInput.value = form.token;
    this._updateBodyInput();
    this._renderCurl();
  }

  /** A GET sends no body: say so rather than ignore what is typed. */
  private _updateBodyInput(): void {
    const get = this._method.value === 'GET';
    this._body.disabled = get;
    this._body.placeholder = get ? 'A GET request sends no body' : 'JSON body';
  }

  private _renderCurl(): void {
    const record = this._record;
    if (!record) {
      return;
    }
    const command = curlCommand({
      url: record.url,
      method: this._form.method,
      path: this._form.path,
      auth: record.auth,
      body: this._form.method === 'GET' ? '' : this._form.body.trim() // as Send does
    });
    if (this._curl.dataset.command === command) {
      return;
    }
    const row = copyRow('curl', command, 'jp-mlx-endpoint-curl');
    row.dataset.command = command;
    const value = row.querySelector('.jp-mlx-copy-value') as HTMLElement;
    value.title = record.auth
      ? 'Click to show it all. Set TOKEN to the endpoint’s token first: export TOKEN=…'
      : 'Click to show it all. This endpoint needs no token.';
    value.classList.toggle('jp-mod-expanded', this._curlExpanded);
    value.addEventListener('click', () => {
      this._curlExpanded = !this._curlExpanded;
      value.classList.toggle('jp-mod-expanded', this._curlExpanded);
    });
    this._curl.replaceWith(row);
    this._curl = row;
  }

  private _buildTryForm(): void {
    for (const method of METHODS) {
      this._method.append(new Option(method, method));
    }
    this._method.setAttribute('aria-label', 'Method');
    this._path.setAttribute('aria-label', 'Path');
    this._path.placeholder = '/predict';
    this._body.placeholder = 'JSON body';
    this._body.rows = 4;
    this._body.spellcheck = false;
    this._body.setAttribute('aria-label', 'Body');
    this._tokenInput.type = 'password';
    this._tokenInput.autocomplete = 'off';
    this._tokenInput.placeholder = 'token (Authorization: Bearer)';
    this._tokenInput.setAttribute('aria-label', 'Token');
    this._routes.setAttribute('aria-label', 'Route');
    this._routesRow.hidden = true;

    const edit = (): void => {
      this._edited = true;
      this._form = {
        method: this._method.value,
        path: this._path.value,
        body: this._body.value,
        token: this._tokenInput.value
      };
      this._updateBodyInput();
      this._renderCurl();
    };
    for (const input of [this._method, this._path, this._body, this._tokenInput]) {
      input.addEventListener('input', edit);
      input.addEventListener('change', edit);
    }
    this._routes.addEventListener('change', () => {
      const [method, path] = this._routes.value.split(' ');
      this._method.value = method;
      this._path.value = path;
      edit();
    });
    this._tryPanel.addEventListener('submit', event => {
      event.preventDefault();
      void this._sendTry();
    });
    this._tryPanel.append(
      this._routesRow,
      h(
        'div',
        'jp-mlx-try-request',
        h('span', 'jp-HTMLSelect jp-DefaultStyle jp-mlx-try-method', this._method),
        this._path
      ),
      this._body,
      h('div', 'jp-mlx-try-send', this._tokenInput, this._send),
      this._answer
    );
    this._answer.hidden = true;
  }

  private _setRoutes(routes: { method: string; path: string }[]): void {
    this._routes.replaceChildren(
      ...routes.map(route => new Option(`${route.method} ${route.path}`, `${route.method} ${route.path}`))
    );
    this._routesRow.hidden = routes.length < 2;
  }

  private async _sendTry(): Promise<void> {
    const form = this._form;
    this._send.disabled = true;
    this._answer.hidden = false;
    this._answer.className = 'jp-mlx-try-answer jp-mod-pending';
    this._answer.replaceChildren(h('div', 'jp-mlx-try-status', 'Sending…'));
    try {
      const answer = await tryEndpoint(
        this.name,
        {
          method: form.method,
          path: form.path.trim(),
          body: form.method === 'GET' ? undefined : parseTryBody(form.body),
          token: form.token.trim() || undefined
        },
        this._settings
      );
      const shown = describeAnswer(answer);
      this._answer.className = `jp-mlx-try-answer ${shown.ok ? 'jp-mod-ok' : 'jp-mod-error'}`;
      this._answer.dataset.status = String(answer.status);
      this._answer.replaceChildren(
        h('div', 'jp-mlx-try-status', shown.status),
        h('pre', 'jp-mlx-try-body', shown.body)
      );
    } catch (reason) {
      this._answer.className = 'jp-mlx-try-answer jp-mod-error';
      delete this._answer.dataset.status;
      this._answer.replaceChildren(h('div', 'jp-mlx-try-status', messageOf(reason)));
    } finally {
      this._send.disabled = this._busy;
    }
  }

  private async _act(working: string, state: string, action: () => Promise<string>): Promise<void> {
    this._working = state;
    this._setBusy(true);
    this._say(working);
    this._showState(state);
    try {
      this._say(await action());
    } catch (reason) {
      this._say(messageOf(reason), true);
    } finally {
      this._working = null;
      this._setBusy(false);
      await this._refresh();
    }
  }

  private _showState(state: string): void {
    this.node.dataset.state = state;
    this._badge.replaceWith((this._badge = badge(state, state)));
  }

  private _onRedeploy(): void {
    const record = this._record;
    const plan = this._plan;
    if (!record || !plan) {
      return;
    }
    void this._act(`Redeploying ${shortRef(plan.ref)}…`, 'deploying', async () => {
      const deployed = await deployEndpoint(redeployRequest(record, plan.ref), this._settings);
      this._tokens.set(deployed.name, deployed.token);
      if (deployed.token) {
        this._form.token = deployed.token;
        this._tokenInput.value = deployed.token;
        return `Now serving ${versionLabel(deployed.serving)}, with a new token (filled in below).`;
      }
      return `Now serving ${versionLabel(deployed.serving)}.`;
    });
  }

  private _onRollback(): void {
    const previous = this._record && rollbackTarget(this._record);
    if (!previous) {
      return;
    }
    void this._act(`Rolling back to ${shortRef(versionLabel(previous))}…`, 'deploying', async () => {
      const record = await rollbackEndpoint(this.name, this._settings);
      return `Rolled back: serving ${versionLabel(record.serving)}.`;
    });
  }

  private _onStop(): void {
    void this._act('Stopping…', 'stopping', async () => {
      await stopEndpoint(this.name, this._settings);
      return 'Stopped. Redeploy starts it again.';
    });
  }

  private async _onLogs(): Promise<void> {
    if (!this._logs.hidden) {
      this._logs.hidden = true;
      this._logsButton.setAttribute('aria-expanded', 'false');
      return;
    }
    this._logsButton.setAttribute('aria-expanded', 'true');
    this._logs.hidden = false;
    this._logs.textContent = 'Loading…';
    try {
      const record = await getEndpoint(this.name, LOG_LINES, this._settings);
      this._logs.textContent = record.logs || '(the log is empty)';
      this._logs.scrollTop = this._logs.scrollHeight;
    } catch (reason) {
      this._logs.textContent = messageOf(reason);
    }
  }

  private _onTry(): void {
    this._tryPanel.hidden = !this._tryPanel.hidden;
    this._tryButton.setAttribute('aria-expanded', String(!this._tryPanel.hidden));
    if (!this._tryPanel.hidden) {
      this._body.focus();
    }
  }

  private _say(text: string, error = false): void {
    this._feedback.textContent = text;
    this._feedback.classList.toggle('jp-mod-error', error);
    this._feedback.hidden = !text;
  }

  private _record: EndpointRecord | null = null;
  private _plan: RedeployPlan | null = null;
  private _busy = false;
  private _pending: string | null = null;
  private _working: string | null = null;
  private _edited = false;
  private _curlExpanded = false;
  private _exampleKey = '';
  private _form: TryForm = { method: 'POST', path: '/', body: '', token: '' };
  private _badge = badge('unknown');
  private _version = h('div', 'jp-mlx-endpoint-version');
  private _source = h('div', 'jp-mlx-endpoint-source');
  private _url: HTMLElement = h('div', 'jp-mlx-endpoint-url');
  private _error = h('div', 'jp-mlx-endpoint-error');
  private _health = h('div', 'jp-mlx-endpoint-health');
  private _curl: HTMLElement = h('div', 'jp-mlx-endpoint-curl');
  private _redeploy = button('Redeploy', 'jp-mlx-endpoint-redeploy', () => this._onRedeploy());
  private _rollback = button('Rollback', 'jp-mlx-endpoint-rollback', () => this._onRollback());
  private _stop = button('Stop', 'jp-mlx-endpoint-stop', () => this._onStop());
  private _logsButton = button('Logs', 'jp-mlx-endpoint-logs-button', () => void this._onLogs());
  private _tryButton = button('Try it', 'jp-mlx-endpoint-try-button', () => this._onTry());
  private _feedback = h('div', 'jp-mlx-endpoint-feedback');
  private _logs = h('pre', 'jp-mlx-endpoint-logs');
  private _tryPanel = h('form', 'jp-mlx-endpoint-try');
  private _routes = document.createElement('select');
  private _routesRow = h(
    'label',
    'jp-mlx-try-routes',
    'Route ',
    h('span', 'jp-HTMLSelect jp-DefaultStyle', this._routes)
  );
  private _method = document.createElement('select');
  private _path = input('jp-mlx-try-path');
  private _body = h('textarea', 'jp-mod-styled jp-mlx-try-body-input');
  private _tokenInput = input('jp-mlx-try-token');
  private _send = Object.assign(h('button', 'jp-mlx-button jp-mod-accept jp-mlx-try-submit', 'Send'), {
    type: 'submit'
  });
  private _answer = h('div', 'jp-mlx-try-answer');
}

function input(className: string): HTMLInputElement {
  const node = document.createElement('input');
  node.className = `jp-mod-styled ${className}`;
  return node;
}

function messageOf(reason: unknown): string {
  return reason instanceof MLXApiError ? reason.message : String(reason);
}
