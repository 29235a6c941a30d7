"""Sorting and filtering run listings: the parser, the store's SQL, the REST API and the CLI."""
from __future__ import annotations

import json
import time

import pytest

from jupyter_mlx.cli import main
from jupyter_mlx.config import MLXConfig
from jupyter_mlx.errors import MLXError
from jupyter_mlx.metrics import Metric
from jupyter_mlx.service import RunService
from jupyter_mlx.store import NewRun, RunError, RunOutcome
from jupyter_mlx.store.run_query import Comparison, RunSort, TextSearch, parse_filter, parse_query, parse_sort

from conftest import STORE_BACKENDS, store_url
from rest_client import SERVER_CONFIG, error_of, get_json

pytest_plugins = ("pytest_jupyter.jupyter_server",)


# -- the parser ------------------------------------------------------------------------------
@pytest.mark.parametrize("op", ["=", "!=", "<", "<=", ">", ">="])
def test_every_operator_parses_longest_first(op):
    assert parse_filter(f"C{op}0.5").terms == (Comparison("any", "C", op, 0.5),)
    assert parse_filter(f"solver{op}lbfgs").terms == (Comparison("any", "solver", op, "lbfgs"),)


def test_names_values_quotes_and_bare_words():
    assert parse_filter("metrics.acc>=0.9 params.C<1e-3 tag=best status!=failed").terms == (
        Comparison("metrics", "acc", ">=", 0.9),
        Comparison("params", "C", "<", 0.001),
        Comparison("tag", None, "=", "best"),
        Comparison("status", None, "!=", "failed"),
    )
    assert parse_filter("version>=v3 backend=dask notebook=sub/a.ipynb").terms == (
        Comparison("version", None, ">=", 3.0),
        Comparison("backend", None, "=", "dask"),
        Comparison("notebook", None, "=", "sub/a.ipynb"),
    )
    # quotes group spaces (in values, names and bare words); \" and \\ escape inside them
    assert parse_filter('split="test set" "my name">2 "did NOT converge" x="a\\"b\\\\"').terms == (
        Comparison("any", "split", "=", "test set"),
        Comparison("any", "my name", ">", 2.0),
        TextSearch("did not converge"),
        Comparison("any", "x", "=", 'a"b\\'),
    )
    # a quoted field name is a parameter/metric name; a dotted name that is no prefix is one too
    assert parse_filter('"status"=x model.lr>-.5 C=""').terms == (
        Comparison("any", "status", "=", "x"),
        Comparison("any", "model.lr", ">", -0.5),
        Comparison("any", "C", "=", ""),
    )
    # numbers compare numerically, anything else (nan too) as a string
    assert [t.numeric for t in parse_filter("a=1 b=-2.5e3 c=nan d=1x e=0x10").terms] == [
        True, True, False, False, False
    ]
    assert parse_filter("Succeeded  CONVERGE").terms == (TextSearch("succeeded"), TextSearch("converge"))
    # user: who asked for the run, compared as a string (a uid too); "user" quoted: a parameter/metric
    assert parse_filter('user=alice user!="Alice Liddell" user=1000 "user"=x params.user=y').terms == (
        Comparison("user", None, "=", "alice"),
        Comparison("user", None, "!=", "Alice Liddell"),
        Comparison("user", None, "=", "1000"),
        Comparison("any", "user", "=", "x"),
        Comparison("params", "user", "=", "y"),
    )
    for empty in (None, "", "   \t "):
        assert not parse_filter(empty) and parse_filter(empty).terms == ()


@pytest.mark.parametrize(
    "text, message",
    [
        ("=3", "filter term '=3' has no name before '='"),
        ("C=", "filter term 'C=' has no value after '='"),
        ("C==3", "filter term 'C==3' has more than one operator"),
        ("a<b<c", "filter term 'a<b<c' has more than one operator"),
        ("status=done", "filter term 'status=done': unknown status 'done'; one of queued, running"),
        ("status>failed", "filter term 'status>failed': status takes = or !=, not '>'"),
        ("tag<x", "filter term 'tag<x': tag takes = or !=, not '<'"),
        ("version=abc", "filter term 'version=abc': version must be a number, not 'abc'"),
        ("metrics.=1", "filter term 'metrics.=1' needs a name after 'metrics.'"),
        ("params.>2", "filter term 'params.>2' needs a name after 'params.'"),
        ('ok "unterminated', "unterminated quote in filter term '\"unterminated'"),
    ],
)
def test_bad_filters_name_the_bad_term(text, message):
    with pytest.raises(MLXError) as caught:
        parse_filter(text)
    assert caught.value.code == "invalid_request"
    assert caught.value.message.startswith(message) and "\n" not in caught.value.message


