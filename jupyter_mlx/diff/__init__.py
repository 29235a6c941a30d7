"""Compare runs: output-aware, side-by-side diffs of two executed notebooks.

``comparison.compare_sides`` is the one implementation behind every door: the Python API
(``jupyter_mlx.compare``), ``jupyter mlx diff/check``, ``GET /mlx/compare`` and the HTML
report. The JSON it produces is described by ``comparison.schema.json``. Modules load lazily:
the image, table and chart parts import numpy, Pillow and matplotlib only when needed.
"""
from .options import CompareOptions, MetricThreshold

__all__ = ["CompareOptions", "MetricThreshold"]
