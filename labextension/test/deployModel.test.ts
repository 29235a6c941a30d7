import assert from 'node:assert/strict';
import { test } from 'node:test';

import {
  cellFunctions,
  cellRoute,
  cellTargets,
  curlCommand,
  defaultEndpointName,
  deployRequest,
  ENDPOINT_NAME,
  exampleBody,
  exampleValue,
  functionParameters,
  pythonLiteral,
  shellQuote
} from '../src/deployModel';

const PREDICT = `def predict(features: list[list[float]]) -> list[int]:
    """Wine class (0, 1 or 2) of each row."""
    frame = pd.DataFrame(features, columns=FEATURES)
    return [int(label) for label in model.predict(frame)]

predict(X_test.iloc[:3].values.tolist())`;

test('cellFunctions finds top-level def and async def, once each, in order', () => {
  assert.deepEqual(cellFunctions(PREDICT), ['predict']);
  const source = [
    'import x',
    'async def fetch(url):',
    '    def inner(): pass',
    '    return 1',
    'def  score (a, b=2):',
    '    pass',
    '# def commented(): no',
    'def score(a): pass',
    'class A:',
    '    def method(self): pass'
  ].join('\n');
  assert.deepEqual(cellFunctions(source), ['fetch', 'score']);
  assert.deepEqual(cellFunctions('x = 1'), []);
});

test('cellRoute reads Kernel Gateway annotations at the start of the cell only', () => {
  assert.deepEqual(cellRoute('# GET /hello\nprint("hi")'), { method: 'GET', path: '/hello' });
  assert.deepEqual(cellRoute('#   POST   /items/:id  \nx'), { method: 'POST', path: '/items/:id' });
  assert.deepEqual(cellRoute('# ResponseInfo GET /items\nprint(1)'), {
    method: 'GET',
    path: '/items'
  });
  assert.equal(cellRoute('x = 1\n# GET /hello'), null);
  assert.equal(cellRoute('# PATCH /hello'), null);
  assert.equal(cellRoute('# GET hello'), null);
  assert.equal(cellRoute(' # GET /hello'), null);
  assert.deepEqual(cellTargets('# GET /a\ndef f(): pass'), {
    functions: ['f'],
    route: { method: 'GET', path: '/a' }
  });
});

test('defaultEndpointName is valid for the server and follows its rule', () => {
  assert.equal(defaultEndpointName('examples/train.ipynb', 'predict'), 'train-predict');
  assert.equal(defaultEndpointName('My Notebook (v2).ipynb', 'Predict_Proba'), 'my-notebook-v2-predict_proba');
  assert.equal(defaultEndpointName('api.ipynb', null), 'api');
  assert.equal(defaultEndpointName('_private.ipynb', null), 'private');
  assert.equal(defaultEndpointName('!!!.ipynb', null), 'endpoint');
  const long = defaultEndpointName(`${'a'.repeat(70)}.ipynb`, 'f');
  assert.equal(long.length, 63);
  for (const name of ['train-predict', 'api', 'private', 'endpoint', long]) {
    assert.match(name, ENDPOINT_NAME);
  }
  assert.doesNotMatch('Bad Name', ENDPOINT_NAME);
  assert.doesNotMatch('-x', ENDPOINT_NAME);
});

test('deployRequest: function or annotated cells, workers only when not 1', () => {
  assert.deepEqual(
    deployRequest({ ref: 'train.ipynb@v3', mode: { kind: 'function', function: 'predict' }, name: ' iris ', workers: 1 }),
    { target: 'train.ipynb@v3', name: 'iris', function: 'predict' }
  );
  assert.deepEqual(
    deployRequest({ ref: 'api.ipynb@v1', mode: { kind: 'cells' }, name: 'api', workers: 2 }),
    { target: 'api.ipynb@v1', name: 'api', cells: true, workers: 2 }
  );
});