def test_sort_keys_and_orders():
    assert parse_sort(None, None) == RunSort()
    assert not parse_sort("", "desc").explicit
    assert parse_sort(None, "asc") == RunSort("queued_at", None, False, explicit=True)
    assert parse_sort("metrics.accuracy", "ASC") == RunSort("metrics", "accuracy", False, explicit=True)
    assert parse_sort("params.my.name").name == "my.name"
    for column in ("queued_at", "version", "duration", "status", "notebook"):
        assert parse_sort(column).key == column
    for sort, order, message in [
        ("bogus", None, "unknown sort key 'bogus'; one of queued_at, version, duration"),
        ("metrics.", None, "sort key 'metrics.' needs a name after 'metrics.'"),
        ("version", "up", "order must be asc or desc, not 'up'"),
    ]:
        with pytest.raises(MLXError) as caught:
            parse_query(sort, order)
        assert caught.value.code == "invalid_request" and caught.value.message.startswith(message)


# -- the store -------------------------------------------------------------------------------
def _add(store, notebook, parameters, *, metrics=None, status="succeeded", tags=(), duration=1.0, error=None,
         backend="local", user=None):
    run = store.create_run(NewRun(notebook, b"{}", parameters, list(tags), backend=backend, user=user))
    if status == "queued":
        return run
    now = time.time()
    store.mark_running(run.id, now)
    values = [Metric(name, value) for name, value in (metrics or {}).items()]
    return store.finish_run(run.id, RunOutcome(status, None, now, now + duration, [], error, values, None))


@pytest.fixture(scope="module", params=STORE_BACKENDS)
def seeded(tmp_path_factory, request):
    """24 runs: train.ipynb v1-v20 (C, solver, deep; accuracy on most; a failure; 2 queued; by alice,
    bob or nobody recorded, in turn) and eval/holdout.ipynb v1-v4 (odd parameter names, a *metric*
    named C; v2 by "Alice Liddell"), on SQLite and PostgreSQL."""
    root = tmp_path_factory.mktemp("query")
    url = store_url(request.param, root, request)
    # the project's configuration: the CLI and the server below open the same store
    (root / "jupyter_mlx_config.json").write_text(json.dumps({"MLXConfig": {"store_url": url}}))
    service = RunService(root, config=MLXConfig(store_url=url))
    store = service.store
    for i in range(20):
        status = "queued" if i >= 18 else "failed" if i == 7 else "succeeded"
        error = RunError("ConvergenceWarning", "solver did not converge", 2, ["Traceback: zebra"]) if i == 7 else None
        _add(
            store, "train.ipynb", {"C": [0.01, 0.1, 1, 10][i % 4], "solver": "lbfgs" if i % 2 else "saga",
                                   "deep": i % 3 == 0},
            metrics={"loss": 0.3} if i % 5 == 4 else {"accuracy": round(0.5 + i / 100, 2)},
            status=status, error=error, tags=["best"] if i in (3, 11) else [], duration=i + 1.0,
            user=("alice", "bob", None)[i % 3],
        )
    for j in range(4):
        _add(
            store, "eval/holdout.ipynb", {"split": "test set" if j % 2 else "train", "my name": j, "λ": j / 2, 'a"b': j},
            metrics={"C": 5.0 + j, "accuracy": 0.9}, tags=["best", "holdout"] if j == 0 else [],
            duration=0.5, backend="dask" if j == 3 else "local", user="Alice Liddell" if j == 1 else None,
        )
    yield root, service
    service.close()


@pytest.fixture
def store(seeded):
    return seeded[1].store


def _all(store, **kwargs):
    page = store.list_runs(limit=1000, **kwargs)
    assert page.total == len(page.runs)
    return page.runs


def _refs(runs):
    return [run.ref for run in runs]


def _oracle(runs, key, descending):
    """The contract's order in Python: by key, missing last, ties newest first."""
    def ties(run):
        return (-run.queued_at, -run.version, run.id)

    have = [run for run in runs if key(run) is not None]
    lacking = sorted((run for run in runs if key(run) is None), key=ties)
    have.sort(key=ties)
    have.sort(key=key, reverse=descending)  # stable: ties keep newest first
    return have + lacking


