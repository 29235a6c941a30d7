import assert from 'node:assert/strict';
import { describe, test } from 'node:test';

import { backoffDelay, EventStreamParser, toMLXEvent } from '../src/eventStream';

describe('EventStreamParser', () => {
  test('parses typed events and skips comments', () => {
    const parser = new EventStreamParser();
    const events = parser.push(
      ': jupyter_mlx events\n\nevent: progress\ndata: {"run_id":"a","cell":3,"cells":10}\n\n: keepalive\n\n'
    );
    assert.deepEqual(events, [
      { type: 'progress', data: '{"run_id":"a","cell":3,"cells":10}' }
    ]);
  });

  test('joins events split across chunks anywhere', () => {
    const text = 'event: run\ndata: {"id":"x",\ndata: "status":"running"}\n\nevent: progress\ndata: 1\n\n';
    for (let cut = 0; cut <= text.length; cut++) {
      const parser = new EventStreamParser();
      const events = [...parser.push(text.slice(0, cut)), ...parser.push(text.slice(cut))];
      assert.deepEqual(events, [
        { type: 'run', data: '{"id":"x",\n"status":"running"}' },
        { type: 'progress', data: '1' }
      ], `cut at ${cut}`);
    }
  });

  test('accepts CRLF and CR line ends, also split between chunks', () => {
    const parser = new EventStreamParser();
    const events = [
      ...parser.push('event: run\r'),
      ...parser.push('\ndata:x\r\n\r'),
      ...parser.push('\ndata: y\r\r')
    ];
    assert.deepEqual(events, [
      { type: 'run', data: 'x' },
      { type: 'message', data: 'y' }
    ]);
  });

  test('an event without data is not dispatched, and an unfinished one waits', () => {
    const parser = new EventStreamParser();
    assert.deepEqual(parser.push('event: run\n\nevent: run\ndata: 1\n'), []);
    assert.deepEqual(parser.push('\n'), [{ type: 'run', data: '1' }]);
  });
});

describe('toMLXEvent', () => {
  test('types run and progress events', () => {
    const run = toMLXEvent({ type: 'run', data: '{"id":"a","status":"cancelled"}' });
    assert.equal(run?.type, 'run');
    assert.equal(run?.type === 'run' && run.run.status, 'cancelled');
    const progress = toMLXEvent({ type: 'progress', data: '{"run_id":"a","cell":2,"cells":6,"elapsed":1.5}' });
    assert.deepEqual(progress, { type: 'progress', progress: { run_id: 'a', cell: 2, cells: 6, elapsed: 1.5 } });
  });

  test('ignores unknown types and malformed data', () => {
    assert.equal(toMLXEvent({ type: 'message', data: '{"id":"a","status":"x"}' }), null);
    assert.equal(toMLXEvent({ type: 'run', data: 'not json' }), null);
    assert.equal(toMLXEvent({ type: 'run', data: '[1]' }), null);
    assert.equal(toMLXEvent({ type: 'progress', data: '{"run_id":"a","cell":"2"}' }), null);
  });
});

describe('backoffDelay', () => {
  test('doubles from the base up to the cap', () => {
    assert.deepEqual([0, 1, 2, 3, 10].map(n => backoffDelay(n)), [1000, 2000, 4000, 8000, 30000]);
    assert.equal(backoffDelay(2, 500, 1500), 1500);
  });
});
