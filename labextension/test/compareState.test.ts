import assert from 'node:assert/strict';
import { describe, test } from 'node:test';

import { buildCompareModel } from '../src/compareModel';
import { buildStateModel, describeStateObject, sideText, visibleState } from '../src/compareState';
import type { Comparison, StateComparison, StateEntry } from '../src/comparison';
import { comparisonFixture } from './comparisonFixture';

const object = (kind: string, size: number, sha: string): StateEntry => ({
  kind, size, sha256: sha.repeat(64), module: null
});
const numpy: StateEntry = { kind: 'module', size: 0, sha256: null, module: 'numpy' };
const captured = { captured: true, note: null, functions: ['predict'] };

/** As `GET /mlx/compare` answers it for two runs whose weights changed and a socket came and went. */
const STATE: StateComparison = {
  known: true,
  a: captured,
  b: { ...captured, note: 'the capture took longer than 5 s' },
  objects: [
    { name: 'OFFSET', kind: 'float', a: object('float', 20, 'c'), b: null, judgement: 'removed', change: null },
    {
      name: 'connection', kind: 'Connection', a: { not_capturable: "TypeError: cannot pickle 'socket' object" },
      b: object('Connection', 40, 'f'), judgement: 'changed', change: 'capturable'
    },
    { name: 'np', kind: 'module', a: numpy, b: numpy, judgement: 'identical', change: null },
    { name: 'predict', kind: 'function', a: object('function', 683, 'a'), b: object('function', 683, 'a'), judgement: 'identical', change: null },
    { name: 'slow', kind: null, a: null, b: { not_capturable: 'took too long' }, judgement: 'added', change: null },
    {
      name: 'weights', kind: 'ndarray', a: object('ndarray', 151, 'b'), b: object('ndarray', 2048, 'd'),
      judgement: 'changed', change: 'content'
    }
  ],
  packages: [
    { name: 'numpy', a: '1.26.4', b: '2.0.1', status: 'changed' },
    { name: 'scikit-learn', a: null, b: '1.5.0', status: 'added' }
  ]
};

function withState(state: StateComparison = STATE): Comparison {
  const comparison = comparisonFixture();
  comparison.state = state;
  comparison.summary.state = { identical: 2, within_tolerance: 0, changed: 2, added: 1, removed: 1, ignored: 0 };
  return comparison;
}

describe('the State section', () => {
  const model = buildStateModel(withState());

  test('one row per name, each side in words, the verdict and how it changed', () => {
    assert.equal(model.shown, true);
    assert.equal(model.known, true);
    assert.deepEqual(
      model.rows.map(r => [r.name, r.a, r.b, r.judgement, r.summary]),
      [
        ['OFFSET', `float, 20 bytes, ${'c'.repeat(12)}`, '', 'removed', 'only in A'],
        ['connection', "not capturable: TypeError: cannot pickle 'socket' object", `Connection, 40 bytes, ${'f'.repeat(12)}`, 'changed', 'captured now'],
        ['np', 'module numpy', 'module numpy', 'identical', ''],
        ['predict', `function, 683 bytes, ${'a'.repeat(12)}`, `function, 683 bytes, ${'a'.repeat(12)}`, 'identical', ''],
        ['slow', '', 'not capturable: took too long', 'added', 'only in B'],
        ['weights', `ndarray, 151 bytes, ${'b'.repeat(12)}`, `ndarray, 2.0 KiB, ${'d'.repeat(12)}`, 'changed', 'different content']
      ]
    );
    assert.deepEqual(model.packages, [
      { name: 'numpy', text: '1.26.4 → 2.0.1', status: 'changed' },
      { name: 'scikit-learn', text: '(none) → 1.5.0', status: 'added' }
    ]);
    assert.deepEqual(model.notes, ['B: the capture took longer than 5 s']);
  });

  test('the differing ones by default, all on demand', () => {
    assert.deepEqual(visibleState(model, false).map(r => r.name), ['OFFSET', 'connection', 'slow', 'weights']);
    assert.equal(visibleState(model, true).length, 6);
  });

  test('every kind of change in words; a module that moved, one no longer capturable', () => {
    const row = STATE.objects[5];
    assert.equal(describeStateObject({ ...row, change: 'module' }), 'another module');
    assert.equal(describeStateObject({ ...row, change: 'not_capturable' }), 'no longer capturable');
    assert.equal(describeStateObject({ ...row, judgement: 'ignored', change: null }), '');
    assert.equal(sideText(null), '');
  });

  test('a run that captured nothing: not compared, and said why, never removed', () => {
    const state: StateComparison = {
      known: false,
      a: captured,
      b: { captured: false, note: 'not captured (capture off, or a run from before captures)', functions: null },
      objects: [],
      packages: []
    };
    const missing = buildStateModel(withState(state));
    assert.equal(missing.shown, true);
    assert.equal(missing.missing, 'B: not captured (capture off, or a run from before captures); nothing compared');
    assert.deepEqual(missing.rows, []);
    const neither = { ...state, a: { ...state.b } };
    assert.equal(buildStateModel(withState(neither)).shown, false);
  });

  test('the header counts changed state objects; older comparisons have no section', () => {
    assert.match(buildCompareModel(withState()).header.summary, /, 4 state objects changed$/);
    assert.equal(buildStateModel(comparisonFixture()).shown, false);
    assert.doesNotMatch(buildCompareModel(comparisonFixture()).header.summary, /state/);
  });
});
