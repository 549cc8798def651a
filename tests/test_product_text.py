"""The product stands alone: no text that ships with it (README, docs, CLI
output and docstrings in the package, the proofs, generated reports,
benchmarks, changelog, contributing guide) points at files that do not ship
with the repository. Papers are cited by author, year and title instead."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SHIPPED = ["README.md", "CHANGELOG.md", "CONTRIBUTING.md", "mkdocs.yml",
           "docs", "rnntheory", "proofs", "benchmarks", ".ci"]
SUFFIXES = {".md", ".py", ".yml", ".yaml", ".json", ".toml", ".txt", ".cfg", ""}

# Built from pieces so that this file does not match itself.
FORBIDDEN = re.compile(
    "|".join([
        r"\.\./" + "shared",                     # ../shared
        r"(?<![\w-])" + "shared" + r"/(seed|DESIGN|REFERENCES|hooks)",
        "REFER" + r"ENCES(\.md)?\s*§",            # REFERENCES §N
        "REFER" + r"ENCES\.md",
        "DESI" + r"GN\.md",
    ])
)


def _files():
    for entry in SHIPPED:
        path = ROOT / entry
        if path.is_file():
            yield path
        elif path.is_dir():
            for f in sorted(path.rglob("*")):
                if f.is_file() and f.suffix in SUFFIXES and "__pycache__" not in f.parts:
                    yield f


def test_the_pattern_catches_what_it_is_for():
    for text in ["see ../" "shared/x", "the article in `" "shared/seed`", "REFER" "ENCES §3",
                 "`REFER" "ENCES.md` §2", "DESI" "GN.md"]:
        assert FORBIDDEN.search(text), text
    for text in ["Pascanu et al. 2013, §4", "a shared/private split", "the article's Eq. 12"]:
        assert not FORBIDDEN.search(text), text


def test_no_pointer_outside_the_repository():
    hits = []
    files = list(_files())
    assert len(files) > 50  # the walk found the package, the docs and the proofs
    for path in files:
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            continue  # a binary file (a figure) carries no prose
        hits += [f"{path.relative_to(ROOT)}:{i}: {line.strip()}"
                 for i, line in enumerate(text.splitlines(), 1) if FORBIDDEN.search(line)]
    assert not hits, "product text points outside the repository:\n" + "\n".join(hits)
