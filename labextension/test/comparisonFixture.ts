/**
 * A small comparison of train.ipynb@v1 (C=0.1) with @v3 (C=10), shaped like the server's.
 */
import type { CellComparison, Comparison, ComparisonHeader, OutputPair } from '../src/comparison';

function header(label: 'A' | 'B', version: number): ComparisonHeader {
  return {
    label,
    kind: 'run',
    ref: `train.ipynb@v${version}`,
    notebook: 'train.ipynb',
    run_id: `run${version}`,
    version,
    status: 'succeeded',
    started_at: '2025-11-25T11:59:01.000Z',
    finished_at: '2025-11-25T11:59:04.500Z',
    duration: 3.5,
    git_commit: label === 'B' ? '0123456789abcdef' : null,
    git_dirty: label === 'B' ? true : null,
    sweep_id: null,
    user: label === 'B' ? 'bob' : null
  };
}

function output(overrides: Partial<OutputPair>): OutputPair {
  return { index_a: 0, index_b: 0, kind: 'text', mime: 'text/plain', judgement: 'identical', detail: {}, ...overrides };
}

function cell(index: number, overrides: Partial<CellComparison>): CellComparison {
  return {
    index_a: index,
    index_b: index,
    id: `c${index}`,
    cell_type: 'code',
    tags: [],
    judgement: 'identical',
    source: { changed: false, diff: null },
    outputs: [],
    ...overrides
  };
}

const counts = { identical: 0, within_tolerance: 0, changed: 0, added: 0, removed: 0, ignored: 0 };

export function comparisonFixture(): Comparison {
  return {
    format: 'jupyter_mlx.comparison',
    version: 1,
    a: header('A', 1),
    b: header('B', 3),
    options: {},
    parameters: [
      { name: 'C', a: 0.1, b: 10.0, status: 'changed', origin_a: 'override', origin_b: 'override' },
      { name: 'max_iter', a: 200, b: 100, status: 'changed', origin_a: 'override', origin_b: 'default' },
      { name: 'seed', a: 0, b: 0, status: 'same', origin_a: 'default', origin_b: 'default' },
      { name: 'label', a: null, b: 'x', status: 'added', origin_a: null, origin_b: 'override' }
    ],
    metrics: [
      {
        name: 'accuracy', a: 0.8518518518518519, b: 0.8703703703703703,
        abs_change: 0.01851851851851849, rel_change: 0.021739130434782573,
        judgement: 'changed', threshold: { rtol: 1e-9, atol: 1e-12 }, series: null
      },
      {
        name: 'loss', a: 0.5, b: 0.5, abs_change: 0, rel_change: 0,
        judgement: 'identical', threshold: { rtol: 1e-9, atol: 1e-12 },
        series: {
          name: 'loss', steps_a: 5, steps_b: 5, max_abs_diff: 0, first_difference_step: null,
          aligned_by: 'step', steps_compared: 5, changed_steps: [], changed_steps_count: 0
        }
      },
      {
        name: 'learning_curve', a: 0.851852, b: 0.851852, abs_change: 0, rel_change: 0,
        judgement: 'changed', threshold: { rtol: 1e-9, atol: 1e-12 },
        series: {
          name: 'learning_curve', steps_a: 5, steps_b: 5, max_abs_diff: 0.1, first_difference_step: 1,
          aligned_by: 'step', steps_compared: 5, changed_steps: [[1, 1], [3, 3]], changed_steps_count: 2
        }
      }
    ],
    environment: {},
    cells: [
      cell(0, { cell_type: 'markdown' }),
      cell(1, {
        tags: ['injected-parameters'],
        judgement: 'changed',
        source: { changed: true, diff: '--- A\n+++ B\n@@ -1,2 +1,2 @@\n # Parameters\n-C = 0.1\n+C = 10.0' }
      }),
      cell(2, {
        judgement: 'changed',
        outputs: [
          output({
            kind: 'metric', mime: 'application/vnd.jupyter-mlx.metric+json', judgement: 'changed',
            detail: { name: 'accuracy', a: 0.8518518518518519, b: 0.8703703703703703, step_a: null, step_b: null }
          }),
          output({
            index_a: 1, index_b: 1, kind: 'stream', mime: 'stdout', judgement: 'changed',
            detail: { diff: '--- A\n+++ B\n@@ -1 +1 @@\n-accuracy 0.852\n+accuracy 0.870', truncated: false }
          }),
          output({
            index_a: 2, index_b: 2, kind: 'image', mime: 'image/png', judgement: 'changed',
            detail: {
              mime: 'image/png', size_a: [429, 283], size_b: [429, 283], size_changed: false,
              changed_pixels: 2191, changed_fraction: 0.018046735361222994, similarity: 0.9445,
              bbox: [62, 82, 409, 107], mask: 'iVBORw0K'
            }
          })
        ]
      }),
      cell(3, {
        judgement: 'changed',
        outputs: [
          output({
            kind: 'table', mime: 'text/html', judgement: 'changed',
            detail: {
              shape_a: [3, 4], shape_b: [3, 5], columns_added: ['support'], columns_removed: [],
              rows_added: [], rows_removed: [], reordered: [],
              cells_changed: [{ row: 'class_0', column: 'precision', a: '0.812', b: '0.867' }],
              cells_changed_count: 3, cells_within_tolerance: 0
            }
          })
        ]
      }),
      cell(4, {
        judgement: 'within_tolerance',
        outputs: [output({ judgement: 'within_tolerance', detail: { numbers: { compared: 2, max_abs_diff: 1e-12 } } })]
      }),
      cell(5, { index_a: null, judgement: 'added', outputs: [output({ index_a: null, kind: 'stream', mime: 'stdout', judgement: 'added' })] }),
      cell(6, {
        judgement: 'changed',
        outputs: [
          output({
            kind: 'error', mime: null, judgement: 'changed',
            detail: { diff: '-ValueError: bad n=1\n+ValueError: bad n=7', ename_a: 'ValueError', evalue_a: 'bad n=1', ename_b: 'ValueError', evalue_b: 'bad n=7' }
          })
        ]
      })
    ],
    summary: {
      cells: { ...counts, identical: 1, within_tolerance: 1, changed: 4, added: 1 },
      outputs: { ...counts, changed: 6, added: 1, within_tolerance: 1 },
      sources_changed: 1,
      parameters_changed: 2,
      metrics_changed: 1,
      errors_added: 0,
      unexpected: ['cell 3: stdout stream changed', 'metric accuracy: 0.851852 -> 0.87037 (+2.17%)'],
      verdict: 'unexpected_changes'
    }
  };
}
