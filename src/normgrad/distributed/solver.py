"""Data-parallel training: the course's Solver with every minibatch split over the ranks.

``DistributedSolver(model, data, comm=None, **kwargs)`` takes the ``Solver``'s keyword
arguments, with ``batch_size`` the whole minibatch over every rank. Each step:

1. every rank draws the same minibatch (the course's ``np.random.choice``: every rank
   holds the same data and NumPy's global random state, as after the same seed), and
   keeps its own B / P rows (rank r: rows r*B/P to (r+1)*B/P);
2. the model's loss and gradients on those rows (a ``sync_batchnorm`` layer shares
   its statistics with the other ranks inside the forward and backward passes);
3. ONE all-reduce of every gradient and the loss, flattened into one float64 buffer,
   divided by P: each rank's loss is the mean over its B/P rows, so the average over
   the ranks is the loss, and the gradients, of the whole minibatch;
4. the update rule, on every rank, on the same parameters with the same gradients, so
   the parameters stay bit for bit the same on every rank (MPI gives every rank the
   same all-reduce result).

With ``sync_batchnorm`` (or no batch norm), P ranks with batch B train as one process
with batch B, to rounding: measured over 20 Adam steps on 4 ranks x 25 against 1 x 100,
the loss history agrees to 4e-16 and the parameters to 1e-16 (relative), except the
biases in front of a batch norm, whose gradient is rounding noise in both runs (exactly
0 in exact arithmetic): they stay within 2e-11 of each other (tests/distributed). With
``batchnorm`` each rank normalizes by its own rows: that is *local* batch norm, the
usual data-parallel baseline.

Beyond the steps:

- **The first step checks that the ranks agree** (one all-reduce of a fixed-size
  record per rank, before any buffer whose size depends on the model): the world size,
  batch size, data size, the model's fingerprint and parameter shapes, the parameter
  values, the optimizer settings and the minibatch drawn (data and random state). A
  difference is a ``RanksDisagreeError`` (a ``ValueError``) on every rank, naming what
  differs and on which ranks; nothing has been changed (the step is rolled back).
- **Rank 0 alone prints, shows a progress bar, warns and writes checkpoints**; every
  rank computes the same accuracies (test mode: no communication) so every rank makes
  the same best-model decisions. Before each accuracy check the running statistics are
  copied from rank 0 (with local batch norm the ranks' differ; torch's
  DistributedDataParallel broadcasts rank 0's buffers the same way).
- **Resume**: ``resume_from=`` (or ``restore``) reads the checkpoint on every rank, so
  the checkpoint folder must be visible to every rank (one host, or a shared file
  system); the next step checks agreement again.
- **Dropout**: each rank draws its masks from a stream of its own, derived from the
  shared random state and its rank, and the shared state is put back afterwards, so
  the ranks' masks are independent and the minibatch draws stay in step.
- ``batch_size`` must be a multiple of the number of ranks (``ValueError`` otherwise,
  before anything is set).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from typing import Any

import numpy as np

from normgrad.norms.sync_comm import SUM, Communicator, resolve_comm
from normgrad.training.fingerprint import STAT_ATTRS, model_fingerprint
from normgrad.training.options import check_options
from normgrad.training.solver import Solver

__all__ = ["DistributedSolver", "RanksDisagreeError"]


class RanksDisagreeError(ValueError):
    """The ranks of a data-parallel run do not hold the same model, data or settings."""


def _digest(*parts: bytes) -> float:
    """A 52-bit digest of ``parts`` as an exact float64 (compared across ranks)."""
    h = hashlib.sha256()
    for p in parts:
        h.update(len(p).to_bytes(8, "little"))
        h.update(p)
    return float(int.from_bytes(h.digest()[:8], "little") >> 12)


def _json(value: Any) -> bytes:
    return json.dumps(value, sort_keys=True, default=str).encode()


class DistributedSolver(Solver):
    """The course ``Solver`` over P ranks, data parallel (see the module docstring).

    Args:
        model, data: as ``Solver``; the same on every rank.
        comm: the ranks: an mpi4py communicator, a ``norms.sync_comm.Communicator``, or None
            for ``normgrad.distributed.world()`` (MPI.COMM_WORLD under mpiexec).
        **kwargs: the ``Solver``'s, checked the same way on every rank.

    Raises:
        TypeError, ValueError: as ``Solver``; ``batch_size`` not a multiple of the
            number of ranks; a comm of another kind.
    """

    def __init__(self, model: Any, data: dict[str, np.ndarray], comm: Any = None, **kwargs: Any):
        check_options(dict(kwargs))  # every rank refuses the same bad options, first
        self.comm: Communicator = resolve_comm(comm)
        P = self.comm.size
        batch = kwargs.get("batch_size", 100)
        if batch % P:
            raise ValueError(
                f"batch_size={batch} must be a multiple of the number of ranks ({P}): each "
                f"rank trains on batch_size / {P} rows of every minibatch. Use e.g. "
                f"batch_size={max(P, batch - batch % P)}, or another number of ranks."
            )
        if self.comm.rank != 0:  # rank 0 alone prints and draws the progress bar
            kwargs = {**kwargs, "verbose": False, "progress_bar": False}
        self._agreed = False  # set once the first step has checked that the ranks agree
        super().__init__(model, data, **kwargs)

    # ------------------------------------------------------------------ one step
    def _minibatch(self) -> tuple[np.ndarray, np.ndarray]:
        """This rank's B / P rows of the minibatch every rank draws alike."""
        X, y = super()._minibatch()
        if not self._agreed:
            self._check_agreement(X, y)
            self._agreed = True
        n = X.shape[0] // self.comm.size
        rows = slice(self.comm.rank * n, (self.comm.rank + 1) * n)
        return X[rows], y[rows]

    def _loss_and_grads(
        self, X_batch: np.ndarray, y_batch: np.ndarray
    ) -> tuple[Any, dict[str, np.ndarray]]:
        """This rank's loss and gradients, then their average over the ranks: ONE
        all-reduce of every gradient and the loss in one float64 buffer."""
        loss, grads = self._own_stream(
            lambda: super(DistributedSolver, self)._loss_and_grads(X_batch, y_batch)
        )
        names = list(self.model.params)
        flat = np.concatenate(
            [np.ravel(grads[p]).astype(np.float64) for p in names] + [np.array([loss], float)]
        )
        total = self.comm.allreduce(flat, SUM) / self.comm.size  # (sum of sizes + 1,)
        averaged: dict[str, np.ndarray] = {}
        start = 0
        for p in names:
            g = grads[p]
            averaged[p] = total[start : start + g.size].reshape(g.shape).astype(g.dtype)
            start += g.size
        return total[-1], averaged

    def _own_stream(self, work: Callable[[], Any]) -> Any:
        """Run ``work`` with NumPy's global generator seeded for this rank (dropout masks
        independent across ranks), then put the shared state back (the minibatch draws
        stay in step). One rank: ``work`` as it is, on the shared stream."""
        if self.comm.size == 1:
            return work()
        shared: Any = np.random.get_state()  # noqa: NPY002  (the course's generator)
        key = np.asarray(shared[1], dtype=np.uint32)
        seed = [int(key[shared[2] % key.size]), int(shared[2]), self.comm.rank]
        np.random.seed(np.random.SeedSequence(seed).generate_state(1)[0])  # noqa: NPY002
        try:
            return work()
        finally:
            np.random.set_state(shared)  # noqa: NPY002

    def _check_agreement(self, X: np.ndarray, y: np.ndarray) -> None:
        """One all-reduce of every rank's fixed-size record; a difference is an error on
        every rank, naming the fields and the ranks (before any model-sized buffer)."""
        params = self.model.params
        fields = {
            "the number of ranks": float(self.comm.size),
            "batch_size": float(self.batch_size),
            "the number of training rows": float(self.X_train.shape[0]),
            "the model (class, sizes, normalization, parameter names and shapes)": _digest(
                _json(model_fingerprint(self.model)),
                _json([(k, np.shape(w), np.asarray(w).dtype.str) for k, w in params.items()]),
            ),
            "the parameter values": _digest(
                *(np.ascontiguousarray(w).tobytes() for w in params.values())
            ),
            "the update rule and optim_config": _digest(
                _json([self.update_rule_name, self.optim_config, self.lr_decay])
            ),
            "the minibatch drawn (the data and NumPy's random state)": _digest(
                np.ascontiguousarray(X).tobytes(), np.ascontiguousarray(y).tobytes()
            ),
        }
        P, r = self.comm.size, self.comm.rank
        table = np.zeros((P, len(fields)))
        table[r] = list(fields.values())
        table = self.comm.allreduce(table.ravel(), SUM).reshape(P, len(fields))
        wrong = []
        for j, name in enumerate(fields):
            others = [q for q in range(P) if table[q, j] != table[0, j]]
            if len(others) == 1:
                wrong.append(f"{name} (rank {others[0]} differs from rank 0)")
            elif others:
                wrong.append(f"{name} (ranks {', '.join(map(str, others))} differ from rank 0)")
        if wrong:
            raise RanksDisagreeError(
                f"the {P} ranks of this data-parallel run disagree at its first step on: "
                f"{'; '.join(wrong)}. Every rank must build the same model from the same "
                "seed, load the same data and use the same settings (run the same command "
                "on every rank: mpiexec -n P normgrad train --distributed ...)."
            )

    # ------------------------------------------------------------------ rank 0's jobs
    def _sync_state(self) -> None:
        """Copy rank 0's running statistics to every rank (one all-reduce: rank 0 gives
        its values, the others zeros, so the sum is rank 0's, exactly)."""
        slots = []
        for attr in STAT_ATTRS:
            layers = getattr(self.model, attr, None)
            for layer in layers if isinstance(layers, (list, tuple)) else []:
                if isinstance(layer, dict):
                    for key in sorted(layer):
                        a = layer[key]
                        if isinstance(a, np.ndarray) and a.dtype.kind == "f":
                            slots.append((layer, key, a))
        if self.comm.size == 1 or not slots:
            return
        flat = np.concatenate([np.ravel(a).astype(np.float64) for _, _, a in slots])
        if self.comm.rank != 0:
            flat = np.zeros_like(flat)
        flat = self.comm.allreduce(flat, SUM)
        start = 0
        for layer, key, a in slots:
            layer[key] = flat[start : start + a.size].reshape(a.shape).astype(a.dtype)
            start += a.size

    def _check_and_snapshot(self, num_iterations: int, say: Callable[[str], Any]) -> None:
        self._sync_state()
        super()._check_and_snapshot(num_iterations, say)

    def _save_checkpoint(self, say: Callable[[str], Any] = print) -> None:
        """Rank 0 writes the checkpoint; every rank records its path."""
        if self.comm.rank == 0:
            super()._save_checkpoint(say)
        elif self.checkpoint_name is not None:
            self.last_checkpoint = f"{self.checkpoint_name}_epoch_{self.epoch}.npz"

    def _warn_nonfinite(self, loss: Any) -> None:
        if self.comm.rank == 0:
            super()._warn_nonfinite(loss)
        else:
            self._warned_nonfinite = True

    def restore(self, path: Any) -> None:
        """``Solver.restore`` on this rank (every rank reads the file); the next step
        checks again that the ranks agree."""
        super().restore(path)
        self._agreed = False
