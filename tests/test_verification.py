"""Argument checks of ``rnntheory.verification`` (the numbers of each check are
asserted by the checks themselves and by tests/test_cli.py)."""

from __future__ import annotations

import pytest

from rnntheory.verification import (
    CheckResult,
    VerifyConfig,
    default_models,
    run_checks,
    write_report,
)

ROW = CheckResult("demo", "a claim", 1, 1, 0.0, True)

# Each of these reached NumPy or attribute access with the bad value and raised
# an error naming nothing (found by tests/test_fuzz.py); a falsy config such as
# 0 or "" silently ran the default configuration.
BAD = [
    (lambda: VerifyConfig(T=0), ValueError, "`T` must be >= 1, got 0"),
    (lambda: VerifyConfig(T=2.5), TypeError, "`T` must be an integer"),
    (lambda: VerifyConfig(n_hidden=-1), ValueError, "`n_hidden` must be >= 1"),
    (lambda: VerifyConfig(seed=-1), ValueError, "`seed` must be >= 0"),
    (lambda: VerifyConfig(seed="0"), TypeError, "`seed` must be an integer"),
    (lambda: VerifyConfig(scales=(0.5, float("nan"))), ValueError, "`scales` must be finite"),
    (lambda: VerifyConfig(scales=(0.0,)), ValueError, "`scales` must be > 0.0"),
    (lambda: VerifyConfig(scales=0.5), TypeError, "`scales` must be a tuple of positive numbers"),
    (lambda: VerifyConfig(extra=[]), TypeError, "`extra` must be a dict"),
    (lambda: default_models(None), TypeError, "`cfg` must be a VerifyConfig, got NoneType"),
    (lambda: next(run_checks(0)), TypeError, "`cfg` must be a VerifyConfig, got int"),
    (lambda: next(run_checks(progress="yes")), TypeError, "`progress` must be True, False or None"),
    (lambda: write_report(ROW, "out"), TypeError, "`rows` must be a list of CheckResult"),
    (lambda: write_report([ROW, "x"], "out"), TypeError, "`rows` must hold CheckResult records, got str"),
    (lambda: write_report([ROW], 3), TypeError, "`out_dir` must be a non-empty str or os.PathLike"),
    (lambda: write_report([ROW], ""), TypeError, "`out_dir` must be a non-empty str or os.PathLike"),
    (lambda: write_report([ROW], "out", cfg={}), TypeError, "`cfg` must be a VerifyConfig, got dict"),
    (lambda: write_report([ROW], "out", claims=[1]), TypeError, "`claims` must hold ledger results"),
]


@pytest.mark.parametrize(("call", "exc", "match"), BAD)
def test_bad_inputs_name_the_argument(call, exc, match, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(exc, match=match):
        call()
    assert not any(tmp_path.iterdir()), "nothing is written when an argument is refused"


def test_the_model_set_follows_the_config():
    """Two tanh initialisations and one sigmoid, plus one Gaussian per scale for
    each activation, in two forms, with and without leak; sizes from the config."""
    cfg = VerifyConfig(T=5, n_hidden=3, n_in=2, scales=[0.5, 2.0])
    assert cfg.scales == (0.5, 2.0)
    models = default_models(cfg)
    assert len(models) == ((2 + 2) + (1 + 2)) * 2 * 2
    for _, m, x in models:
        assert m.W_hh.shape == (3, 3) and x.shape == (5, 2)
