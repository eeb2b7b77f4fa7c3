"""One rank of the data-parallel equality test (mpiexec -n 4 python solver.py OUT.npz).

20 Adam steps of a float64 FullyConnectedNet with sync batch norm, batch 100 split
4 x 25; rank 0 saves the loss history, the parameters, held-out scores and every rank's
parameter digest (the parameters must have the same bits on every rank).
"""

import hashlib
import sys

import numpy as np
from mpi4py import MPI

from normgrad.data import prepare
from normgrad.distributed import DistributedSolver, faults
from normgrad.models.fc_net import FullyConnectedNet

SETTINGS = dict(
    update_rule="adam",
    optim_config={"learning_rate": 2e-3},
    num_epochs=4,  # 500 rows / batch 100: 5 steps per epoch, 20 steps
    batch_size=100,
    verbose=False,
    num_train_samples=None,
)


def setup():
    data, _ = prepare.load("digits", None, num_train=500, layout="flat", dtype=np.float64)
    np.random.seed(3)  # noqa: NPY002
    model = FullyConnectedNet(
        [32, 16], input_dim=64, num_classes=10, normalization="sync_batchnorm", reg=1e-3,
        weight_scale=5e-2, dtype=np.float64,
    )  # fmt: skip
    return data, model


def main():
    data, model = setup()
    solver = DistributedSolver(model, data, **SETTINGS)
    solver.train()
    digest = hashlib.sha256(b"".join(w.tobytes() for w in solver.model.params.values()))
    digests = MPI.COMM_WORLD.allgather(digest.hexdigest())
    if MPI.COMM_WORLD.Get_rank() == 0:
        scores = solver.model.loss(data["X_val"])
        np.savez(
            sys.argv[1], loss=np.array(solver.loss_history), scores=scores,
            digests=np.array(digests), **{f"param/{k}": w for k, w in solver.model.params.items()},
        )  # fmt: skip
    return 0


if __name__ == "__main__":
    faults.guard(main)
