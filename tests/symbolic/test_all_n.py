"""Proofs for every group size: the power-sum algebra, every route's twin, and the report."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("sympy")

from normgrad.cli import main  # noqa: E402
from normgrad.symbolic import all_n, registry, report, sums  # noqa: E402
from normgrad.symbolic.core import sp  # noqa: E402
from normgrad.symbolic.sums import GroupAlgebra  # noqa: E402


def test_total_splits_element_i_from_the_power_sums_of_the_others() -> None:
    A = GroupAlgebra(shared=True)
    s = A.total(A.X**2 * A.Y + 3)
    assert sp.expand(s - (A.at["x"] ** 2 * A.at["dy"] + A.q((2, 1)) + 3 + 3 * (A.M - 1))) == 0
    vals = {"x": np.array([1.0, 2.0, 4.0]), "dy": np.array([1.0, -1.0, 2.0])}
    assert A.power_sums(vals, 0)[A.q((2, 1))] == pytest.approx(2**2 * -1 + 4**2 * 2)
    with pytest.raises(ValueError, match="not a polynomial"):
        A.total(1 / A.X)


def test_reduce_proves_and_refuses_with_the_radicand() -> None:
    A = GroupAlgebra(shared=True)
    var = A.mean(A.X**2) - A.mean(A.X) ** 2
    B = var + A.eps
    assert sums.reduce(sp.sqrt(B) ** 2 - B, B).zero
    assert sums.reduce(1 / (A.M * sp.sqrt(B) * B) - B ** sp.Rational(-3, 2) / A.M, B).zero
    assert not sums.reduce(sp.sqrt(B) - var, B).zero
    other = sums.reduce(sp.sqrt(A.eps + 1) - 1, B)
    assert not other.zero and other.opaque  # a radical it cannot decide: never "proved"


@pytest.mark.parametrize("layer", list(all_n.TWINS))
def test_every_twin_proves_for_every_size_and_ties_to_the_library(layer: str) -> None:
    p = all_n.build(layer)
    assert p is not None and set(p.routes) == set(registry.spec_of(layer).routes)
    for route in p.routes:
        status, _, detail = p.prove(route)
        assert status == "proved", (layer, route, detail)
    errors = all_n.tie(p, sizes=(5,))
    assert set(errors) == set(p.routes) and max(errors.values()) < 1e-12, errors


def test_every_registered_layer_has_an_every_size_twin() -> None:
    assert set(registry.layers()) <= set(all_n.TWINS)


def test_a_wrong_twin_is_not_proved_and_fails_the_tie() -> None:
    p = all_n.batch()
    A, alt = p.A, p.routes["alt"]
    # the seed's slip: x where xhat belongs, for every N
    mu = A.mean(A.X)
    var = A.mean((A.X - mu) ** 2)
    s = sp.sqrt(var + A.eps)
    xhat = (A.X - mu) / s
    wrong = A.at_i(
        p.A.params["gamma"] / s * (A.Y - (A.total(A.Y) + A.X * A.total(A.Y * xhat)) / A.M)
    )
    p.routes["alt"] = {**alt, "dx": wrong}
    assert p.prove("alt")[0] == "unproved"
    assert all_n.tie(p, sizes=(5,))["alt"] > 1e-3


def test_report_says_for_every_size_per_route(capsys: pytest.CaptureFixture[str]) -> None:
    results, status = report.derive_sizes(["batch", "rms"])
    assert status == 0 and all(r.status == "proved" and r.ok for r in results)
    out = capsys.readouterr().out
    assert out.count("for all N") == 3 and "for all D" in out


def test_a_layer_without_a_twin_is_reported_at_its_shapes(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delitem(all_n.TWINS, "instance")
    results, status = report.derive_sizes(["instance"])
    assert status == 0 and results[0].status == "shapes"
    assert "at shapes (1, 2, 1, 3)" in capsys.readouterr().out


def test_derive_layer_check_prints_the_every_size_verdict(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["derive", "rms", "--check"]) == 0
    assert "for all D" in capsys.readouterr().out
