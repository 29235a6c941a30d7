import assert from 'node:assert/strict';
import { test } from 'node:test';

import type { RunPage, RunRecord } from '../src/api';
import { DEFAULT_QUERY, RunWindow, sortChoices, sortedMetric, visibleRange } from '../src/runWindow';

const run = (index: number, status: RunRecord['status'] = 'succeeded'): RunRecord =>
  ({ id: `r${index}`, ref: `t.ipynb@v${index}`, version: index, status, metrics: {}, parameters: {} }) as RunRecord;

const page = (offset: number, count: number, total: number): RunPage => ({
  runs: Array.from({ length: count }, (_, i) => run(offset + i)),
  total,
  limit: count,
  offset
});

test('a window asks only for the pages of the rows in view, and reads them by position', () => {
  const window = new RunWindow(10);
  assert.deepEqual(window.pagesFor(0, 30), [0], 'before the total is known: the first page');
  assert.ok(window.put(0, page(0, 10, 35), window.ticket()));
  assert.equal(window.total, 35);
  assert.deepEqual(window.pagesFor(5, 25), [0, 1, 2]);
  assert.deepEqual(window.pagesFor(30, 99), [3], 'clamped to the last row');
  assert.deepEqual(window.missing([0, 1, 2]), [1, 2]);
  assert.equal(window.at(3)?.id, 'r3');
  assert.equal(window.at(12), undefined);
  window.put(1, page(10, 10, 35), window.ticket());
  assert.equal(window.at(12)?.id, 'r12');
});

test('a new query forgets the pages; an answer to an older query is dropped', () => {
  const window = new RunWindow(10);
  const old = window.ticket();
  window.put(0, page(0, 10, 20), old);
  assert.equal(window.setQuery({ ...DEFAULT_QUERY, filter: 'C>1' }), true);
  assert.equal(window.setQuery({ ...DEFAULT_QUERY, filter: ' C>1 ' }), false, 'same filter, other spaces');
  assert.equal(window.total, null);
  assert.equal(window.put(0, page(0, 10, 20), old), false);
  assert.equal(window.at(0), undefined);
  assert.deepEqual(window.request(2), { notebook: undefined, filter: 'C>1', limit: 10, offset: 20 });
  window.setQuery({ ...DEFAULT_QUERY, sort: 'metrics.acc', order: 'asc' });
  assert.deepEqual(window.request(0, true), {
    notebook: undefined, filter: undefined, limit: 10, offset: 0, sort: 'metrics.acc', order: 'asc', keys: true
  });
});

test('answers apply in the order the requests were made, not the order they arrive', () => {
  // A filter typed, then cleared: the answer to the filtered query arrives last, and is dropped.
  const window = new RunWindow(10);
  window.setQuery({ ...DEFAULT_QUERY, notebook: 't.ipynb' });
  const unfiltered = window.ticket();
  window.put(0, page(0, 4, 4), unfiltered);
  window.setQuery({ ...DEFAULT_QUERY, notebook: 't.ipynb', filter: 'x>2' });
  const filtered = window.ticket();
  window.setQuery({ ...DEFAULT_QUERY, notebook: 't.ipynb' });
  const cleared = window.ticket();
  assert.ok(window.put(0, page(0, 4, 4), cleared));
  assert.equal(window.put(0, page(2, 2, 2), filtered), false);
  assert.equal(window.total, 4);
  assert.equal(window.at(0)?.id, 'r0');

  // The same query asked twice (a refresh while a run finishes): the slow first answer, from
  // before the run finished, arrives after the second and must not bring the old rows back.
  window.invalidate();
  const before = window.ticket();
  window.invalidate();
  const after = window.ticket();
  assert.ok(window.put(0, page(0, 5, 5), after));
  assert.equal(window.put(0, page(0, 4, 4), before), false);
  assert.equal(window.total, 5);
  assert.equal(window.at(4)?.id, 'r4');

  // The total is the latest answer's, whichever page it came with.
  const first = window.ticket();
  const second = window.ticket();
  assert.ok(window.put(0, page(0, 10, 31), second));
  assert.ok(window.put(1, page(10, 10, 30), first), 'rows of another page are still shown');
  assert.equal(window.total, 31);
  assert.deepEqual(window.missing([0, 1]), [1], 'and fetched again: they predate the total');
});

test('a refresh does not reuse a request made before it: freshness changes with invalidate and the query', () => {
  const window = new RunWindow(10);
  const start = window.freshness;
  window.invalidate();
  assert.notEqual(window.freshness, start);
  const invalidated = window.freshness;
  window.setQuery({ ...DEFAULT_QUERY, filter: 'x>2' });
  assert.notEqual(window.freshness, invalidated);
});

test('invalidate keeps rows readable but fetches them again; a changed total marks other pages stale', () => {
  const window = new RunWindow(10);
  window.put(0, page(0, 10, 30), window.ticket());
  window.put(1, page(10, 10, 30), window.ticket());
  window.invalidate();
  assert.deepEqual(window.missing([0, 1]), [0, 1]);
  assert.equal(window.at(11)?.id, 'r11');
  window.put(0, page(0, 10, 31), window.ticket()); // a new run arrived: pages shifted by one
  assert.deepEqual(window.missing([0, 1]), [1]);
});

test('live events update loaded runs only', () => {
  const window = new RunWindow(10);
  window.put(0, { ...page(0, 2, 2), runs: [run(0, 'running'), run(1)] }, window.ticket());
  assert.ok(window.applyProgress({ run_id: 'r0', cell: 2, cells: 5 }));
  assert.deepEqual(window.at(0)?.progress, { cell: 2, cells: 5 });
  assert.ok(window.applyRun({ ...run(0), status: 'failed' }));
  assert.equal(window.at(0)?.status, 'failed');
  assert.equal(window.applyRun(run(7)), false);
});

test('sort choices list the metrics and parameters; visible ranges are clamped with overscan', () => {
  const choices = sortChoices({ parameters: ['C'], metrics: ['accuracy'] }, 'metrics.gone');
  assert.deepEqual(
    choices.map(choice => choice.value),
    ['queued_at', 'version', 'duration', 'status', 'metrics.accuracy', 'params.C', 'metrics.gone']
  );
  assert.equal(choices.at(-1)?.label, 'metric: gone');
  assert.equal(sortedMetric('metrics.accuracy'), 'accuracy');
  assert.equal(sortedMetric('params.C'), null);
  assert.deepEqual(visibleRange(0, 400, 80, 10000, 2), [0, 7]);
  assert.deepEqual(visibleRange(8000, 400, 80, 10000, 2), [98, 107]);
  assert.deepEqual(visibleRange(799_600, 400, 80, 10000, 2), [9993, 9999]); // scrolled to the end
  assert.deepEqual(visibleRange(0, 400, 80, 0), [0, -1]);
});
