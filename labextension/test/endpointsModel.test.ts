import assert from 'node:assert/strict';
import { test } from 'node:test';

import type { EndpointDeployment, EndpointRecord, RunRecord } from '../src/api';
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
  rollbackTarget,
  servesLabel,
  shortRef,
  sourceLabel,
  versionLabel
} from '../src/endpointsModel';

const deployment = (version: number, fn: string | null = 'predict'): EndpointDeployment => ({
  notebook: 'examples/train.ipynb',
  ref: `examples/train.ipynb@v${version}`,
  run_id: `run${version}`,
  mode: fn ? 'function' : 'cells',
  function: fn,
  deployed_at: 1000 + version
});

function endpoint(history: EndpointDeployment[], current = history.length - 1, extra: Partial<EndpointRecord> = {}): EndpointRecord {
  return {
    name: 'iris',
    host: '127.0.0.1',
    port: 8123,
    url: 'http://127.0.0.1:8123',
    auth: true,
    workers: 1,
    timeout: 30,
    max_body: 1024,
    history,
    current,
    desired: 'running',
    serving: history[current],
    status: { state: 'serving', error: null },
    ...extra
  };
}

const run = (version: number, notebook = 'examples/train.ipynb', status = 'succeeded'): RunRecord =>
  ({ id: `run${version}`, notebook, version, ref: `${notebook}@v${version}`, status } as RunRecord);

test('state, version and what it serves', () => {
  const record = endpoint([deployment(1), deployment(2)]);
  assert.equal(endpointState(record), 'serving');
  assert.equal(endpointState({ ...record, status: null, desired: 'stopped' }), 'stopped');
  assert.equal(endpointState({ ...record, status: null }), 'unknown');
  assert.equal(versionLabel(record.serving), 'examples/train.ipynb@v2');
  assert.equal(versionLabel({ ...record.serving, ref: null }), 'examples/train.ipynb (file)');
  assert.equal(servesLabel(record.serving), 'predict()');
  assert.equal(servesLabel(deployment(1, null)), 'annotated cells');
  assert.equal(sourceLabel({ ...record.serving, serves: 'state' }), 'from the run’s captured state');
  assert.equal(sourceLabel({ ...record.serving, serves: 'reexecution' }), 're-executes the notebook at start');
  assert.equal(sourceLabel(record.serving), 're-executes the notebook at start'); // a record from before states
  assert.equal(shortRef('examples/train.ipynb@v12'), 'v12');
  assert.equal(shortRef('api.ipynb (file)'), 'file');
});

test('rollbackTarget is the version before the current one', () => {
  assert.equal(rollbackTarget(endpoint([deployment(1)])), null);
  assert.equal(rollbackTarget(endpoint([deployment(1), deployment(2)]))?.ref, 'examples/train.ipynb@v1');
  assert.equal(rollbackTarget(endpoint([deployment(1), deployment(2), deployment(3)], 1))?.ref, 'examples/train.ipynb@v1');
});

test('redeployPlan: the newest succeeded run of the same notebook', () => {
  const record = endpoint([deployment(1), deployment(2)]);
  const runs = [run(1), run(3), run(4, 'examples/train.ipynb', 'failed'), run(9, 'other.ipynb')];
  assert.deepEqual(redeployPlan(record, runs), { ref: 'examples/train.ipynb@v3', current: false });
  assert.equal(redeployLabel(redeployPlan(record, runs)), 'Redeploy v3');
  assert.deepEqual(redeployPlan(record, [run(2)]), { ref: 'examples/train.ipynb@v2', current: true });
  assert.equal(redeployLabel({ ref: 'examples/train.ipynb@v2', current: true }), 'Redeploy v2 (current)');
  assert.equal(redeployPlan(record, []), null);
  assert.equal(redeployLabel(null), 'Redeploy');
  assert.deepEqual(redeployRequest(record, 'examples/train.ipynb@v3'), {
    target: 'examples/train.ipynb@v3',
    name: 'iris',
    function: 'predict'
  });
  const file = endpoint([{ ...deployment(1, null), ref: null, run_id: null }]);
  assert.deepEqual(redeployPlan(file, runs), { ref: 'examples/train.ipynb', current: false, file: true });
  assert.equal(redeployLabel(redeployPlan(file, [])), 'Redeploy saved file');
  const cells = endpoint([deployment(1, null)]);
  assert.deepEqual(redeployRequest(cells, 'x.ipynb@v2'), { target: 'x.ipynb@v2', name: 'iris', cells: true });
  const reexecuted = endpoint([{ ...deployment(1), reexecute: true }]);
  assert.equal(redeployRequest(reexecuted, 'x.ipynb@v2').reexecute, true); // kept as it was deployed
});

