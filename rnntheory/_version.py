"""The package's version, in one place.

``pyproject.toml`` reads it from here (``[tool.setuptools.dynamic]``), the
package re-exports it as ``rnntheory.__version__``, and the modules that stamp
it on their output (the command line, the sweep and its store) import it from
here rather than from the package face above them.
"""

from __future__ import annotations

__all__ = ["VERSION"]

VERSION = "0.1.0"
"""This release of rnntheory (PEP 440)."""
