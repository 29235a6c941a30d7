"""Reading a notebook's top-level names from its source: a sure absence only."""
from __future__ import annotations

import pytest

from jupyter_mlx.errors import MLXError
from jupyter_mlx.serve.names import top_level_names
from jupyter_mlx.serve.source import ServedCode, check_servable


@pytest.mark.parametrize("cells, name", [
    (["def predict(x):\n    return x"], "predict"),
    (["async def predict(x):\n    return x"], "predict"),
    (["from model import predict"], "predict"),
    (["import model as predict"], "predict"),
    (["predict = lambda x: x"], "predict"),
    (["predict: object = print"], "predict"),
    (["model, predict = 1, print"], "predict"),
    (["for predict in [print]:\n    pass"], "predict"),
    (["with open('f') as predict:\n    pass"], "predict"),
    (["try:\n    pass\nexcept Exception as predict:\n    pass"], "predict"),
    (["if True:\n    def predict(x):\n        return x"], "predict"),
    (["def setup():\n    global predict\n    predict = print"], "predict"),
    (["class predict:\n    pass"], "predict"),
    (["%matplotlib inline\nimport numpy as np\ndef predict(x):\n    return x"], "predict"),
    (["files = !ls\npredict = print"], "predict"),
])
def test_a_name_bound_at_the_top_level_is_found(cells, name):
    names = top_level_names(cells)
    assert name in names.bound and names.certain


@pytest.mark.parametrize("cells", [
    ["from model import *"],
    ["exec('def predict(x): return x')"],
    ["globals()['predict'] = print"],
    ["get_ipython().user_ns['predict'] = print"],
    ["%run model.py"],
    ["%time predict = print"],
    ["%%capture\ndef predict(x):\n    return x"],
    ["def predict(x:"],  # a cell that does not parse: only running it tells
])
def test_code_that_may_bind_names_out_of_sight_is_uncertain(cells):
    assert not top_level_names(cells).certain


def test_names_inside_functions_and_classes_are_not_top_level():
    names = top_level_names(["def outer():\n    def predict(x):\n        return x\n    helper = 1",
                             "class Model:\n    def predict(self, x):\n        return x"])
    assert names.functions == {"outer"} and names.bound == {"outer", "Model"} and names.certain


def test_a_missing_function_is_refused_with_the_ones_there_are():
    code = ServedCode("nb/model.ipynb", "nb/model.ipynb@v2", "0" * 32, ["def predict(x):\n    return x",
                                                                      "def train():\n    pass\nscale = 2"])
    with pytest.raises(MLXError) as caught:
        check_servable(code, "function", "predcit")
    assert caught.value.code == "invalid_request" and caught.value.http_status == 400
    assert caught.value.message == "nb/model.ipynb@v2 defines no function 'predcit'; it defines predict, train"
    check_servable(code, "function", "predict")
    check_servable(code, "function", "scale")  # bound: whether it is callable, the set-up tells
    check_servable(ServedCode("a.ipynb", None, None, ["from m import *"]), "function", "predict")
