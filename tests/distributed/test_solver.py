"""DistributedSolver in this process: one rank is the Solver, bit for bit; bad settings
and disagreeing ranks are refused before anything changes (the MPI runs: test_mpi.py)."""

from __future__ import annotations

import copy

import numpy as np
import pytest

from normgrad.distributed import DistributedSolver, RanksDisagreeError, faults
from normgrad.models.fc_net import FullyConnectedNet
from normgrad.norms import sync_comm
from normgrad.training.solver import Solver

SETTINGS = dict(
    update_rule="adam", optim_config={"learning_rate": 1e-3}, num_epochs=2, batch_size=20,
    verbose=False, num_train_samples=None,
)  # fmt: skip


def _setup(norm: str = "sync_batchnorm"):
    rng = np.random.default_rng(0)
    data = {
        "X_train": rng.standard_normal((60, 6)),
        "y_train": rng.integers(0, 3, 60),
        "X_val": rng.standard_normal((10, 6)),
        "y_val": rng.integers(0, 3, 10),
    }
    np.random.seed(1)  # noqa: NPY002
    model = FullyConnectedNet(
        [7, 5], input_dim=6, num_classes=3, normalization=norm, dtype=np.float64
    )
    return data, model


@pytest.mark.parametrize("norm", ["sync_batchnorm", "batchnorm", None])
def test_one_rank_trains_exactly_as_the_solver(norm) -> None:
    data, model = _setup(norm)
    np.random.seed(5)  # noqa: NPY002
    one = Solver(copy.deepcopy(model), data, **SETTINGS)
    one.train()
    np.random.seed(5)  # noqa: NPY002
    dist = DistributedSolver(copy.deepcopy(model), data, comm=sync_comm.LocalComm(), **SETTINGS)
    dist.train()
    assert dist.loss_history == one.loss_history
    assert dist.val_acc_history == one.val_acc_history
    for k, w in one.model.params.items():
        assert np.array_equal(dist.model.params[k], w), k


class _Stub:
    """Rank 0 of a pretend world of ``size`` ranks; ``others`` rows join the digest table."""

    def __init__(self, size: int, change=None) -> None:
        self.rank, self.size, self.change = 0, size, change

    def allreduce(self, buf, op):
        table = np.asarray(buf, dtype=float).reshape(self.size, -1).copy()
        for r in range(1, self.size):
            table[r] = table[0]
        if self.change is not None:
            self.change(table)
        return table.ravel()


@pytest.mark.parametrize(
    "column,name",
    [(4, "the parameter values"), (3, "parameter names and shapes"), (6, "the minibatch drawn")],
)
def test_disagreeing_ranks_are_named_at_the_first_step_and_nothing_changes(column, name) -> None:
    data, model = _setup("batchnorm")

    def change(table):
        table[2, column] += 1.0

    solver = DistributedSolver(model, data, comm=_Stub(3, change), **{**SETTINGS, "batch_size": 18})
    before = {k: w.copy() for k, w in model.params.items()}
    state = np.random.get_state()  # noqa: NPY002
    with pytest.raises(RanksDisagreeError, match=f"{name}.*rank 2 differs from rank 0"):
        solver.train()
    assert solver.loss_history == [] and all(
        np.array_equal(model.params[k], w) for k, w in before.items()
    )
    assert np.array_equal(np.random.get_state()[1], state[1])  # noqa: NPY002  (rolled back)


def test_bad_settings_are_refused_before_anything_is_set() -> None:
    data, model = _setup()
    before = {k: w.copy() for k, w in model.params.items()}
    with pytest.raises(ValueError, match=r"multiple of the number of ranks \(3\)"):
        DistributedSolver(model, data, comm=_Stub(3), **SETTINGS)  # 20 rows over 3 ranks
    with pytest.raises(TypeError, match="batch_size"):
        DistributedSolver(model, data, comm=_Stub(2), **{**SETTINGS, "batch_size": "20"})
    with pytest.raises(ValueError, match="unrecognized|Unrecognized|unknown"):
        DistributedSolver(model, data, comm=_Stub(2), **SETTINGS, batchsize=20)
    with pytest.raises(TypeError, match="comm must be"):
        DistributedSolver(model, data, comm=object(), **SETTINGS)
    assert all(np.array_equal(model.params[k], w) for k, w in before.items())


def test_guard_on_one_rank_reports_usage_errors_and_lets_bugs_through(capsys) -> None:
    from normgrad._internal.errors import UsageError

    def usage() -> int:
        raise UsageError("--batch-size 7 does not split")

    assert faults.guard(usage, command="normgrad train", comm=sync_comm.LocalComm()) == 2
    assert "normgrad train: error: --batch-size 7 does not split" in capsys.readouterr().err
    with pytest.raises(KeyError):
        faults.guard(lambda: {}["x"], comm=sync_comm.LocalComm())
    assert faults.guard(lambda: 0, comm=sync_comm.LocalComm()) == 0


def test_drain_waits_until_the_pipe_has_been_read() -> None:
    """A failing rank's last words must be read from its pipe before MPI_Abort (which
    would lose them): ``drain`` returns only once the reader has taken every byte."""
    import os
    import threading
    import time

    read_fd, write_fd = os.pipe()
    try:
        os.write(write_fd, b"x" * 5000)
        assert faults._unread(write_fd) == 5000  # FIONREAD on the writing end
        assert not faults.drain(timeout=0.2, settle=0.0, fds=(write_fd,))  # nobody reads
        got = bytearray()

        def slow_reader() -> None:
            time.sleep(0.3)
            while len(got) < 5000:
                got.extend(os.read(read_fd, 1000))
                time.sleep(0.02)

        reader = threading.Thread(target=slow_reader)
        reader.start()
        assert faults.drain(timeout=5.0, settle=0.0, fds=(write_fd,))
        assert len(got) == 5000 and faults._unread(write_fd) == 0
        reader.join()
    finally:
        os.close(read_fd)
        os.close(write_fd)
    assert faults._unread(write_fd) == 0  # a closed descriptor: nothing to wait for


def test_abort_drains_before_it_aborts(monkeypatch) -> None:
    order: list[str] = []

    class Aborting(_Stub):
        def abort(self, code: int) -> None:
            order.append(f"abort {code}")

    monkeypatch.setattr(faults, "drain", lambda *a, **k: order.append("drain") or True)
    with pytest.raises(SystemExit):
        faults.abort(3, Aborting(3))
    assert order == ["drain", "abort 3"]
