"""normgrad.distributed: synchronized batch norm and data-parallel training on MPI.

The maths lives in ``normgrad.norms.sync`` (like every normalization); this package is
its public surface and the MPI-specific parts:

- ``sync_batchnorm_forward(x, gamma, beta, bn_param, comm=None)`` and
  ``sync_batchnorm_backward(dout, cache)``, ``sync_spatial_batchnorm_forward`` /
  ``_backward`` for (N, C, H, W): batch norm over the rows of every rank, one
  all-reduce each way (``norms.sync``);
- ``world()``: MPI.COMM_WORLD under mpiexec, else one local rank; ``MPIComm`` wraps any
  mpi4py communicator (``comm``);
- ``run_ranks(fn, P)``: P ranks as threads of one process (``simulated``), for tests;
- ``DistributedSolver``: the course's Solver, data parallel (``solver``);
- ``launch.run(N, args)``: start ``mpiexec -n N python args`` (``launch``);
- ``faults.guard`` / ``faults.install``: one rank's error ends every rank (``faults``).

From the command line: ``mpiexec -n 4 normgrad train --distributed --norm
sync_batchnorm`` or ``normgrad train --ranks 4 ...``; ``normgrad experiment sync-bn``.
docs/scaling.md has the costs, measured and modelled, and how to run across hosts.
"""

from normgrad.distributed.comm import MPIComm, launched_by_mpi, world
from normgrad.distributed.simulated import SimulatedComm, run_ranks, simulated_world
from normgrad.distributed.solver import DistributedSolver, RanksDisagreeError
from normgrad.norms.sync import (
    SyncBatchNormCache,
    SyncSpatialBatchNormCache,
    sync_batchnorm_backward,
    sync_batchnorm_forward,
    sync_spatial_batchnorm_backward,
    sync_spatial_batchnorm_forward,
    unequal_split,
)
from normgrad.norms.sync_comm import CHAN, MAX, SUM, Communicator, LocalComm, Reduction, chan_merge

__all__ = [
    "CHAN",
    "MAX",
    "SUM",
    "Communicator",
    "DistributedSolver",
    "LocalComm",
    "MPIComm",
    "RanksDisagreeError",
    "Reduction",
    "SimulatedComm",
    "SyncBatchNormCache",
    "SyncSpatialBatchNormCache",
    "chan_merge",
    "launched_by_mpi",
    "run_ranks",
    "simulated_world",
    "sync_batchnorm_backward",
    "sync_batchnorm_forward",
    "sync_spatial_batchnorm_backward",
    "sync_spatial_batchnorm_forward",
    "unequal_split",
    "world",
]
