import pytest

from jupyter_mlx.errors import MLXError
from jupyter_mlx.execute.parameters import declared_parameters, effective_parameters, resolve_parameters

from notebooks import code_cell, notebook

NB = notebook(
    code_cell("import math"),
    code_cell(
        "C = 1.0  # inverse regularization\nmax_iter: int = 100\nsolver = 'lbfgs'\n"
        "verbose = False\nlayers = [8, 8]\nseed = None\nscale = math.pi",
        tags=["parameters"],
    ),
)


def test_declared_parameters_have_defaults_types_and_help():
    declared = declared_parameters(NB)
    assert list(declared) == ["C", "max_iter", "solver", "verbose", "layers", "seed", "scale"]
    assert declared["C"].default == 1.0 and declared["C"].type_name == "float"
    assert declared["C"].help == "inverse regularization"
    assert declared["max_iter"].type_name == "int"
    assert declared["scale"].type_name == "expression"


def test_strings_convert_to_the_default_type():
    given = {"C": "0.5", "max_iter": "200", "solver": "saga", "verbose": "yes", "layers": "[4]", "seed": "7"}
    assert resolve_parameters(NB, given) == {
        "C": 0.5, "max_iter": 200, "solver": "saga", "verbose": True, "layers": [4], "seed": 7,
    }


def test_typed_values_are_checked():
    assert resolve_parameters(NB, {"C": 2, "max_iter": 3.0}) == {"C": 2.0, "max_iter": 3}
    with pytest.raises(MLXError) as caught:
        resolve_parameters(NB, {"max_iter": "many"})
    assert caught.value.code == "invalid_parameter" and "max_iter" in caught.value.message
    with pytest.raises(MLXError):
        resolve_parameters(NB, {"verbose": "maybe"})
    with pytest.raises(MLXError):
        resolve_parameters(NB, {"C": "x"})
    with pytest.raises(MLXError):
        resolve_parameters(NB, {"max_iter": True})


def test_unknown_parameter_names_the_known_ones():
    with pytest.raises(MLXError) as caught:
        resolve_parameters(NB, {"gamma": "1"})
    assert caught.value.code == "unknown_parameter"
    assert "C, max_iter, solver" in caught.value.message


def test_parameters_without_a_parameters_cell_is_an_error():
    with pytest.raises(MLXError) as caught:
        resolve_parameters(notebook(code_cell("x = 1")), {"x": "2"})
    assert caught.value.code == "no_parameters_cell"
    assert resolve_parameters(notebook(code_cell("x = 1")), {}) == {}


# -- the effective value of every parameter (what a run records) ---------------------------------
def test_a_run_records_every_parameter_the_overrides_and_the_defaults():
    effective = effective_parameters(NB, resolve_parameters(NB, {"max_iter": "200"}))
    assert effective.values == {
        "C": 1.0, "max_iter": 200, "solver": "lbfgs", "verbose": False, "layers": [8, 8], "seed": None,
        "scale": "math.pi",
    }
    assert effective.overridden == ["max_iter"] and effective.overrides == {"max_iter": 200}
    # a default that is not a literal is its source text, marked as an expression, never evaluated
    assert effective.expressions == ["scale"]
    overridden = effective_parameters(NB, {"scale": 2.0})
    assert overridden.values["scale"] == 2.0 and overridden.expressions == [] and overridden.overrides == {"scale": 2.0}


def test_defaults_without_a_json_form_are_recorded_as_their_source_text():
    nb = notebook(code_cell(
        "path = os.environ['DATA']\nx = np.arange(3)\nshape = (3, 4)\nkinds = {1, 2}\nbig = 1e999\nn: int",
        tags=["parameters"]))
    effective = effective_parameters(nb, {})
    assert effective.values == {"path": "os.environ['DATA']", "x": "np.arange(3)", "shape": (3, 4),
                                "kinds": "{1, 2}", "big": "1e999", "n": None}
    assert effective.expressions == ["path", "x", "kinds", "big"] and effective.overridden == []
    assert declared_parameters(nb)["x"].expression == "np.arange(3)" and declared_parameters(nb)["shape"].expression is None


def test_a_parameters_cell_that_does_not_parse_records_the_overrides_alone():
    magic = notebook(code_cell("%matplotlib inline\nx = 1", tags=["parameters"]))
    assert effective_parameters(magic, {}).values == {}
    assert effective_parameters(notebook(code_cell("x = 1")), {}).values == {}
