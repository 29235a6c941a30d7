"""A run's function as an MLflow pyfunc model (``jupyter mlx export --format mlflow``): a model
directory that ``mlflow models serve``, ``mlflow.pyfunc.load_model`` and the platforms serving
MLflow models load without jupyter_mlx.

The model is "models from code": ``notebook_function.py`` (``MODEL_CODE``) is its python model,
``state.pkl`` (the run's captured state, hash checked) its one artifact, loaded once in
``load_context`` by a copy of the endpoint runtime's ``state.load_state`` (``code/mlx_endpoint``).
``model_config`` names the function; ``requirements.txt`` pins the state's packages and
cloudpickle to the run's versions (no drift check: the pins are the record).

The request: the function's parameters are the columns of MLflow's input, each row one call of
the function with its cells as keyword arguments; ``predictions`` holds one result per row, in order.
So ``{"inputs": {"rows": [[1.0, 2.0]]}}`` is one row and answers ``{"predictions": [predict(rows=[[1.0, 2.0]])]}``;
``{"dataframe_records": [{...}, {...}]}``, ``{"dataframe_split": ...}`` and ``{"inputs": [{...}, {...}]}``
are a call per row. An optional parameter left out of a row (null) keeps its default. The
signature comes from the type hints as the function endpoint reads them (``schema.request_schema``):
``int`` is long, ``float`` double, ``str`` string, ``bool`` boolean, ``list[T]`` an array,
``dict[str, T]`` a map, anything else any. MLflow enforces it before the function runs: a list of
floats sent as integers only (``[1, 2]``) is refused, ``[1.0, 2]`` is not.
"""
from __future__ import annotations

import contextlib
import importlib.util
import io
import shutil
import tempfile
import warnings
from pathlib import Path
from typing import Any, Callable

from ..errors import MLXError
from .export import requirements
from .schema import request_schema, response_schema
from .source import ServedCode, check_servable, served_from, write_state
from .state import load_state

MLFLOW_MISSING = "--format mlflow needs mlflow: pip install 'jupyter_mlx[mlflow]'"
MODEL_FILE = "notebook_function.py"
RUNTIME = ("state", "setup")  # state.load_state and the SetupError it imports: standard library and cloudpickle


def export_mlflow(code: ServedCode, output: Path, function: str, force: bool = False,
                  packages: dict[str, str] | None = None) -> Path:
    """Write the MLflow model of ``function`` of the run ``code`` to ``output``; ``packages``
    (distribution -> version, the run's environment) pin its requirements. The run must have
    captured the function's state: the model serves that, never a re-execution."""
    if importlib.util.find_spec("mlflow") is None:
        raise MLXError("backend_unavailable", MLFLOW_MISSING)
    check_servable(code, "function", function)
    if code.status not in (None, "succeeded"):  # (served_from's remedy, --reexecute, is not one here)
        raise MLXError("conflict", f"--format mlflow needs the state a successful run captured, and {code.label} "
                       f"is {code.status}: export a version that succeeded")
    source = served_from(code, "function", function)
    if source.state is None:
        raise MLXError("conflict", f"--format mlflow needs the state the run captured: {source.reason}; run the "
                       "notebook again with the capture on, or export --format service (it can re-execute the code)")
    _check_output(output, force)
    state_packages = dict(source.state.manifest.get("packages") or {})
    with tempfile.TemporaryDirectory(prefix=f".{output.name}-", dir=output.parent) as staging:
        work = Path(staging)
        state_file = write_state(source.state, code.label, work / "state.pkl")
        signature = model_signature(_captured_function(state_file, code.label, function), function)
        (work / MODEL_FILE).write_text(MODEL_CODE)
        runtime = work / "mlx_endpoint"
        runtime.mkdir()
        (runtime / "__init__.py").write_text('"""The part of the jupyter_mlx endpoint runtime the model loads its state with."""\n')
        for name in RUNTIME:
            shutil.copyfile(Path(__file__).parent / f"{name}.py", runtime / f"{name}.py")
        import mlflow

        # its advice (type hints on predict, an input example) and progress bars are not the user's to act on
        with contextlib.redirect_stderr(io.StringIO()), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            mlflow.pyfunc.save_model(
                str(work / "model"), python_model=str(work / MODEL_FILE), artifacts={"state": str(state_file)},
                code_paths=[str(runtime)], model_config={"function": function}, signature=signature,
                pip_requirements=pinned_requirements({**(packages or {}), **state_packages}, state_packages))
        if output.exists():
            shutil.rmtree(output)  # an earlier model (checked), replaced only once the new one is complete
        (work / "model").rename(output)
    return output


