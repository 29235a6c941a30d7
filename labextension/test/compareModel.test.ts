import assert from 'node:assert/strict';
import { describe, test } from 'node:test';

import {
  buildCompareModel,
  changeOrder,
  compareTitle,
  describeChangedSteps,
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
    assert.deepEqual([a.user, b.user], ['', 'bob']); // who ran each side; A: recorded before users were
    assert.equal(verdict, 'unexpected_changes');
    assert.equal(summary, '5 of 7 cells changed, 7 outputs changed, 2 parameters, 1 metric');
    assert.equal(unexpected.length, 2);
  });
});

test('parameters: the differing ones by default, all on demand; a default is a value, marked', () => {
  assert.deepEqual(
    visibleParameters(model, false).map(row => [row.name, row.a, row.b, row.status]),
    [
      ['C', '0.1', '10', 'changed'],
      ['max_iter', '200', '100 (default)', 'changed'],
      ['label', '', 'x', 'added']
    ]
  );
  assert.equal(visibleParameters(model, true).length, 4);
  assert.deepEqual(
    [visibleParameters(model, true)[2].a, visibleParameters(model, true)[2].b],
    ['0 (default)', '0 (default)']
  );
});

test('metrics: change and judgement; only differences by default', () => {
  const rows = visibleMetrics(model, false);
  assert.deepEqual(
    rows.map(row => [row.name, row.a, row.b, row.change, row.judgement]),
    [
      ['accuracy', '0.8519', '0.8704', '+0.01852 (+2.17%)', 'changed'],
      ['learning_curve', '0.8519', '0.8519', '±0 (±0.00%)', 'changed']
    ]
  );
  const all = visibleMetrics(model, true);
  assert.equal(all.length, 3);
  assert.equal(all[1].series, '5 steps');
});

test('a series that changed while its last value did not says at which steps', () => {
  const curve = visibleMetrics(model, false).find(row => row.name === 'learning_curve');
  assert.equal(curve?.change, '±0 (±0.00%)');
  assert.equal(curve?.series, 'changed at steps 1, 3 (of 5)');
  const many = {
    name: 'loss', steps_a: 1000, steps_b: 1000, max_abs_diff: 1, first_difference_step: 0,
    aligned_by: 'step' as const, steps_compared: 1000, changed_steps_count: 701,
    changed_steps: [[0, 499], [601, 601], [700, 899]] as [number, number][]
  };
  assert.equal(describeChangedSteps(many), 'steps 0-499, 601, 700-899 (701 of 1000)');
  const alternating = Array.from({ length: 100 }, (_, i) => [2 * i + 1, 2 * i + 1] as [number, number]);
  assert.equal(
    describeChangedSteps({ ...many, changed_steps: alternating, changed_steps_count: 500 }),
    'steps 1, 3, 5, 7, 9, 11, 13, 15, … (500 of 1000)'
  );
  assert.equal(
    describeChangedSteps({ ...many, aligned_by: 'position', changed_steps: [[0, 0]], changed_steps_count: 1, steps_compared: 2 }),
    'position 0 (of 2)'
  );
  assert.equal(
    describeChangedSteps({ ...many, changed_steps: [[0, 999]], changed_steps_count: 1000 }),
    'all 1000 steps'
  );
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
