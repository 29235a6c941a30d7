import assert from 'node:assert/strict';
import { test } from 'node:test';

import type { RunRecord } from '../src/api';
import type { NotebookContent } from '../src/comparison';
import { cellSource, imageSource, outputPreview } from '../src/outputPreview';
import {
  comparePair,
  MAX_SELECTED,
  pruneSelected,
  selectOnly,
  toggleSelected
} from '../src/selection';

test('click selects one run; toggling adds more, drops the oldest pick beyond the maximum', () => {
  assert.deepEqual(selectOnly('r1'), ['r1']);
  assert.deepEqual(toggleSelected(['r1'], 'r2'), ['r1', 'r2']);
  assert.deepEqual(toggleSelected(['r1', 'r2'], 'r3'), ['r1', 'r2', 'r3']);
  const full = Array.from({ length: MAX_SELECTED }, (_, index) => `r${index}`);
  assert.deepEqual(toggleSelected(full, 'new'), [...full.slice(1), 'new']);
  assert.deepEqual(toggleSelected(['r1', 'r2'], 'r1'), ['r2']);
  assert.deepEqual(pruneSelected(['r1', 'r2'], ['r2', 'r9']), ['r2']);
});

test('comparePair: exactly two runs, the older as A', () => {
  const run = (id: string, version: number, started: string): RunRecord =>
    ({ id, version, ref: `t.ipynb@v${version}`, started_at: started, queued_at: started }) as RunRecord;
  const older = run('r1', 1, '2025-11-25T10:00:00Z');
  const newer = run('r3', 3, '2025-11-25T11:00:00Z');
  assert.deepEqual(comparePair([newer, older]), { a: older, b: newer });
  assert.deepEqual(comparePair([older, newer]), { a: older, b: newer });
  assert.equal(comparePair([older]), null);
  // runs of one notebook: by version, whenever they started (a sweep's runs start in any order)
  const v5 = { ...run('r5', 5, '2025-11-25T09:00:00Z'), notebook: 't.ipynb' } as RunRecord;
  const v4 = { ...run('r4', 4, '2025-11-25T10:00:00Z'), notebook: 't.ipynb' } as RunRecord;
  assert.deepEqual(comparePair([v5, v4]), { a: v4, b: v5 });
  assert.equal(comparePair([older, newer, run('r4', 4, '2025-11-25T12:00:00Z')]), null);
});

test('outputPreview reads images, text, errors and sources from an executed notebook', () => {
  const notebook: NotebookContent = {
    cells: [
      {
        cell_type: 'code',
        source: ['x = 1\n', 'print(x)'],
        outputs: [
          { output_type: 'stream', name: 'stdout', text: ['1\n', '2\n'] },
          { output_type: 'display_data', data: { 'image/png': 'iVBO\nRw==\n', 'text/plain': '<Figure>' } },
          { output_type: 'error', ename: 'ValueError', evalue: 'bad' },
          { output_type: 'execute_result', data: { 'text/html': '<table/>', 'text/plain': ['   a\n', '0  1'] } }
        ]
      }
    ]
  };
  const at = (output: number, mime: string | null = null) => ({ cell: 0, output, mime });
  assert.deepEqual(outputPreview(notebook, at(0)), { type: 'text', text: '1\n2\n' });
  assert.equal(imageSource(notebook, at(1, 'image/png')), 'data:image/png;base64,iVBORw==');
  assert.deepEqual(outputPreview(notebook, at(2)), { type: 'error', text: 'ValueError: bad' });
  assert.deepEqual(outputPreview(notebook, at(3, 'text/html')), { type: 'text', text: '   a\n0  1' });
  assert.equal(outputPreview(notebook, at(9)).type, 'missing');
  assert.equal(outputPreview(null, null).type, 'missing');
  assert.equal(cellSource(notebook, 0), 'x = 1\nprint(x)');
  assert.equal(cellSource(notebook, 4), null);
});
