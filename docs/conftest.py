"""Execute every ```python block of every Markdown page under docs/.

Blocks of one page share a namespace and run in order, so a page reads as one
script. A block preceded by ``<!-- skip: next -->`` is not run (none is, today);
pytest reports every skip (``-ra``) with its reason.
"""

from __future__ import annotations

from sybil import Sybil
from sybil.parsers.markdown import PythonCodeBlockParser, SkipParser

pytest_collect_file = Sybil(
    parsers=[PythonCodeBlockParser(), SkipParser()],
    patterns=["*.md"],
).pytest()
