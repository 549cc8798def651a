"""The claims ledger: the registry, the committed page, the command, the records.

The proofs themselves assert their mathematics; these tests hold the ledger to
its contract: every claim C01–C34 registered, verified in this run, with
stored counterexamples for the false ones, and ``docs/ledger.md`` equal to what
``rnntheory prove --markdown`` prints today.
"""

from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path

import numpy as np
import pytest

from rnntheory import ledger
from rnntheory.cli import main

PAGE = Path(__file__).parents[1] / "docs" / "ledger.md"
ALL_IDS = [f"C{i:02d}" for i in range(1, 35)]


@pytest.fixture(scope="module")
def results() -> list[ledger.ClaimResult]:
    """One run of every registered proof, shared by the tests of this module."""
    return list(ledger.run(progress=False))


# ----------------------------------------------------------------------------- the page
def test_committed_page_is_not_stale(results):
    """docs/ledger.md is exactly ``to_markdown(run())``: same claims, verdicts,
    corrected statements, evidence and counterexample numbers as this run."""
    assert PAGE.exists(), "docs/ledger.md is missing; run `rnntheory prove --markdown > docs/ledger.md`"
    page = PAGE.read_text(encoding="utf-8")
    fresh = ledger.to_markdown(results)
    assert page == fresh, (
        "docs/ledger.md is stale (it differs from `rnntheory prove --markdown`); "
        "regenerate it with `rnntheory prove --markdown > docs/ledger.md`"
    )


def test_page_does_not_depend_on_timing(results):
    """The page carries no timing: changing every result's ``seconds`` leaves it
    unchanged (so the staleness check can compare exactly)."""
    slow = [dataclasses.replace(r, seconds=r.seconds + 1234.5) for r in results]
    assert ledger.to_markdown(slow) == ledger.to_markdown(results)


# ----------------------------------------------------------------------------- the registry
def test_every_claim_is_well_formed_and_verified(results):
    """Every registered ID is ``C`` and two digits, every verdict is one of
    VERDICTS, no proof raised, and every proof verified in this run."""
    assert results, "no claim is registered"
    assert [r.id for r in results] == sorted(ledger.registry())
    for r in results:
        assert re.fullmatch(r"C\d\d", r.id), r.id
        assert r.verdict in ledger.VERDICTS, (r.id, r.verdict)
        assert r.error is None, f"{r.id}: the proof raised {r.error}"
        assert r.verified, f"{r.id} did not re-verify: {r.evidence}"
        assert r.evidence and all(line.strip() for line in r.evidence), r.id


def test_false_verdicts_carry_a_stored_counterexample(results):
    """A 'false' verdict carries a counterexample with numbers, and the JSON it
    was re-verified from is stored in proofs/counterexamples/ and loads."""
    for r in results:
        if r.verdict != "false":
            continue
        assert r.counterexample is not None, r.id
        assert r.counterexample.description and r.counterexample.numbers, r.id
        path = ledger.counterexample_path(r.id)
        assert path.exists(), f"{r.id}: no stored counterexample at {path}"
        assert isinstance(ledger.load_counterexample(r.id), dict)


def test_registry_covers_exactly_C01_to_C34():
    """The definition of done: every claim of the article, and nothing else."""
    ids = list(ledger.registry())
    missing = sorted(set(ALL_IDS) - set(ids))
    extra = sorted(set(ids) - set(ALL_IDS))
    assert not missing and not extra, f"missing proofs: {missing}; unknown IDs: {extra}"


# ----------------------------------------------------------------------------- the command
def test_prove_one_claim_as_json(capsys):
    """``rnntheory prove --claim C21 --json`` exits 0; its JSON holds exactly C21,
    verified, with its counterexample and the overall ``passed``."""
    rc = main(["prove", "--claim", "C21", "--json"])
    data = json.loads(capsys.readouterr().out)
    assert rc == 0
    assert data["passed"] is True
    (c,) = data["claims"]
    assert c["id"] == "C21" and c["verified"] is True
    assert c["verdict"] in ledger.VERDICTS
    assert c["verdict"] != "false" or c["counterexample"]["numbers"]


def test_prove_unknown_claim_names_it(capsys):
    assert main(["prove", "--claim", "C99"]) == 2
    assert re.fullmatch(r"rnntheory prove: error: .*'C99'.*\n", capsys.readouterr().err)


def test_prove_markdown(capsys):
    rc = main(["prove", "--claim", "C32", "--markdown"])
    out = capsys.readouterr().out
    assert rc == 0
    assert out.startswith("# The claims ledger\n")
    assert "## C32" in out and "## C21" not in out


def test_run_accepts_lower_case_ids_and_rejects_unknown_ones():
    (r,) = ledger.run(["c32"], progress=False)
    assert r.id == "C32"
    with pytest.raises(ValueError, match="`claim` must be one of the registered IDs"):
        list(ledger.run(["C99"], progress=False))


# ----------------------------------------------------------------------------- the records
def test_proof_rejects_an_unknown_verdict():
    with pytest.raises(ValueError, match="`verdict` must be one of"):
        ledger.Proof("probably", "", ("x",), True)


def test_proof_with_verdict_false_needs_a_counterexample():
    with pytest.raises(ValueError, match="verdict 'false' must carry a counterexample"):
        ledger.Proof("false", "corrected", ("x",), True)
    ce = ledger.Counterexample("d", {"W": [[1.0]]}, {"norm": 2.0})
    assert ledger.Proof("false", "corrected", ("x",), True, ce).counterexample is ce


def test_claim_rejects_an_unknown_method():
    with pytest.raises(ValueError, match="`method` parts must be in"):
        ledger.claim("C99", claim="c", where="w", method="calculus + intuition")


