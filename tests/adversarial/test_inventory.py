"""Every generated bad input is a clear refusal that changes nothing (see inventory.py).

Plus a property: a batch-norm ``bn_param`` of random keys and values is either used
correctly or refused with a TypeError/ValueError naming the key, and a refused call
leaves it exactly as it was.
"""

from __future__ import annotations

import copy

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from normgrad.norms.batch import PARAM_KEYS, batchnorm_forward
from tests.adversarial import inventory

CASES = inventory.cases()


@pytest.mark.parametrize("case", CASES, ids=[f"{c.area}: {c.name}" for c in CASES])
def test_each_bad_input_is_a_clear_refusal(case: inventory.Case) -> None:
    verdict, detail = inventory.run(case)
    assert verdict == "clear error", detail


def test_the_inventory_covers_every_area_with_hundreds_of_cases() -> None:
    areas = {c.area.split(":")[0] for c in CASES}
    assert {"norms", "ops", "models", "training", "gradcheck"} <= areas
    assert len(CASES) >= 500


VALUES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-3, 3),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=4),
    st.just(np.ones(4)),
    st.just(np.full(4, -1.0)),
    st.just(np.ones(3)),
)
KEYS = st.sampled_from([*PARAM_KEYS, "epsilon", "momentun", "Mode", "r_max"])


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(KEYS, VALUES, max_size=4))
def test_random_bn_params_are_used_or_refused_without_a_trace(extra: dict) -> None:
    x = np.random.default_rng(0).standard_normal((5, 4))
    param = {"mode": "train", **extra}
    before = copy.deepcopy(param)
    try:
        out, _ = batchnorm_forward(x, np.ones(4), np.zeros(4), param)
    except (TypeError, ValueError) as exc:
        assert inventory._equal(param, before)  # refused: unchanged
        assert any(str(k) in str(exc) for k in param) or "x" in str(exc), str(exc)
        return
    assert out.shape == x.shape and np.all(np.isfinite(out))
    assert set(param) >= set(before)  # only the running statistics were added or replaced
