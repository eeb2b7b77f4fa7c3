"""The update rules against the course notebook's checks (FullyConnectedNets.ipynb).

The course's expected arrays are printed to 8 decimals, so an exact rule can miss them
by up to 5e-9 per entry; in rel_error terms that is up to ~1e-7 on the entries near
zero (the course itself prints next_w errors of 9.5e-8 for RMSProp and 1.1e-7 for Adam).
Each check therefore asserts the tightest claim the printed values support: every entry
matches to all 8 printed decimals (|error| <= 5e-9), the course's rel_error bound holds,
and the rel_error equals the one the course notebook printed for its own solution.
"""

from __future__ import annotations

import numpy as np
import pytest

from normgrad import optim
from normgrad.gradient_check import rel_error

N, D = 4, 5
HALF_LAST_DIGIT = 5e-9 + 1e-15  # the expected values are rounded to 8 decimals


def _inputs() -> tuple[np.ndarray, np.ndarray]:
    w = np.linspace(-0.4, 0.6, num=N * D).reshape(N, D)
    dw = np.linspace(-0.6, 0.4, num=N * D).reshape(N, D)
    return w, dw


def _assert_matches(got: np.ndarray, expected: np.ndarray, rel: float, printed: float) -> None:
    """Match to the printed decimals, within ``rel``, and reproduce the course's printed error.

    ``printed`` is the rel_error the course notebook printed for its own solution; an
    implementation that computes the same numbers prints the same error to many digits.
    """
    assert np.max(np.abs(got - expected)) <= HALF_LAST_DIGIT
    assert rel_error(got, expected) < rel
    assert rel_error(got, expected) == pytest.approx(printed, rel=1e-6)


def test_sgd_defaults_and_step() -> None:
    w, dw = _inputs()
    next_w, config = optim.sgd(w, dw)
    assert config == {"learning_rate": 1e-2}
    np.testing.assert_array_equal(next_w, w - 1e-2 * dw)


def test_sgd_momentum_course_check() -> None:
    w, dw = _inputs()
    v = np.linspace(0.6, 0.9, num=N * D).reshape(N, D)
    config = {"learning_rate": 1e-3, "velocity": v}
    next_w, _ = optim.sgd_momentum(w, dw, config=config)
    expected_next_w = np.asarray(
        [
            [0.1406, 0.20738947, 0.27417895, 0.34096842, 0.40775789],
            [0.47454737, 0.54133684, 0.60812632, 0.67491579, 0.74170526],
            [0.80849474, 0.87528421, 0.94207368, 1.00886316, 1.07565263],
            [1.14244211, 1.20923158, 1.27602105, 1.34281053, 1.4096],
        ]
    )
    expected_velocity = np.asarray(
        [
            [0.5406, 0.55475789, 0.56891579, 0.58307368, 0.59723158],
            [0.61138947, 0.62554737, 0.63970526, 0.65386316, 0.66802105],
            [0.68217895, 0.69633684, 0.71049474, 0.72465263, 0.73881053],
            [0.75296842, 0.76712632, 0.78128421, 0.79544211, 0.8096],
        ]
    )
    _assert_matches(next_w, expected_next_w, 1e-8, 8.882347033505819e-09)
    _assert_matches(config["velocity"], expected_velocity, 1e-8, 4.269287743278663e-09)
    assert config["momentum"] == 0.9


def test_rmsprop_course_check() -> None:
    w, dw = _inputs()
    cache = np.linspace(0.6, 0.9, num=N * D).reshape(N, D)
    config = {"learning_rate": 1e-2, "cache": cache}
    next_w, _ = optim.rmsprop(w, dw, config=config)
    expected_next_w = np.asarray(
        [
            [-0.39223849, -0.34037513, -0.28849239, -0.23659121, -0.18467247],
            [-0.132737, -0.08078555, -0.02881884, 0.02316247, 0.07515774],
            [0.12716641, 0.17918792, 0.23122175, 0.28326742, 0.33532447],
            [0.38739248, 0.43947102, 0.49155973, 0.54365823, 0.59576619],
        ]
    )
    expected_cache = np.asarray(
        [
            [0.5976, 0.6126277, 0.6277108, 0.64284931, 0.65804321],
            [0.67329252, 0.68859723, 0.70395734, 0.71937285, 0.73484377],
            [0.75037008, 0.7659518, 0.78158892, 0.79728144, 0.81302936],
            [0.82883269, 0.84469141, 0.86060554, 0.87657507, 0.8926],
        ]
    )
    _assert_matches(next_w, expected_next_w, 1e-7, 9.524687511038133e-08)
    _assert_matches(config["cache"], expected_cache, 1e-8, 2.6477955807156126e-09)
    assert (config["decay_rate"], config["epsilon"]) == (0.99, 1e-8)