def test_default_order_is_unchanged(store):
    everything = _all(store)
    assert _refs(everything)[:3] == ["eval/holdout.ipynb@v4", "eval/holdout.ipynb@v3", "eval/holdout.ipynb@v2"]
    assert [run.queued_at for run in everything] == sorted((run.queued_at for run in everything), reverse=True)
    assert [run.version for run in _all(store, notebook="train.ipynb")] == list(range(20, 0, -1))
    assert _refs(_all(store, sort="queued_at", order="desc")) == _refs(everything)
    assert _refs(_all(store, sort="queued_at", order="asc")) == _refs(everything)[::-1]
    assert _refs(_all(store, order="asc")) == _refs(everything)[::-1]


@pytest.mark.parametrize("descending", [True, False])
def test_sorting_by_a_metric_puts_runs_without_it_last(store, descending):
    everything = _all(store)
    order = "desc" if descending else "asc"
    runs = _all(store, sort="metrics.accuracy", order=order)
    assert _refs(runs) == _refs(_oracle(everything, lambda r: r.metrics.get("accuracy"), descending))
    lacking = [run for run in runs if "accuracy" not in run.metrics]
    assert len(lacking) == 5 and runs[-5:] == lacking  # 3 with loss only, 2 queued
    best = runs[0] if descending else runs[-9]
    assert best.metrics["accuracy"] == 0.9 and best.ref == "eval/holdout.ipynb@v4"  # ties: newest first


@pytest.mark.parametrize("descending", [True, False])
def test_sorting_by_params_duration_status_notebook_and_version(store, descending):
    everything = _all(store)
    order = "desc" if descending else "asc"
    keys = {
        "params.C": lambda r: r.parameters.get("C"),
        "params.my name": lambda r: r.parameters.get("my name"),
        "params.λ": lambda r: r.parameters.get("λ"),
        "duration": lambda r: r.duration,
        "status": lambda r: r.status,
        "notebook": lambda r: r.notebook,
        "version": lambda r: r.version,
    }
    for sort, key in keys.items():
        runs = _all(store, sort=sort, order=order)
        assert _refs(runs) == _refs(_oracle(everything, key, descending)), sort
    by_duration = _all(store, sort="duration", order=order)
    assert {run.status for run in by_duration[-2:]} == {"queued"}  # no duration: last both ways
    by_c = _all(store, sort="params.C", order=order)
    assert {run.notebook for run in by_c[-4:]} == {"eval/holdout.ipynb"}  # no parameter C


def test_sorted_pages_tile_the_whole_listing(store):
    whole = _refs(_all(store, sort="metrics.accuracy", filter="train"))
    pages = [store.list_runs(limit=7, offset=offset, sort="metrics.accuracy", filter="train") for offset in (0, 7, 14, 21)]
    assert [ref for page in pages for ref in _refs(page.runs)] == whole
    assert {page.total for page in pages} == {len(whole)}
    assert store.list_runs(limit=5, offset=500, filter="train").runs == []
    assert store.list_runs(limit=5, offset=500, filter="train").total == len(whole)


def _matching(store, text, **kwargs):
    return sorted(_refs(_all(store, filter=text, **kwargs)))


def _where(store, predicate):
    return sorted(run.ref for run in _all(store) if predicate(run))


def test_numeric_and_string_comparisons_of_parameters_and_metrics(store):
    def param(name):
        return lambda run: run.parameters.get(name)

    # C: the parameter C of train.ipynb, or the metric C of eval/holdout.ipynb
    assert _matching(store, "C>0.1") == _where(
        store, lambda r: (r.parameters.get("C") or 0) > 0.1 or (r.metrics.get("C") or 0) > 0.1
    )
    assert len(_matching(store, "C>0.1")) == 10 + 4
    assert _matching(store, "params.C>0.1") == _where(store, lambda r: (param("C")(r) or 0) > 0.1)
    assert _matching(store, "metrics.C>=6") == ["eval/holdout.ipynb@v2", "eval/holdout.ipynb@v3", "eval/holdout.ipynb@v4"]
    assert _matching(store, "C=1") == _matching(store, "C=1.0") == _where(store, lambda r: param("C")(r) == 1)
    assert _matching(store, "C<=0.01") == _where(store, lambda r: param("C")(r) == 0.01)
    assert _matching(store, "C!=10") == _where(store, lambda r: param("C")(r) not in (None, 10) or "C" in r.metrics)
    # strings: equal, different (runs without the parameter do not match), ordered
    assert _matching(store, "solver=lbfgs") == _where(store, lambda r: param("solver")(r) == "lbfgs")
    assert _matching(store, "solver!=lbfgs") == _where(store, lambda r: param("solver")(r) == "saga")
    assert _matching(store, "solver>m") == _matching(store, "solver=saga")
    assert _matching(store, "solver>1") == []  # a number never equals or orders with a string
    assert _matching(store, "C=abc") == []
    assert _matching(store, 'split="test set"') == ["eval/holdout.ipynb@v2", "eval/holdout.ipynb@v4"]
    assert _matching(store, "deep=true") == _where(store, lambda r: param("deep")(r) is True)
    assert len(_matching(store, "deep=false")) == 13
    # names a JSON path cannot quote plainly: spaces, non-ASCII, a quote
    assert _matching(store, '"my name">=2') == ["eval/holdout.ipynb@v3", "eval/holdout.ipynb@v4"]
    assert _matching(store, "λ=0.5") == ["eval/holdout.ipynb@v2"]
    assert _matching(store, '"a\\"b"=1') == ["eval/holdout.ipynb@v2"]
    assert _matching(store, "params.accuracy>0") == [] and len(_matching(store, "metrics.accuracy>0")) == 19


