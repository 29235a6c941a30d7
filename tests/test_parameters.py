import pytest

from jupyter_mlx.errors import MLXError
from jupyter_mlx.execute.parameters import declared_parameters, resolve_parameters

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