def _check_output(output: Path, force: bool) -> None:
    """``output`` is new, empty, or (with ``force``) an MLflow model to replace: never another folder."""
    if not output.exists() or (output.is_dir() and not any(output.iterdir())):
        output.parent.mkdir(parents=True, exist_ok=True)  # where the model is staged
        return
    if not force:
        raise MLXError("conflict", f"{output} exists and is not empty (--force to overwrite)")
    if not (output / "MLmodel").is_file():
        raise MLXError("conflict", f"{output} is not an MLflow model: --force replaces only a model folder, "
                       "give another -o")


def _captured_function(state_file: Path, label: str, function: str) -> Callable[..., Any]:
    """The function as the state holds it, for its type hints (unpickled here as the model will be)."""
    try:
        return load_state(state_file.read_bytes())[function]
    except Exception as exc:  # noqa: BLE001 - a package missing here, a class that moved: say which
        raise MLXError("conflict", f"the captured state of {label} cannot be loaded here ({type(exc).__name__}: "
                       f"{exc}): export from the environment the run used") from None


def model_signature(function: Callable[..., Any], name: str) -> Any:
    """The MLflow signature of ``function``: a column per parameter, typed by its hints."""
    from mlflow.models import ModelSignature
    from mlflow.types.schema import ColSpec, Schema

    request = request_schema(function)
    if not request["properties"]:
        raise MLXError("invalid_request", f"{name} takes no arguments, and an MLflow model answers inputs: "
                       "export --format service to serve it")
    columns = [ColSpec(mlflow_type(schema), parameter, required=parameter in request["required"])
               for parameter, schema in request["properties"].items()]
    return ModelSignature(inputs=Schema(columns), outputs=Schema([ColSpec(mlflow_type(response_schema(function)))]))


def mlflow_type(schema: dict[str, Any]) -> Any:
    """The MLflow column type of a parameter's JSON schema (``schema.type_schema``); any when it
    says nothing MLflow can check."""
    from mlflow.types.schema import AnyType, Array, DataType, Map

    options = [option for option in schema.get("anyOf", []) if option != {"type": "null"}]
    if "anyOf" in schema:
        return mlflow_type(options[0]) if len(options) == 1 else AnyType()  # Optional[T] is T
    scalars = {"integer": DataType.long, "number": DataType.double, "string": DataType.string,
               "boolean": DataType.boolean}
    kind = schema.get("type")
    if kind in scalars:
        return scalars[kind]
    if kind == "array":
        return Array(mlflow_type(schema.get("items") or {}))
    if kind == "object":
        return Map(mlflow_type(schema.get("additionalProperties") or {}))
    return AnyType()


def pinned_requirements(versions: dict[str, str], state_packages: dict[str, str]) -> list[str]:
    """The state's packages and cloudpickle, pinned to the run's versions (mlflow adds itself)."""
    return requirements([], versions, (*state_packages, "cloudpickle"), always=()).split()


MODEL_CODE = '''"""An MLflow python model (models from code) written by jupyter mlx export --format mlflow: a
notebook function, with the objects it uses as the run left them (the artifact state.pkl).

Each row of the input is one call of the function: its columns are the function's parameters.
"""
import inspect
import math
from pathlib import Path

import mlflow
from mlflow.pyfunc import PythonModel


class NotebookFunction(PythonModel):
    def load_context(self, context):
        from mlx_endpoint.state import load_state  # code/ of the model: jupyter_mlx's own loader

        namespace = load_state(Path(context.artifacts["state"]).read_bytes())
        self.function = namespace[context.model_config["function"]]
        parameters = inspect.signature(self.function).parameters.values()
        self.optional = {p.name for p in parameters if p.default is not p.empty}

    def predict(self, context, model_input, params=None):
        return [self.function(**arguments) for arguments in self._calls(model_input)]

    def _calls(self, model_input):
        """The keyword arguments of each call: a row's cells, as the plain lists and numbers of JSON."""
        import pandas as pd

        if isinstance(model_input, pd.DataFrame):
            rows = model_input.to_dict(orient="records")
        else:
            rows = [model_input] if isinstance(model_input, dict) else list(model_input)
        return [{name: _plain(value) for name, value in row.items() if not (name in self.optional and _missing(value))}
                for row in rows]


def _missing(value):
    return value is None or (isinstance(value, float) and math.isnan(value))


def _plain(value):
    """numpy arrays and scalars (MLflow's schema enforcement makes them) as Python lists and numbers."""
    if hasattr(value, "tolist"):
        value = value.tolist()
    if isinstance(value, list):
        return [_plain(item) for item in value]
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    return value


mlflow.models.set_model(NotebookFunction())
'''