test('deployRequest: reexecute only when asked, and only for a function', () => {
  const fn = { kind: 'function' as const, function: 'predict' };
  assert.deepEqual(deployRequest({ ref: 'a.ipynb@v1', mode: fn, name: 'a', workers: 1, reexecute: true }), {
    target: 'a.ipynb@v1',
    name: 'a',
    function: 'predict',
    reexecute: true
  });
  assert.equal(deployRequest({ ref: 'a.ipynb@v1', mode: fn, name: 'a', workers: 1, reexecute: false }).reexecute, undefined);
  assert.equal(
    deployRequest({ ref: 'a.ipynb@v1', mode: { kind: 'cells' }, name: 'a', workers: 1, reexecute: true }).reexecute,
    undefined
  );
});

test('functionParameters and exampleBody read the signature', () => {
  const source = [
    'def f(self, a: int, b: dict[str, list[int]] = {"k": [1, 2]}, *args, c: str | None = None,',
    '      d: Optional[float] = 0.5, e=True, f: "list[str]" = [\'x\'], **kwargs) -> int:',
    '    return a'
  ].join('\n');
  assert.deepEqual(functionParameters(source, 'f'), [
    { name: 'a', annotation: 'int', default: null },
    { name: 'b', annotation: 'dict[str, list[int]]', default: '{"k": [1, 2]}' },
    { name: 'c', annotation: 'str | None', default: 'None' },
    { name: 'd', annotation: 'Optional[float]', default: '0.5' },
    { name: 'e', annotation: null, default: 'True' },
    { name: 'f', annotation: '"list[str]"', default: "['x']" }
  ]);
  assert.deepEqual(exampleBody(source, 'f'), {
    a: 0,
    b: { k: [1, 2] },
    c: null,
    d: 0.5,
    e: true,
    f: ['x']
  });
  assert.deepEqual(exampleBody(PREDICT, 'predict'), { features: [[0]] });
  assert.equal(functionParameters(PREDICT, 'missing'), null);
  assert.deepEqual(exampleBody(PREDICT, 'missing'), {});
});

test('exampleValue and pythonLiteral', () => {
  assert.equal(exampleValue('str'), '');
  assert.equal(exampleValue('bool'), false);
  assert.deepEqual(exampleValue('List[Tuple[int, str]]'), [[0]]);
  assert.deepEqual(exampleValue('typing.Dict[str, int]'), {});
  assert.equal(exampleValue('Union[None, int]'), 0);
  assert.equal(exampleValue("Literal['a', 'b']"), 'a');
  assert.equal(exampleValue('np.ndarray'), null);
  assert.equal(pythonLiteral("'it'"), 'it');
  assert.deepEqual(pythonLiteral('[1, 2,]'), [1, 2]);
  assert.equal(pythonLiteral('some_call()'), undefined);
});

test('shellQuote leaves plain words and quotes the rest for a POSIX shell', () => {
  assert.equal(shellQuote('http://127.0.0.1:8080/predict'), 'http://127.0.0.1:8080/predict');
  assert.equal(shellQuote('{"a": 1}'), `'{"a": 1}'`);
  assert.equal(shellQuote("it's"), `'it'\\''s'`);
});

test('curlCommand: the token from $TOKEN in double quotes, the body in single quotes', () => {
  assert.equal(
    curlCommand({
      url: 'http://127.0.0.1:8123',
      method: 'POST',
      path: '/predict',
      auth: true,
      body: '{"features": [[13.2, 1.8, 2.1, 4.4]]}'
    }),
    `curl -X POST http://127.0.0.1:8123/predict -H "Authorization: Bearer $TOKEN" ` +
      `-H 'Content-Type: application/json' -d '{"features": [[13.2, 1.8, 2.1, 4.4]]}'`
  );
  assert.equal(
    curlCommand({ url: 'http://127.0.0.1:8123/', method: 'GET', path: '/items?sort=price', auth: false }),
    `curl 'http://127.0.0.1:8123/items?sort=price'`
  );
  assert.equal(
    curlCommand({ url: 'http://h:1', method: 'POST', path: '/echo', auth: false, body: "it's" }),
    `curl -X POST http://h:1/echo -H 'Content-Type: text/plain' -d 'it'\\''s'`
  );
});
