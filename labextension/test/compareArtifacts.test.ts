import assert from 'node:assert/strict';
import { describe, test } from 'node:test';

import {
  buildArtifactsModel,
  imagePaths,
  inputsLine,
  isArtifactChange,
  visibleArtifacts
} from '../src/compareArtifacts';
import { buildCompareModel } from '../src/compareModel';
import type { ArtifactComparison, Comparison } from '../src/comparison';
import { comparisonFixture } from './comparisonFixture';

const file = (size: number, sha256: string) => ({ size, sha256 });

/** As `GET /mlx/compare` answers them for two runs that differ in a CSV cell and an image. */
const ARTIFACTS: ArtifactComparison[] = [
  {
    path: 'config.json', kind: 'json', media_type: 'application/json',
    a: file(30, 'j1'), b: file(31, 'j2'), judgement: 'changed',
    detail: {
      compared_by: 'json', changes_count: 2, values_within_tolerance: 1,
      changes: [
        { path: '/lr', change: 'changed', a: 0.1, b: 0.2 },
        { path: '/tags/1', change: 'added', a: null, b: 'new' }
      ]
    }
  },
  {
    path: 'fig.png', kind: 'image', media_type: 'image/png',
    a: file(288, 'cc'), b: file(288, '01'), judgement: 'changed',
    detail: {
      mime: 'image/png', size_a: [120, 80], size_b: [120, 80], size_changed: false,
      changed_pixels: 820, changed_fraction: 0.08541666666666667, similarity: 0.8917,
      bbox: [31, 10, 51, 51], mask: 'iVBORw0KGgo='
    }
  },
  {
    path: 'log.txt', kind: 'text', media_type: 'text/plain',
    a: file(10, 't1'), b: file(12, 't2'), judgement: 'changed',
    detail: { diff: '--- A\n+++ B\n@@ -1 +1 @@\n-loss 0.5\n+loss 0.4', truncated: false }
  },
  {
    path: 'model.bin', kind: 'binary', media_type: 'application/octet-stream',
    a: file(2048, 'b1'), b: file(4096, 'b2'), judgement: 'changed',
    detail: { compared_by: 'hash' }
  },
  { path: 'new.csv', kind: 'table', media_type: 'text/csv', a: null, b: file(5, 'n'), judgement: 'added', detail: {} },
  {
    path: 'predictions.csv', kind: 'table', media_type: 'text/csv',
    a: file(24, 'd3'), b: file(24, '87'), judgement: 'changed',
    detail: {
      shape_a: [4, 2], shape_b: [4, 2], columns_added: [], columns_removed: [], rows_added: [],
      rows_removed: [], reordered: [], cells_changed: [{ row: '2', column: 'pred', a: '4', b: '8' }],
      cells_changed_count: 1, cells_within_tolerance: 0, note: null, compared_by: 'table'
    }
  },
  { path: 'same.txt', kind: 'text', media_type: 'text/plain', a: file(3, 's'), b: file(3, 's'), judgement: 'identical', detail: {} },
  {
    path: 'timing.txt', kind: 'text', media_type: 'text/plain', a: file(3, 'x'), b: file(3, 'y'),
    judgement: 'within_tolerance', detail: { normalized: true }
  }
];

function withArtifacts(): Comparison {
  const comparison = comparisonFixture();
  comparison.artifacts = ARTIFACTS;
  comparison.inputs = {
    known: true,
    unchanged: 2,
    changes: [
      { path: 'data.txt', status: 'changed', a: { size: 3, mtime: 1, sha256: 'a' }, b: { size: 4, mtime: 2, sha256: 'b' } },
      { path: 'extra.py', status: 'added', a: null, b: { size: 3, mtime: 1, sha256: 'c' } }
    ]
  };
  comparison.summary.artifacts = { identical: 1, within_tolerance: 1, changed: 5, added: 1, removed: 0, ignored: 0 };
  return comparison;
}

