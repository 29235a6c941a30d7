import assert from 'node:assert/strict';
import { test } from 'node:test';

import {
  buildRequest,
  defaultText,
  FieldState,
  fieldValues,
  gridSize,
  LaunchParameter,
  parseValue,
  runsLabel,
  splitValues
} from '../src/launchModel';

const param = (name: string, type: string, value: unknown): LaunchParameter => ({
  name,
  type,
  default: value,
  help: null
});
const field = (parameter: LaunchParameter, text = defaultText(parameter)): FieldState => ({
  parameter,
  text
});

test('parseValue types the text per parameter type; bad text passes on for the server', () => {
  assert.equal(parseValue('int', ' 5 '), 5);
  assert.equal(parseValue('int', '-3'), -3);
  assert.equal(parseValue('int', 'abc'), 'abc');
  assert.equal(parseValue('int', '1.5'), '1.5');
  assert.equal(parseValue('float', '1e-3'), 0.001);
  assert.equal(parseValue('float', ''), '');
  assert.equal(parseValue('bool', 'True'), true);
  assert.equal(parseValue('bool', 'no'), false);
  assert.equal(parseValue('bool', 'maybe'), 'maybe');
  assert.equal(parseValue('str', " 'quoted' "), 'quoted');
  assert.equal(parseValue('str', ' kept '), ' kept ');
  assert.deepEqual(parseValue('list', '[1, 2]'), [1, 2]);
  assert.equal(parseValue('list', 'oops'), 'oops');
});

test('defaultText shows a default as a user would type it', () => {
  assert.equal(defaultText(param('x', 'int', 1)), '1');
  assert.equal(defaultText(param('b', 'bool', false)), 'false');
  assert.equal(defaultText(param('s', 'str', 'a')), 'a');
  assert.equal(defaultText(param('l', 'list', [1, 'a'])), '[1,"a"]');
  assert.equal(defaultText(param('n', 'NoneType', null)), '');
});

test('splitValues splits at top-level commas only and drops empty items', () => {
  assert.deepEqual(splitValues('1, 2,3'), ['1', '2', '3']);
  assert.deepEqual(splitValues('[1, 2], [3]'), ['[1, 2]', '[3]']);
  assert.deepEqual(splitValues("'a,b', c"), ["'a,b'", 'c']);
  assert.deepEqual(splitValues('1,,2,'), ['1', '2']);
  assert.deepEqual(splitValues(''), []);
});

test('fieldValues and gridSize: the product of the value counts in sweep mode', () => {
  const x = field(param('x', 'int', 1), '1,2,3');
  const label = field(param('label', 'str', 'a'), 'a, b');
  const empty = field(param('s', 'str', ''), '');
  assert.deepEqual(fieldValues(x, true), [1, 2, 3]);
  assert.deepEqual(fieldValues(x, false), ['1,2,3']);
  assert.deepEqual(fieldValues(empty, true), ['']);
  assert.equal(gridSize([x, label, empty], true), 6);
  assert.equal(gridSize([x, label], false), 1);
  assert.equal(gridSize([], true), 1);
  assert.equal(runsLabel(1), '1 run');
  assert.equal(runsLabel(6), '6 runs');
});

test('buildRequest sends changed fields only: a run or a sweep grid', () => {
  const x = param('x', 'int', 1);
  const label = param('label', 'str', 'a');
  assert.deepEqual(buildRequest('t.ipynb', [field(x, '5'), field(label)], false, 'local'), {
    kind: 'run',
    body: { notebook: 't.ipynb', parameters: { x: 5 }, backend: 'local' }
  });
  assert.deepEqual(
    buildRequest('t.ipynb', [field(x, '1,2,3'), field(label, 'a,b')], true, 'dask'),
    {
      kind: 'sweep',
      body: { notebook: 't.ipynb', grid: { x: [1, 2, 3], label: ['a', 'b'] }, backend: 'dask' }
    }
  );
  assert.deepEqual(buildRequest('t.ipynb', [field(x, 'abc')], false, 'local').body, {
    notebook: 't.ipynb',
    parameters: { x: 'abc' },
    backend: 'local'
  });
});
