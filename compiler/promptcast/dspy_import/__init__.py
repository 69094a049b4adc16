"""`promptcast from-dspy`: a DSPy program and its saved state -> promptcast source + lock.

Static reading only (libcst, like the frontend; DSPy need not be installed and the program is
never imported or run): `reader` reads signatures, modules and `forward`; `state` overlays the
JSON state `program.save()` wrote; `writer` emits the promptcast module; `convert` checks the
result with the real frontend and writes the project (package, lock with `adapter="dspy"`,
pyproject). See docs/migrating-from-dspy.md.
"""

from .convert import Conversion, convert
from .model import DSPyImportError

__all__ = ["Conversion", "DSPyImportError", "convert"]