def test_adam_course_check() -> None:
    w, dw = _inputs()
    m = np.linspace(0.6, 0.9, num=N * D).reshape(N, D)
    v = np.linspace(0.7, 0.5, num=N * D).reshape(N, D)
    config = {"learning_rate": 1e-2, "m": m, "v": v, "t": 5}
    next_w, _ = optim.adam(w, dw, config=config)
    expected_next_w = np.asarray(
        [
            [-0.40094747, -0.34836187, -0.29577703, -0.24319299, -0.19060977],
            [-0.1380274, -0.08544591, -0.03286534, 0.01971428, 0.0722929],
            [0.1248705, 0.17744702, 0.23002243, 0.28259667, 0.33516969],
            [0.38774145, 0.44031188, 0.49288093, 0.54544852, 0.59801459],
        ]
    )
    expected_v = np.asarray(
        [
            [0.69966, 0.68908382, 0.67851319, 0.66794809, 0.65738853],
            [0.64683452, 0.63628604, 0.6257431, 0.61520571, 0.60467385],
            [0.59414753, 0.58362676, 0.57311152, 0.56260183, 0.55209767],
            [0.54159906, 0.53110598, 0.52061845, 0.51013645, 0.49966],
        ]
    )
    expected_m = np.asarray(
        [
            [0.48, 0.49947368, 0.51894737, 0.53842105, 0.55789474],
            [0.57736842, 0.59684211, 0.61631579, 0.63578947, 0.65526316],
            [0.67473684, 0.69421053, 0.71368421, 0.73315789, 0.75263158],
            [0.77210526, 0.79157895, 0.81105263, 0.83052632, 0.85],
        ]
    )
    _assert_matches(next_w, expected_next_w, 2e-7, 1.1395691798535431e-07)
    _assert_matches(config["v"], expected_v, 1e-8, 4.208314038113071e-09)
    _assert_matches(config["m"], expected_m, 1e-8, 4.214963193114416e-09)
    assert config["t"] == 6  # incremented before use


def test_adam_first_step_is_bias_corrected() -> None:
    # With t incremented before use, the first step moves each weight by ~lr*sign(dw).
    w, dw = _inputs()
    next_w, config = optim.adam(w, dw)
    assert config["t"] == 1
    np.testing.assert_allclose(w - next_w, 1e-3 * np.sign(dw), rtol=1e-6, atol=0)


@pytest.mark.parametrize("name", ["sgd", "sgd_momentum", "rmsprop", "adam"])
def test_rules_do_not_modify_inputs_or_old_state(name: str) -> None:
    rule = optim.UPDATE_RULES[name]
    w, dw = _inputs()
    w0, dw0 = w.copy(), dw.copy()
    _, config = rule(w, dw)
    state_before = {k: np.copy(val) for k, val in config.items()}
    kept = dict(config)  # a shallow snapshot shares the state arrays
    rule(w, dw, config)
    np.testing.assert_array_equal(w, w0)
    np.testing.assert_array_equal(dw, dw0)
    for k, val in kept.items():
        np.testing.assert_array_equal(val, state_before[k])


@pytest.mark.parametrize("name", ["sgd", "sgd_momentum", "rmsprop", "adam"])
def test_shape_mismatch_raises(name: str) -> None:
    rule = optim.UPDATE_RULES[name]
    with pytest.raises(ValueError, match="shape"):
        rule(np.zeros((2, 3)), np.zeros((3, 2)))


@pytest.mark.parametrize(
    ("name", "key"),
    [("sgd_momentum", "velocity"), ("rmsprop", "cache"), ("adam", "m"), ("adam", "v")],
)
def test_a_bad_state_array_leaves_config_exactly_as_it_was(name: str, key: str) -> None:
    # A call that fails its state-shape check writes no defaults into the config.
    rule = optim.UPDATE_RULES[name]
    w, dw = _inputs()
    config = {key: np.zeros((D, N))}  # another parameter's state
    before = dict(config)
    with pytest.raises(ValueError, match=rf"config\['{key}'\] must have the shape of w"):
        rule(w, dw, config)
    assert list(config) == list(before) and config[key] is before[key]


@pytest.mark.parametrize("name", ["sgd", "sgd_momentum", "rmsprop", "adam"])
def test_a_step_that_raises_leaves_config_exactly_as_it_was(name: str) -> None:
    rule = optim.UPDATE_RULES[name]
    w = np.zeros(3)
    config: dict = {}
    with pytest.raises(TypeError):  # the arithmetic fails after every check has passed
        rule(w, np.array(["a", "b", "c"], dtype=object), config)
    assert config == {}
    with pytest.raises(ValueError, match="shape"):
        rule(w, np.zeros(4), config)
    assert config == {}
    with pytest.raises(TypeError, match=r"Pass a dict like \{'learning_rate': "):
        rule(w, np.zeros(3), [("learning_rate", 1e-2)])
    _, config = rule(w, np.ones(3), config)  # a good call still fills in the defaults
    assert config["learning_rate"] in (1e-2, 1e-3)


def test_error_messages_say_how_to_fix_the_call() -> None:
    with pytest.raises(ValueError, match=r"return grads\[name\] with the shape of params"):
        optim.sgd(np.zeros((2, 3)), np.zeros((3, 2)))
    with pytest.raises(ValueError, match=r"delete config\['m'\] to start it from zeros"):
        optim.adam(np.zeros(3), np.zeros(3), {"m": np.zeros(4)})


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_adam_is_bit_identical_to_its_formula_and_leaves_the_callers_state(dtype):
    rng = np.random.default_rng(0)
    w = rng.standard_normal((30, 20)).astype(dtype)
    w_ref, m, v = w.copy(), np.zeros_like(w), np.zeros_like(w)
    config = None
    for t in range(1, 6):
        dw = rng.standard_normal(w.shape).astype(dtype)
        old_m = None if config is None else config["m"]
        old_m_copy = None if old_m is None else old_m.copy()
        w, config = optim.adam(w, dw, config)
        if old_m is not None:
            np.testing.assert_array_equal(old_m, old_m_copy)  # never written in place
        m = 0.9 * m + (1 - 0.9) * dw
        v = 0.999 * v + (1 - 0.999) * (dw * dw)
        w_ref = w_ref - 1e-3 * (m / (1 - 0.9**t)) / (np.sqrt(v / (1 - 0.999**t)) + 1e-8)
        assert np.array_equal(w, w_ref) and np.array_equal(config["m"], m)
        assert np.array_equal(config["v"], v) and config["t"] == t
