import assert from 'node:assert/strict';
import { test } from 'node:test';

import type { RunsTableData } from '../src/api';
import { describeCheck, notebookOfRef } from '../src/baselineModel';
import { buildRequest, initialFields, restorableParameters } from '../src/launchModel';
import { cellText, chartDefaults, extremes, sortRows, tableColumns } from '../src/metricsModel';
import { changedParameters, toRow } from '../src/model';

const row = (version: number, C: number | null, accuracy: number | null) => ({
  ref: `t.ipynb@v${version}`,
  version,
  status: 'succeeded' as const,
  started_at: null,
  duration: 1.5 * version,
  sweep_id: null,
  parameters: { seed: 0, C },
  metrics: { accuracy }
});

const data: RunsTableData = {
  parameters: ['seed', 'C'],
  metrics: ['accuracy'],
  varying: ['C'],
  rows: [row(1, 0.1, 0.8), row(2, 10, 0.9), row(3, 1, null)]
};

test('columns: the run, the varying parameters first, then the others, then metrics', () => {
  assert.deepEqual(
    tableColumns(data).map(column => `${column.key}${column.varying ? '*' : ''}`),
    ['ref', 'status', 'duration', 'param:C*', 'param:seed', 'metric:accuracy']
  );
  assert.equal(cellText(data.rows[1], 'duration'), '3.0 s');
  assert.equal(cellText(data.rows[2], 'metric:accuracy'), '');
});

test('sorting: numbers numerically, missing values last in both orders', () => {
  const refs = (order: 'asc' | 'desc') =>
    sortRows(data.rows, 'metric:accuracy', order).map(r => r.version);
  assert.deepEqual(refs('desc'), [2, 1, 3]);
  assert.deepEqual(refs('asc'), [1, 2, 3]);
  assert.deepEqual(sortRows(data.rows, 'param:C', 'asc').map(r => r.version), [1, 3, 2]);
  assert.deepEqual(extremes(data.rows, 'accuracy'), { min: 't.ipynb@v1', max: 't.ipynb@v2' });
  assert.deepEqual(chartDefaults(data), { metric: 'accuracy', by: 'C' });
});

test('rows show only the parameters that differ from the defaults, and the sorted metric first', () => {
  const run = { parameters: { C: 1, seed: 3, extra: 'x', x: 'np.arange(3)' }, overridden: ['C', 'seed'] };
  const defaults = { C: 1, seed: 0, x: 'np.arange(3)' };
  // every value is recorded; a row shows those not at today's default (an expression: its text)
  assert.deepEqual(changedParameters(run, defaults), { seed: 3, extra: 'x' });
  // without the notebook's defaults: those the run set
  assert.deepEqual(changedParameters(run, undefined), { C: 1, seed: 3 });
  // a run that used an older default shows it
  assert.deepEqual(changedParameters({ parameters: { C: 2 }, overridden: [] }, { C: 1 }), { C: 2 });
  const record = {
    id: 'r', ref: 't.ipynb@v1', notebook: 't.ipynb', version: 1, status: 'failed',
    parameters: { C: 1 }, metrics: { loss: 0.5, f1: 0.7, accuracy: 0.9 },
    queued_at: null, started_at: null, duration: null,
    error: { cell_index: 4, ename: 'ValueError', evalue: 'bad', traceback: [] }
  } as never;
  const shown = toRow(record, { defaults: { C: 1 }, firstMetric: 'accuracy', maxMetrics: 2 });
  assert.equal(shown.params, '');
  assert.equal(shown.metrics, 'accuracy=0.9, loss=0.5');
  assert.equal(shown.errorCell, 4);
});

test('Restore Parameters takes every value but a default expression’s text', () => {
  const run = { parameters: { C: 0.25, max_iter: 100, x: 'np.arange(3)' }, expressions: ['x'] };
  assert.deepEqual(restorableParameters(run), { C: 0.25, max_iter: 100 });
  const fields = initialFields(
    [
      { name: 'C', type: 'float', default: 1, help: null },
      { name: 'max_iter', type: 'int', default: 300, help: null },
      { name: 'x', type: 'expression', default: null, expression: 'np.arange(3)', help: null }
    ],
    restorableParameters(run)
  );
  // the run's default max_iter (100) is restored over today's default (300); x keeps its default
  assert.deepEqual(fields.map(field => field.text), ['0.25', '100', '']);
  assert.deepEqual(buildRequest('t.ipynb', fields, false, 'local').body, {
    notebook: 't.ipynb', parameters: { C: 0.25, max_iter: 100 }, backend: 'local'
  });
});

test('restored parameters fill the launch form, defaults the rest', () => {
  const fields = initialFields(
    [
      { name: 'C', type: 'float', default: 1, help: null },
      { name: 'solver', type: 'str', default: 'lbfgs', help: null }
    ],
    { C: 0.25 }
  );
  assert.deepEqual(fields.map(field => field.text), ['0.25', 'lbfgs']);
});

test('baseline checks read as one line', () => {
  assert.equal(notebookOfRef('nb/train.ipynb@v12'), 'nb/train.ipynb');
  assert.equal(notebookOfRef('train.ipynb'), null);
  assert.deepEqual(describeCheck('t@v2', 't@v1', { verdict: 'as_expected', unexpected: [] }), {
    ok: true,
    text: 't@v2 passes the check against the baseline t@v1.'
  });
  const failed = describeCheck('t@v2', 't@v1', { verdict: 'unexpected_changes', unexpected: ['a', 'b', 'c', 'd'] });
  assert.equal(failed.ok, false);
  assert.equal(failed.text, 't@v2 fails the check against t@v1: 4 unexpected changes: a; b; c (+1 more)');
});