def test_fields_tags_and_and(store):
    assert _matching(store, "status=failed") == ["train.ipynb@v8"]
    assert len(_matching(store, "status!=succeeded")) == 3
    assert _matching(store, "tag=best") == ["eval/holdout.ipynb@v1", "train.ipynb@v12", "train.ipynb@v4"]
    assert len(_matching(store, "tag!=best")) == 21
    assert _matching(store, "version<=1") == ["eval/holdout.ipynb@v1", "train.ipynb@v1"]
    assert _matching(store, "version=v3") == ["eval/holdout.ipynb@v3", "train.ipynb@v3"]
    assert _matching(store, "backend=dask") == ["eval/holdout.ipynb@v4"]
    assert len(_matching(store, "notebook=eval/holdout.ipynb")) == 4
    assert _matching(store, "notebook<f") == _matching(store, "notebook=eval/holdout.ipynb")
    # all terms must hold
    assert _matching(store, "C>0.1 solver=saga tag=best") == []
    assert _matching(store, "C>0.1 solver=lbfgs tag=best") == ["train.ipynb@v12", "train.ipynb@v4"]
    assert _matching(store, "tag=best holdout") == ["eval/holdout.ipynb@v1"]
    # with the listing's own notebook/status arguments
    assert _matching(store, "tag=best", notebook="train.ipynb") == ["train.ipynb@v12", "train.ipynb@v4"]
    assert _matching(store, "C>0.1", status="queued") == ["train.ipynb@v19", "train.ipynb@v20"]


def test_bare_words_search_text_fields_in_any_case(store):
    assert _matching(store, "converge") == ["train.ipynb@v8"]  # the error's message
    assert _matching(store, "CONVERGENCEwarning") == ["train.ipynb@v8"]  # its name
    assert _matching(store, "zebra") == []  # the traceback is not searched
    assert len(_matching(store, "HOLDOUT")) == 4  # the path (and one tag)
    assert _matching(store, "v12") == ["train.ipynb@v12"]
    assert len(_matching(store, "v1")) == 2 + 10  # v1 of both, v10-v19
    assert len(_matching(store, "lbfgs")) == 10  # the parameters' text
    assert len(_matching(store, "queued")) == 2  # the status
    assert len(_matching(store, '"test set"')) == 2
    assert _matching(store, "%") == _matching(store, "_") == []  # no LIKE wildcards
    assert len(_matching(store, "  ")) == 24
    # the user: alice's seven, and Alice Liddell in any case
    assert _matching(store, "ALICE") == _where(store, lambda r: "alice" in (r.user or "").lower())
    assert len(_matching(store, "ALICE")) == 7 + 1 and _matching(store, "liddell") == ["eval/holdout.ipynb@v2"]


def test_who_ran_it(store):
    """user=NAME / user!=NAME: the recorded user exactly (case and all); a run recorded before users
    were (no user) matches neither, as a run without a parameter matches no comparison of it."""
    alice = _matching(store, "user=alice")
    assert alice == _where(store, lambda r: r.user == "alice") and len(alice) == 7
    assert "train.ipynb@v1" in alice and "train.ipynb@v3" not in alice
    assert _matching(store, "user!=alice") == _where(store, lambda r: r.user not in (None, "alice"))
    assert len(_matching(store, "user!=alice")) == 7 + 1
    assert _matching(store, 'user="Alice Liddell"') == ["eval/holdout.ipynb@v2"]
    assert _matching(store, "user=Alice") == _matching(store, "user=nobody") == []
    assert _matching(store, "user>b") == _matching(store, "user=bob")
    assert _matching(store, "user=bob status=failed") == ["train.ipynb@v8"]
    assert _matching(store, "user=alice", notebook="eval/holdout.ipynb") == []
    assert len(_all(store)) - len(_matching(store, "user=alice")) - len(_matching(store, "user!=alice")) == 6 + 3


