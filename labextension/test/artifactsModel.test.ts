import assert from 'node:assert/strict';
import { describe, test } from 'node:test';

import type { ArtifactPreview, RunArtifacts } from '../src/api';
import { artifactList, describeRunFolder, fileName, formatBytes, previewDisplay } from '../src/artifactsModel';

const files: RunArtifacts = {
  ref: 'predict.ipynb@v1',
  run_id: 'r1',
  run_folder: 'overlay',
  artifacts: [
    { path: 'fig.png', size: 288, sha256: 'cc', media_type: 'image/png' },
    { path: 'out/predictions.csv', size: 2048, sha256: 'd3', media_type: 'text/csv' },
    { path: 'blob', size: 5, sha256: 'ee', media_type: null }
  ],
  notes: ['skipped big.bin: larger than the artifact size limit']
};

describe('the run artifacts list', () => {
  test('path, size, type; a total; the folder in words; the notes', () => {
    const list = artifactList(files);
    assert.deepEqual(
      list.rows.map(row => [row.path, row.name, row.size, row.type]),
      [
        ['fig.png', 'fig.png', '288 bytes', 'image/png'],
        ['out/predictions.csv', 'predictions.csv', '2.0 KiB', 'text/csv'],
        ['blob', 'blob', '5 bytes', 'unknown']
      ]
    );
    assert.equal(list.summary, '3 files, 2.3 KiB');
    assert.match(list.folder, /overlay of the project/);
    assert.deepEqual(list.notes, files.notes);
  });

  test('no files, and each way a folder was made', () => {
    assert.equal(artifactList({ ...files, artifacts: [] }).summary, 'no files');
    assert.match(describeRunFolder('copy'), /copy of the project/);
    assert.match(describeRunFolder('in-place'), /in-place/);
    assert.match(describeRunFolder(null), /before runs had folders/);
  });

  test('sizes as the CLI says them, names from paths', () => {
    assert.equal(formatBytes(0), '0 bytes');
    assert.equal(formatBytes(1023), '1023 bytes');
    assert.equal(formatBytes(1536), '1.5 KiB');
    assert.equal(formatBytes(12 * 1024 * 1024), '12.0 MiB');
    assert.equal(fileName('a/b/c.json'), 'c.json');
    assert.equal(fileName('a/'), 'artifact');
  });
});

describe('previews', () => {
  const base = { path: 'p', size: 100, media_type: 'text/csv' };

  test('a table: its cells as text (null empty, numbers whole), and how many rows', () => {
    const preview: ArtifactPreview = {
      ...base,
      kind: 'table',
      columns: ['id', 'pred'],
      rows: [[0, 0.123456789], [1, null], [2, 'x']],
      total_rows: 3
    };
    assert.deepEqual(previewDisplay(preview), {
      type: 'table',
      columns: ['id', 'pred'],
      rows: [['0', '0.123456789'], ['1', ''], ['2', 'x']],
      note: '3 rows'
    });
    const cut = previewDisplay({ ...preview, total_rows: 1000 });
    assert.equal(cut.type === 'table' && cut.note, 'the first 3 of 1000 rows');
  });

  test('JSON pretty-printed, text as it is (saying when cut), images, and why not', () => {
    assert.deepEqual(previewDisplay({ ...base, kind: 'json', value: { a: [1, 2] } }), {
      type: 'text',
      text: '{\n  "a": [\n    1,\n    2\n  ]\n}',
      note: '',
      json: true
    });
    const text = previewDisplay({ ...base, size: 2048, kind: 'text', text: '<b>hi</b>', truncated: true });
    assert.deepEqual(text, {
      type: 'text',
      text: '<b>hi</b>',
      note: 'the start of the file (2.0 KiB in all)',
      json: false
    });
    assert.deepEqual(previewDisplay({ ...base, kind: 'image' }), { type: 'image' });
    assert.deepEqual(previewDisplay({ ...base, kind: 'binary', reason: 'no preview for this type' }), {
      type: 'message',
      text: 'No preview: no preview for this type'
    });
  });
});
