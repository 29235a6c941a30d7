import assert from 'node:assert/strict';
import { describe, test } from 'node:test';

import type { RunPage, RunRecord } from '../src/api';
import {
  applyProgress,
  applyRun,
  countLabel,
  filterRows,
  formatDuration,
  formatPairs,
  formatRelative,
  formatWait,
  isCancellable,
  kernelLabel,
  sortNewestFirst,
  toRows
} from '../src/model';

const NOW = Date.parse('2025-11-25T12:00:00Z');

function run(overrides: Partial<RunRecord>): RunRecord {
  const version = overrides.version ?? 1;
  const notebook = overrides.notebook ?? 'train.ipynb';
  return {
    id: '0'.repeat(32),
    notebook,
    version,
    ref: `${notebook}@v${version}`,
    status: 'succeeded',
    parameters: {},
    overridden: [],
    expressions: [],
    metrics: {},
    tags: [],
    queued_at: '2025-11-25T11:59:00.000Z',
    started_at: '2025-11-25T11:59:01.000Z',
    finished_at: '2025-11-25T11:59:03.100Z',
    duration: 2.1,
    error: null,
    git: null,
    backend: 'local',
    host: 'box',
    sweep_id: null,
    parent_id: null,
    source_hash: 'ab'.repeat(32),
    ...overrides
  };
}

function page(...runs: RunRecord[]): RunPage {
  return { runs, total: runs.length, limit: 50, offset: 0 };
}

describe('toRows', () => {
  test('formats every column of a succeeded run', () => {
    const [row] = toRows(
      page(
        run({
          notebook: 'examples/train.ipynb',
          version: 3,
          parameters: { C: 0.5, max_iter: 200, solver: 'lbfgs' },
          overridden: ['C', 'max_iter', 'solver'],
          metrics: { accuracy: 0.87341, loss: 0.31 }
        })
      ),
      { now: NOW }
    );
    assert.equal(row.ref, 'examples/train.ipynb@v3');
    assert.equal(row.version, 'v3');
    assert.equal(row.status, 'succeeded');
    assert.equal(row.when, '59 s ago');
    assert.match(row.whenTitle, /^2025-11-2\d \d\d:\d\d:01$/);
    assert.equal(row.duration, '2.1 s');
    assert.equal(row.params, 'C=0.5, max_iter=200, solver=lbfgs');
    assert.equal(row.metrics, 'accuracy=0.8734, loss=0.31');
    assert.equal(row.error, '');
    assert.equal(row.user, ''); // an older server's run: no user field
  });

  test('who ran it: the recorded user, or nothing for a run recorded before users were', () => {
    const rows = toRows(page(run({ version: 2, user: 'alice' }), run({ version: 1, user: null })), { now: NOW });
    assert.deepEqual(
      rows.map(row => [row.version, row.user]),
      [
        ['v2', 'alice'],
        ['v1', '']
      ]
    );
  });

  test('a running run shows the cell in progress', () => {
    const [row] = toRows(
      page(run({ status: 'running', finished_at: null, duration: null, progress: { cell: 3, cells: 7 } })),
      { now: NOW }
    );
    assert.equal(row.duration, 'cell 3/7');
  });

  test('a queued run is timed from its queue time and has no duration', () => {
    const [row] = toRows(
      page(run({ status: 'queued', started_at: null, finished_at: null, duration: null })),
      { now: NOW }
    );
    assert.equal(row.when, '1 min ago');
    assert.equal(row.duration, '');
  });

  test('a failed run says where it failed; metrics are capped', () => {
    const [row] = toRows(
      page(
        run({
          status: 'failed',
          error: { cell_index: 2, ename: 'ValueError', evalue: 'bad n=7', traceback: [] },
          metrics: { a: 1, b: 2, c: 3, d: 4 }
        })
      ),
      { now: NOW, maxMetrics: 2 }
    );
    assert.equal(row.error, 'ValueError: bad n=7');
    assert.equal(row.metrics, 'a=1, b=2');
  });

  test('rows come newest first, ties by highest version', () => {
    const rows = toRows(
      page(
        run({ version: 1, started_at: '2025-11-25T10:00:00Z' }),
        run({ version: 3, started_at: '2025-11-25T11:00:00Z' }),
        run({ version: 2, started_at: '2025-11-25T11:00:00Z' })
      ),
      { now: NOW }
    );
    assert.deepEqual(rows.map(row => row.version), ['v3', 'v2', 'v1']);
  });
});

test('sortNewestFirst does not modify its input', () => {
  const runs = [run({ version: 1, started_at: '2025-11-25T10:00:00Z' }), run({ version: 2 })];
  const sorted = sortNewestFirst(runs);
  assert.deepEqual(sorted.map(r => r.version), [2, 1]);
  assert.deepEqual(runs.map(r => r.version), [1, 2]);
});

test('filterRows matches the notebook path, ignoring case', () => {
  const rows = toRows(
    page(run({ notebook: 'examples/Train.ipynb' }), run({ notebook: 'eval.ipynb' })),
    { now: NOW }
  );
  assert.deepEqual(filterRows(rows, 'train').map(row => row.notebook), ['examples/Train.ipynb']);
  assert.equal(filterRows(rows, '  ').length, 2);
  assert.equal(filterRows(rows, 'nothing').length, 0);
});

test('formatDuration', () => {
  assert.equal(formatDuration(null), '');
  assert.equal(formatDuration(0.42), '0.4 s');
  assert.equal(formatDuration(2.14), '2.1 s');
  assert.equal(formatDuration(59.97), '1 min');
  assert.equal(formatDuration(65), '1 min 5 s');
  assert.equal(formatDuration(3600), '1 h');
  assert.equal(formatDuration(3780), '1 h 3 min');
});

