"""Training: the update rules, the ``Solver``, its option checks and its checkpoints.

``rules`` (the course's ``optim``, each config checked), ``solver`` (the course's
``Solver``), ``step`` (one step as a transaction: a failed step changes nothing),
``options`` (every Solver keyword and the data, checked before anything is set),
``checkpoint`` (atomic, pickle-free, checksummed ``.npz`` files of the whole run),
``fingerprint`` (what a checkpoint must share with the model it is resumed into) and
``resume`` (a checkpoint read and checked whole before anything is restored). The
course's paths (``normgrad.optim``, ``normgrad.solver``) re-export them.
"""
