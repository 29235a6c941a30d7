import assert from 'node:assert/strict';
import { describe, test } from 'node:test';

import {
  buildCompareModel,
  changeOrder,
  compareTitle,
  formatChange,
  nextChange,
  visibleCells,
  visibleMetrics,
  visibleParameters
} from '../src/compareModel';
import { parseUnifiedDiff } from '../src/unifiedDiff';
import { comparisonFixture } from './comparisonFixture';

const model = buildCompareModel(comparisonFixture());

describe('header', () => {
  test('names both sides and sums up the changes', () => {
    const { a, b, verdict, summary, unexpected } = model.header;
    assert.deepEqual(
      [a.label, a.ref, a.status, a.duration, a.git],
      ['A', 'train.ipynb@v1', 'succeeded', '3.5 s', '']
    );
    assert.equal(b.git, '01234567 (dirty)');
    assert.equal(verdict, 'unexpected_changes');
    assert.equal(summary, '5 of 7 cells changed, 7 outputs changed, 2 parameters, 1 metric');
    assert.equal(unexpected.length, 2);
  });
});

test('parameters: the differing ones by default, all on demand', () => {
  assert.deepEqual(
    visibleParameters(model, false).map(row => [row.name, row.a, row.b, row.status]),
    [['C', '0.1', '10', 'changed'], ['label', '', 'x', 'added']]
  );
  assert.equal(visibleParameters(model, true).length, 3);
});

test('metrics: change and judgement; only differences by default', () => {
  const rows = visibleMetrics(model, false);
  assert.deepEqual(
    rows.map(row => [row.name, row.a, row.b, row.change, row.judgement]),
    [['accuracy', '0.8519', '0.8704', '+0.01852 (+2.17%)', 'changed']]
  );
  const all = visibleMetrics(model, true);
  assert.equal(all.length, 2);
  assert.equal(all[1].series, '5 steps');
});

test('formatChange signs and percentages', () => {
  assert.equal(formatChange(-3, null), '−3');
  assert.equal(formatChange(0, 0), '±0 (±0.00%)');
  assert.equal(formatChange(null, null), '');
});

describe('cells', () => {
  test('only changed cells by default: changed, added, removed', () => {
    assert.deepEqual(
      visibleCells(model, true).map(cell => cell.key),
      ['cell-1', 'cell-2', 'cell-3', 'cell-5', 'cell-6']
    );
    assert.equal(visibleCells(model, false).length, 7);
  });

  test('a changed source becomes coloured diff lines', () => {
    const cell = model.cells[1];
    assert.equal(cell.number, 2);
    assert.deepEqual(cell.sourceDiff, [
      { kind: 'hunk', text: '@@ -1,2 +1,2 @@' },
      { kind: 'context', text: '# Parameters' },
      { kind: 'del', text: 'C = 0.1' },
      { kind: 'add', text: 'C = 10.0' }
    ]);
    assert.deepEqual(model.cells[0].sourceDiff, []);
  });

  test('each output pair has a label, judgement, summary and display', () => {
    const [metric, stream, image] = model.cells[2].outputs;
    assert.deepEqual(metric.display, { type: 'metric', text: 'accuracy: 0.8519 → 0.8704' });
    assert.equal(stream.label, 'stdout');
    assert.equal(stream.display.type, 'diff');
    assert.equal(image.key, 'cell-2-output-2');
    assert.equal(image.summary, '1.80% of pixels changed (2,191 px), similarity 0.945');
    assert.deepEqual(image.display, {
      type: 'image',
      a: { cell: 2, output: 2, mime: 'image/png' },
      b: { cell: 2, output: 2, mime: 'image/png' },
      mask: 'data:image/png;base64,iVBORw0K',
      stats: '1.80% of pixels changed (2,191 px), similarity 0.945'
    });
  });

  test('tables list the changed cells and what else changed', () => {
    const [table] = model.cells[3].outputs;
    assert.equal(table.summary, '3 cells changed');
    assert.deepEqual(table.display, {
      type: 'table',
      cells: [{ row: 'class_0', column: 'precision', a: '0.812', b: '0.867' }],
      more: 2,
      notes: ['shape 3×4 → 3×5', 'columns added: support']
    });
  });

  test('errors, tolerances and one-sided outputs', () => {
    assert.deepEqual(model.cells[6].outputs[0].display, {
      type: 'error', a: 'ValueError: bad n=1', b: 'ValueError: bad n=7'
    });
    assert.equal(model.cells[4].outputs[0].summary, 'numbers differ by at most 1e-12');
    const added = model.cells[5].outputs[0];
    assert.equal(added.summary, 'only in B');
    assert.deepEqual(added.display, { type: 'sides', a: null, b: { cell: 5, output: 0, mime: 'stdout' } });
  });
});

test('next change visits the changed cells in order, wrapping', () => {
  const order = changeOrder(visibleCells(model, false));
  assert.deepEqual(order, ['cell-1', 'cell-2', 'cell-3', 'cell-5', 'cell-6']);
  assert.equal(nextChange(order, null), 'cell-1');
  assert.equal(nextChange(order, 'cell-3'), 'cell-5');
  assert.equal(nextChange(order, 'cell-6'), 'cell-1');
  assert.equal(nextChange([], null), null);
});

test('parseUnifiedDiff keeps "---" lines inside hunks', () => {
  assert.deepEqual(parseUnifiedDiff('--- A\n+++ B\n@@ -1 +1 @@\n--- x\n\\ No newline at end of file'), [
    { kind: 'hunk', text: '@@ -1 +1 @@' },
    { kind: 'del', text: '-- x' },
    { kind: 'note', text: 'No newline at end of file' }
  ]);
  assert.deepEqual(parseUnifiedDiff(null), []);
});

test('compareTitle', () => {
  assert.equal(compareTitle('nb/train.ipynb@v1', 'nb/train.ipynb@v3'), 'train.ipynb v1 ↔ v3');
  assert.equal(compareTitle('a.ipynb@v1', 'nb/b.ipynb@v2'), 'a.ipynb@v1 ↔ b.ipynb@v2');
});
