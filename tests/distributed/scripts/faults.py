"""One rank of tests/distributed/test_mpi.py's fault tests (mpiexec -n P faults.py MODE).

raise:    rank 1 raises inside a training step while the others wait in collectives;
kill:     rank 2 kills itself with SIGKILL in the middle of training;
disagree: rank 1 builds its model from another seed, rank 2 one of another shape.
"""

import os
import signal
import sys

import numpy as np

from normgrad.data import prepare
from normgrad.distributed import DistributedSolver, faults, world
from normgrad.models.fc_net import FullyConnectedNet

MODE = sys.argv[1]


class Breaking(FullyConnectedNet):
    def loss(self, X, y=None):
        if y is not None:  # a training step
            if MODE == "raise" and world().rank == 1 and self.steps == 3:
                raise RuntimeError("rank 1 failed on purpose in its 4th step")
            if MODE == "kill" and world().rank == 2 and self.steps == 3:
                os.kill(os.getpid(), signal.SIGKILL)
            self.steps += 1
        return super().loss(X, y)


def main():
    data, _ = prepare.load("digits", None, num_train=200, layout="flat", dtype=np.float64)
    rank = world().rank
    seed = 1 if (MODE == "disagree" and rank == 1) else 0
    hidden = [16, 9] if (MODE == "disagree" and rank == 2) else [16, 8]
    np.random.seed(seed)  # noqa: NPY002
    model = Breaking(hidden, input_dim=64, num_classes=10, normalization="sync_batchnorm")
    model.steps = 0
    solver = DistributedSolver(
        model, data, num_epochs=50, batch_size=24, verbose=False, num_train_samples=None,
        optim_config={"learning_rate": 1e-3},
    )  # fmt: skip
    solver.train()
    return 0


faults.guard(main)