test('formatRelative', () => {
  const ago = (seconds: number): string =>
    formatRelative(new Date(NOW - seconds * 1000).toISOString(), NOW);
  assert.equal(ago(2), 'just now');
  assert.equal(ago(42), '42 s ago');
  assert.equal(ago(5 * 60 + 10), '5 min ago');
  assert.equal(ago(3 * 3600), '3 h ago');
  assert.equal(ago(30 * 3600), 'yesterday');
  assert.equal(ago(3 * 86400), '3 days ago');
  assert.match(ago(30 * 86400), /^2025-10-2\d$/);
  assert.equal(formatRelative('not a date', NOW), '');
});

test('formatPairs shows numbers compactly, strings bare, the rest as JSON', () => {
  assert.equal(
    formatPairs({ lr: 0.000123456, n: 10, name: 'a b', flag: true, xs: [1, 2], none: null }),
    'lr=0.0001235, n=10, name=a b, flag=true, xs=[1,2], none=null'
  );
  assert.equal(formatPairs({}), '');
});

test('countLabel', () => {
  assert.equal(countLabel(1, 1), '1 run');
  assert.equal(countLabel(0, 0), '0 runs');
  assert.equal(countLabel(3, 3), '3 runs');
  assert.equal(countLabel(50, 120), '50 of 120 runs');
});

describe('live updates', () => {
  const a = run({ id: 'a'.repeat(32), status: 'running', finished_at: null, duration: null });
  const b = run({ id: 'b'.repeat(32), version: 2 });

  test('applyRun replaces the run of the same id, and ignores unknown runs', () => {
    const next = applyRun(page(a, b), { ...a, status: 'cancelled' });
    assert.deepEqual(next?.runs.map(r => r.status), ['cancelled', 'succeeded']);
    assert.equal(applyRun(page(b), a), null);
  });

  test('applyProgress sets the cell of a queued or running run', () => {
    const queued = { ...a, status: 'queued' as const };
    const next = applyProgress(page(queued, b), { run_id: a.id, cell: 3, cells: 10 });
    assert.equal(next?.runs[0].status, 'running');
    const row = toRows(next!, { now: NOW }).find(r => r.id === a.id);
    assert.equal(row?.duration, 'cell 3/10');
    assert.equal(applyProgress(page(b), { run_id: b.id, cell: 1, cells: 2 }), null);
    assert.equal(applyProgress(page(b), { run_id: 'c', cell: 1, cells: 2 }), null);
  });

  test('only queued and running runs can be cancelled', () => {
    assert.deepEqual(
      (['queued', 'running', 'succeeded', 'failed', 'cancelled', 'interrupted'] as const).map(isCancellable),
      [true, true, false, false, false, false]
    );
  });
});

describe('kernelLabel', () => {
  test('a warm start names its modules and the wait; the modules left out are in the tooltip', () => {
    const label = kernelLabel(
      {
        warm: true,
        modules: ['numpy', 'pandas'],
        left_out: { 'tqdm.auto': 'it adapts to the notebook frontend at import' },
        cold: null,
        waited: 0.017
      },
      'local'
    );
    assert.deepEqual(label, {
      text: 'started warm (numpy, pandas) after 0.02 s · 1 not preloaded',
      title: 'It started with numpy, pandas imported.\nnot preloaded: tqdm.auto: it adapts to the notebook frontend at import'
    });
  });

  test('a long list of modules is cut short; the tooltip has them all', () => {
    const modules = ['numpy', 'pandas', 'scipy', 'sklearn', 'joblib', 'pyarrow'];
    const label = kernelLabel({ warm: true, modules, left_out: {}, cold: null, waited: 0.001 }, 'local');
    assert.equal(label?.text, 'started warm (numpy, pandas, scipy, sklearn, +2 more) after 0 s');
    assert.equal(label?.title, `It started with ${modules.join(', ')} imported.`);
  });

  test("a sweep's run says in the tooltip that it shared the cores", () => {
    const start = { warm: true, modules: ['numpy'], left_out: {}, cold: null, waited: 0.01, threads: 1 };
    assert.deepEqual(kernelLabel(start, 'local'), {
      text: 'started warm (numpy) after 0.01 s',
      title: "It started with numpy imported.\n1 BLAS/OpenMP thread: the sweep's runs shared the cores."
    });
  });

  test('a cold start has its reason as the tooltip', () => {
    const start = { warm: false, modules: [], left_out: {}, cold: 'not forked from a zygote', waited: 1.3 };
    assert.deepEqual(kernelLabel(start, 'local'), { text: 'started cold after 1.3 s', title: 'Cold: not forked from a zygote' });
  });

  test("a gateway's or Dask worker's kernel says where, and claims nothing more", () => {
    const start = { warm: false, modules: [], left_out: {}, cold: null, waited: 12.4 };
    assert.deepEqual(kernelLabel(start, 'gateway'), { text: 'started on the gateway after 12 s', title: '' });
    assert.equal(kernelLabel({ ...start, waited: null }, 'dask')?.text, 'started on a Dask worker');
  });

  test('a run with no kernel (or from before it was recorded) has no line', () => {
    assert.equal(kernelLabel(null, 'local'), null);
    assert.equal(kernelLabel(undefined, 'local'), null);
  });
});

test('formatWait', () => {
  assert.equal(formatWait(0.001), '0 s');
  assert.equal(formatWait(0.017), '0.02 s');
  assert.equal(formatWait(1.3), '1.3 s');
  assert.equal(formatWait(9.999), '10 s');
  assert.equal(formatWait(12.4), '12 s');
});