def test_totals_and_keys(store):
    page = store.list_runs(limit=3, sort="metrics.accuracy", filter="C>0.1 succeeded", keys=True)
    assert page.total == len(_all(store, filter="C>0.1 succeeded")) == 7 + 4  # train: not the failure nor queued
    assert len(page.runs) == 3
    assert page.keys == {
        "parameters": ["C", 'a"b', "deep", "my name", "solver", "split", "λ"],
        "metrics": ["C", "accuracy", "loss"],
    }
    assert store.list_runs(filter="nothing-matches", keys=True).keys == page.keys  # whatever the filter
    assert store.list_runs(notebook="train.ipynb", keys=True).keys == {
        "parameters": ["C", "deep", "solver"], "metrics": ["accuracy", "loss"]
    }
    assert store.list_runs(status="queued", keys=True).keys == {"parameters": ["C", "deep", "solver"], "metrics": []}
    assert store.list_runs(limit=1).keys is None
    assert set(store.list_runs(limit=1).to_json()) == {"runs", "total", "limit", "offset"}
    assert set(page.to_json()) == {"runs", "total", "limit", "offset", "keys"}


@pytest.mark.parametrize("backend", STORE_BACKENDS)
def test_keys_follow_new_finished_and_deleted_runs(tmp_path, request, backend):
    service = RunService(tmp_path, config=MLXConfig(store_url=store_url(backend, tmp_path, request)))
    try:
        store = service.store

        def keys(**kwargs):
            return store.list_runs(keys=True, **kwargs).keys

        first = _add(store, "a.ipynb", {"x": 1}, metrics={"acc": 0.5})
        assert keys() == {"parameters": ["x"], "metrics": ["acc"]}
        queued = _add(store, "a.ipynb", {"y": 2}, status="queued")
        assert keys() == {"parameters": ["x", "y"], "metrics": ["acc"]}
        assert keys(status="queued") == {"parameters": ["y"], "metrics": []}
        now = time.time()
        store.mark_running(queued.id, now)
        store.finish_run(queued.id, RunOutcome("succeeded", None, now, now + 1, [], None, [Metric("f1", 0.1)], None))
        assert keys() == {"parameters": ["x", "y"], "metrics": ["acc", "f1"]}
        assert keys(status="queued") == {"parameters": [], "metrics": []}
        store.delete_run(first.id)
        assert keys() == {"parameters": ["y"], "metrics": ["f1"]}
        assert keys(notebook="a.ipynb") == keys() and keys(notebook="b.ipynb") == {"parameters": [], "metrics": []}
    finally:
        service.close()


@pytest.mark.parametrize(
    "kwargs, word",
    [({"sort": "metric.x"}, "metric.x"), ({"order": "sideways"}, "sideways"), ({"filter": "C>>1"}, "C>>1")],
)
def test_bad_sort_order_or_filter_is_an_invalid_request(store, kwargs, word):
    with pytest.raises(MLXError) as caught:
        store.list_runs(**kwargs)
    assert caught.value.code == "invalid_request" and word in caught.value.message


@pytest.mark.parametrize("backend", STORE_BACKENDS)
def test_a_nan_parameter_does_not_break_sorting_filtering_or_keys(tmp_path, request, backend):
    service = RunService(tmp_path, config=MLXConfig(store_url=store_url(backend, tmp_path, request)))
    try:
        store = service.store
        _add(store, "a.ipynb", {"lr": float("nan"), "n": 1}, metrics={"acc": 0.5})
        _add(store, "a.ipynb", {"lr": 0.1, "n": 2}, metrics={"acc": 0.7})
        page = store.list_runs(sort="params.lr", filter="lr>0 acc>0.1", keys=True)
        assert [run.version for run in page.runs] == [2]
        assert page.keys == {"parameters": ["lr", "n"], "metrics": ["acc"]}
        assert [run.version for run in store.list_runs(sort="params.n", order="asc").runs] == [1, 2]
        assert [run.version for run in store.list_runs(sort="params.lr", order="asc").runs] == [2, 1]  # NaN: none
    finally:
        service.close()


