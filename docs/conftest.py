"""Execute every ```python block of every Markdown page under docs/.

Blocks of one page share a namespace and run in order, so a page reads as one
script. A block preceded by ``<!-- skip: next -->`` is not run; pytest reports
every skip (``-ra``) with its reason. The one conditional skip in use is
``<!-- skip: next if(skip_torch, reason=torch_reason) -->`` before a block that
needs PyTorch: it is skipped where torch is absent, unless the environment
demands the oracle (``RNNTHEORY_REQUIRE_ORACLE=1``, as in CI), where it runs
and a missing torch fails. A page's later blocks never depend on such a block.
"""

from __future__ import annotations

import sys
from pathlib import Path

from sybil import Sybil
from sybil.parsers.markdown import PythonCodeBlockParser, SkipParser

sys.path.insert(0, str(Path(__file__).parent.parent / "tests"))

import oracle  # tests/oracle.py: the torch switch, in one place


def _setup(namespace: dict) -> None:
    namespace["skip_torch"] = oracle.skip_torch()
    namespace["torch_reason"] = oracle.SKIP_REASON


pytest_collect_file = Sybil(
    parsers=[PythonCodeBlockParser(), SkipParser()],
    patterns=["*.md"],
    setup=_setup,
).pytest()