test('healthLabel counts requests and errors', () => {
  const record = endpoint([deployment(1)]);
  assert.equal(healthLabel(record), '');
  const busy = endpoint([deployment(1)], 0, {
    status: { state: 'serving', error: null, health: { requests: 1200, errors: 1, latency_ms: { mean: 3, p50: 5, p99: 50 } } }
  });
  assert.equal(healthLabel(busy), '1,200 requests · 1 error · p50 5 ms');
});

test('initialTryForm: the function example from the served code, or the first route', () => {
  const record = endpoint([deployment(1)]);
  const cells = ['import pandas', 'def predict(features: list[list[float]], k: int = 3):\n    return []'];
  assert.deepEqual(initialTryForm(record, cells, 'tok'), {
    method: 'POST',
    path: '/predict',
    body: '{"features":[[0]],"k":3}',
    token: 'tok'
  });
  assert.equal(initialTryForm(record, null).body, '{}');
  const api = endpoint([deployment(1, null)]);
  const routes = ['import json', '# GET /hello\nprint(1)', '# ResponseInfo GET /hello\nprint(2)', '# POST /items\nx', '# GET /hello\nmore'];
  assert.deepEqual(notebookRoutes(routes), [
    { method: 'GET', path: '/hello' },
    { method: 'POST', path: '/items' }
  ]);
  assert.deepEqual(initialTryForm(api, routes), { method: 'GET', path: '/hello', body: '', token: '' });
  assert.deepEqual(initialTryForm(api, []), { method: 'GET', path: '/', body: '', token: '' });
});

test('parseTryBody sends JSON as a value, other text as text, nothing for blank', () => {
  assert.equal(parseTryBody('  '), undefined);
  assert.deepEqual(parseTryBody('{"a": [1]}'), { a: [1] });
  assert.equal(parseTryBody('42'), 42);
  assert.equal(parseTryBody('hello'), 'hello');
});

test('describeAnswer pretty-prints JSON and says whether it succeeded', () => {
  assert.deepEqual(describeAnswer({ status: 200, headers: {}, body: '[0, 1]' }), {
    status: '200 OK',
    ok: true,
    body: '[0,1]'
  });
  const long = JSON.stringify({ message: 'x'.repeat(60) });
  assert.equal(describeAnswer({ status: 200, headers: {}, body: long }).body, `{\n  "message": "${'x'.repeat(60)}"\n}`);
  assert.deepEqual(describeAnswer({ status: 401, headers: {}, body: 'no' }), {
    status: '401 Unauthorized',
    ok: false,
    body: 'no'
  });
  assert.equal(describeAnswer({ status: 299, headers: {}, body: '', truncated: true }).status, '299');
  assert.match(describeAnswer({ status: 200, headers: {}, body: 'x', truncated: true }).body, /cut at 1 MiB/);
});

test('EndpointTokens keeps the tokens issued in this session', () => {
  const tokens = new EndpointTokens();
  assert.equal(tokens.get('iris'), '');
  tokens.set('iris', 'abc');
  tokens.set('iris', null); // a redeploy answers no token: the known one stays
  assert.equal(tokens.get('iris'), 'abc');
});