describe('the Artifacts section', () => {
  const model = buildArtifactsModel(withArtifacts());
  const row = (path: string) => model.rows.find(candidate => candidate.path === path)!;

  test('one row per artifact, with its verdict, sizes and what changed in words', () => {
    assert.equal(model.known, true);
    assert.deepEqual(
      model.rows.map(r => [r.path, r.judgement, r.sizes, r.summary]),
      [
        ['config.json', 'changed', '30 bytes → 31 bytes', '2 values changed, 1 within tolerance'],
        ['fig.png', 'changed', '288 bytes', '8.54% of pixels changed (820 px), similarity 0.892'],
        ['log.txt', 'changed', '10 bytes → 12 bytes', '−1 +1 lines'],
        ['model.bin', 'changed', '2.0 KiB → 4.0 KiB', 'different content'],
        ['new.csv', 'added', '5 bytes', 'only in B'],
        ['predictions.csv', 'changed', '24 bytes', '1 cell changed'],
        ['same.txt', 'identical', '3 bytes', ''],
        ['timing.txt', 'within_tolerance', '3 bytes', 'only volatile text differs']
      ]
    );
  });

  test('the changed table cells, the image pair with its mask, the JSON values, the text diff', () => {
    assert.deepEqual(row('predictions.csv').display, {
      type: 'table',
      cells: [{ row: '2', column: 'pred', a: '4', b: '8' }],
      more: 0,
      notes: []
    });
    assert.deepEqual(row('fig.png').display, {
      type: 'image',
      path: 'fig.png',
      mask: 'data:image/png;base64,iVBORw0KGgo='
    });
    assert.deepEqual(row('config.json').display, {
      type: 'json',
      changes: [
        { path: '/lr', change: 'changed', a: '0.1', b: '0.2' },
        { path: '/tags/1', change: 'added', a: '', b: 'new' }
      ],
      more: 0
    });
    const diff = row('log.txt').display;
    assert.equal(diff.type, 'diff');
    assert.deepEqual(
      diff.type === 'diff' && diff.lines.filter(line => line.kind !== 'hunk').map(line => [line.kind, line.text]),
      [['del', 'loss 0.5'], ['add', 'loss 0.4']]
    );
    for (const path of ['model.bin', 'new.csv', 'same.txt']) {
      assert.deepEqual(row(path).display, { type: 'none' }, path);
    }
  });

  test('the differing ones by default, all on demand; images to fetch; changes that count', () => {
    assert.deepEqual(
      visibleArtifacts(model, false).map(r => r.path),
      ['config.json', 'fig.png', 'log.txt', 'model.bin', 'new.csv', 'predictions.csv', 'timing.txt']
    );
    assert.equal(visibleArtifacts(model, true).length, 8);
    assert.deepEqual(imagePaths(model.rows), ['fig.png']);
    assert.equal(isArtifactChange(row('timing.txt')), false);
    assert.equal(isArtifactChange(row('new.csv')), true);
  });

  test('the inputs line lists the changed project files', () => {
    assert.deepEqual(model.inputs, {
      known: true,
      text: '2 project files changed between the runs (2 unchanged)',
      changes: [
        { path: 'data.txt', status: 'changed' },
        { path: 'extra.py', status: 'added' }
      ]
    });
    assert.equal(
      inputsLine({ known: true, unchanged: 3, changes: [] }).text,
      'no project file changed between the runs (3 unchanged)'
    );
    assert.equal(inputsLine({ known: false, unchanged: 0, changes: [] }).known, false);
  });

  test('the header counts changed artifacts; older comparisons have none', () => {
    assert.match(buildCompareModel(withArtifacts()).header.summary, /, 6 artifacts changed$/);
    const older = buildArtifactsModel(comparisonFixture());
    assert.deepEqual(older, { known: false, rows: [], inputs: null });
    assert.doesNotMatch(buildCompareModel(comparisonFixture()).header.summary, /artifact/);
  });
});