# ----------------------------------------------------------------------------- storage
@pytest.fixture
def store(tmp_path, monkeypatch) -> Path:
    """Counterexamples go to a temporary folder (not yet created)."""
    d = tmp_path / "counterexamples"
    monkeypatch.setattr(ledger, "_counterexample_dir", lambda: d)
    return d


def test_counterexamples_round_trip_floats_exactly(store):
    """Floats (Python and NumPy, arrays included, down to the smallest subnormal)
    come back bit for bit; non-finite floats are stored as strings."""
    W = np.random.default_rng(0).normal(size=(3, 3)) / 3.0
    data = {
        "W": W,
        "d": [0.1, 1 / 3, np.float64(np.pi), 5e-324, 1.7976931348623157e308, -0.0],
        "T": np.int64(40),
        "flag": np.bool_(True),
        "bad": [np.inf, -np.inf],
    }
    path = ledger.save_counterexample("C77", data)
    assert path == store / "C77.json" == ledger.counterexample_path("C77")
    back = ledger.load_counterexample("C77")
    assert np.array_equal(np.asarray(back["W"], dtype=np.float64), W)
    assert np.asarray(back["W"]).dtype == np.float64
    assert [float(v).hex() for v in back["d"]] == [float(v).hex() for v in data["d"]]
    assert back["T"] == 40 and type(back["T"]) is int
    assert back["flag"] is True
    assert back["bad"] == ["inf", "-inf"]


def test_resaving_every_stored_counterexample_gives_the_same_bytes(store):
    """The stored counterexamples are written by the package's one JSON encoder:
    loading each committed file and saving it again reproduces it byte for byte."""
    import rnntheory.proofs

    committed = sorted((Path(rnntheory.proofs.__path__[0]) / "counterexamples").glob("C*.json"))
    assert len(committed) >= 10
    for path in committed:
        data = json.loads(path.read_text())
        assert ledger.save_counterexample(path.stem, data).read_bytes() == path.read_bytes(), path.name


def test_one_encoder_turns_numpy_and_non_finite_values_into_json():
    """The shared encoder in both of its modes, against values written out by hand:
    NumPy scalars and arrays become Python numbers and lists (float32 widened
    exactly, subnormals and the largest float kept), tuples lists, keys strings;
    non-finite floats become "nan"/"inf"/"-inf" (ledger, command line) or None
    (experiment records); dataclasses become dicts only when asked."""
    from rnntheory._outputs import json_safe

    @dataclasses.dataclass
    class P:
        a: float
        b: tuple[int, ...]

    value = {
        1: np.float32(0.1),
        "x": (np.int64(-3), np.bool_(False), 5e-324, 1.7976931348623157e308),
        "arr": np.array([[np.nan, np.inf], [-np.inf, -0.0]]),
        "p": P(np.float64(np.nan), (1, 2)),
    }
    strings = json_safe(value)
    assert strings["1"] == 0.10000000149011612 and type(strings["1"]) is float
    assert strings["x"] == [-3, False, 5e-324, 1.7976931348623157e308]
    assert type(strings["x"][0]) is int and strings["x"][1] is False
    assert strings["arr"] == [["nan", "inf"], ["-inf", -0.0]]
    assert strings["p"] is value["p"]  # left for json.dumps to refuse
    nulls = json_safe(value, nonfinite="null", dataclasses=True)
    assert nulls["arr"] == [[None, None], [None, -0.0]]
    assert nulls["p"] == {"a": None, "b": [1, 2]}
    assert json.dumps(nulls, sort_keys=True, allow_nan=False) == (
        '{"1": 0.10000000149011612, "arr": [[null, null], [null, -0.0]], '
        '"p": {"a": null, "b": [1, 2]}, "x": [-3, false, 5e-324, 1.7976931348623157e+308]}'
    )
    with pytest.raises(ValueError, match=r"`nonfinite` must be one of \('string', 'null'\), got 'zero'"):
        json_safe(1.0, nonfinite="zero")


def test_missing_counterexample_says_how_to_regenerate(store):
    with pytest.raises(FileNotFoundError, match=r"C78.*rnntheory prove --claim C78 --search"):
        ledger.load_counterexample("C78")


@pytest.mark.parametrize("claim_id", ["C05", "C07", "C11", "C21", "C27", "C34"])
def test_search_finds_a_counterexample_that_verifies(
    claim_id: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`--search` works: re-running a claim's search (into a scratch directory)
    yields data with which the proof again returns 'false' and verifies. (The
    exact data may differ from the stored file: a search that maximises a score
    with target() follows last-bit differences of the linear algebra.)"""
    spec = ledger.registry()[claim_id]
    assert spec.search is not None
    monkeypatch.setattr(ledger, "_counterexample_dir", lambda: tmp_path)
    ledger.save_counterexample(claim_id, spec.search())
    proof = spec.prove()
    assert proof.verdict == "false" and proof.verified, proof.evidence


@pytest.mark.parametrize(("data", "match"), [
    ({"W": np.eye(2) * 1j}, "`data` must hold JSON-serialisable values"),
    ({"x": object()}, "`data` must hold JSON-serialisable values"),
    ([1.0, 2.0], "`data` must be a dict, got list"),
])
def test_save_counterexample_rejects_data_json_cannot_hold(store, data, match):
    """json.dumps's own TypeError named nothing (found by tests/test_fuzz.py);
    nothing is written when the data is refused."""
    with pytest.raises(TypeError, match=match):
        ledger.save_counterexample("C77", data)
    assert not ledger.counterexample_path("C77").exists()


def test_to_markdown_rejects_a_non_iterable():
    with pytest.raises(TypeError, match="`results` must be an iterable of ClaimResult rows, got NoneType"):
        ledger.to_markdown(None)  # type: ignore[arg-type]