def test_the_service_forwards_the_query(seeded):
    _, service = seeded
    page = service.list_runs("holdout.ipynb", sort="params.my name", order="asc", filter="accuracy>0.5", keys=True)
    assert [run.version for run in page.runs] == [1, 2, 3, 4] and page.keys["metrics"] == ["C", "accuracy"]


# -- the CLI ---------------------------------------------------------------------------------
def test_cli_runs_sorts_and_filters(seeded, capsys):
    root, _ = seeded
    status = main(["--root", str(root), "runs", "--sort", "metrics.C", "--asc", "--filter", "accuracy>0.5", "--json"])
    out, _ = capsys.readouterr()
    page = json.loads(out)
    assert status == 0 and page["total"] == 18 and "keys" not in page
    assert [run["ref"] for run in page["runs"][:2]] == ["eval/holdout.ipynb@v1", "eval/holdout.ipynb@v2"]
    assert main(["--root", str(root), "runs", "--filter", "tag=best", "--sort", "version"]) == 0
    out = capsys.readouterr()[0]
    assert out.index("train.ipynb@v12") < out.index("train.ipynb@v4") < out.index("eval/holdout.ipynb@v1")
    # who ran it: a column (- for a run recorded before users were), a filter, the JSON's "user"
    assert out.splitlines()[0].split() == ["RUN", "STATUS", "STARTED", "DURATION", "USER", "PARAMS", "METRICS"]
    rows = {line.split()[0]: line.split() for line in out.splitlines()[1:-1]}
    assert rows["train.ipynb@v4"][5] == "alice" and rows["eval/holdout.ipynb@v1"][5] == "-"
    assert main(["--root", str(root), "runs", "train.ipynb", "--filter", "user=bob", "--json"]) == 0
    page = json.loads(capsys.readouterr()[0])
    assert page["total"] == 7 and {run["user"] for run in page["runs"]} == {"bob"}
    for argv, message in [
        (["--filter", "status=done"], "unknown status 'done'"),
        (["--sort", "speed"], "unknown sort key 'speed'"),
    ]:
        assert main(["--root", str(root), "runs", *argv]) == 2
        err = capsys.readouterr()[1]
        assert err.count("\n") == 1 and err.startswith("jupyter mlx runs: error: ") and message in err


# -- the REST API ----------------------------------------------------------------------------
@pytest.fixture
def jp_root_dir(seeded):
    return seeded[0]


@pytest.fixture
def jp_server_config(seeded):
    return {**SERVER_CONFIG, "MLXConfig": {"store_url": seeded[1].config.store_url}}


async def test_rest_sorts_filters_pages_and_lists_keys(jp_fetch):
    page = await get_json(jp_fetch, "runs", sort="metrics.accuracy", order="asc", filter="C>0.1 succeeded",
                          limit="5", offset="1", keys="1")
    assert page["total"] == 11 and page["limit"] == 5 and page["offset"] == 1
    accuracies = [run["metrics"]["accuracy"] for run in page["runs"]]
    assert accuracies == sorted(accuracies) and len(accuracies) == 5
    assert page["keys"]["metrics"] == ["C", "accuracy", "loss"]
    plain = await get_json(jp_fetch, "runs", limit="2")
    assert set(plain) == {"runs", "total", "limit", "offset"} and plain["total"] == 24
    spaced = await get_json(jp_fetch, "runs", filter='split="test set"', sort="params.my name")
    assert [run["ref"] for run in spaced["runs"]] == ["eval/holdout.ipynb@v4", "eval/holdout.ipynb@v2"]
    alice = await get_json(jp_fetch, "runs", filter='user!=bob "alice"')
    assert sorted(run["user"] for run in alice["runs"]) == ["Alice Liddell", *["alice"] * 7]


@pytest.mark.parametrize(
    "params, word",
    [
        ({"filter": "C>"}, "'C>'"),
        ({"filter": "status=done"}, "unknown status 'done'"),
        ({"sort": "accuracy"}, "unknown sort key 'accuracy'"),
        ({"order": "down"}, "'down'"),
        ({"keys": "maybe"}, "keys must be 1 or 0"),
    ],
)
async def test_rest_bad_query_is_a_400_naming_the_term(jp_fetch, params, word):
    code, body = await error_of(jp_fetch, "runs", params=params)
    assert code == 400 and body["error"] == "invalid_request" and word in body["message"]
