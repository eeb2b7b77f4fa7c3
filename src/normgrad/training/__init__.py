"""Training: the update rules, the ``Solver``, its option checks and its checkpoints.

``rules`` (the course's ``optim``), ``solver`` (the course's ``Solver``), ``options``
(every Solver keyword and the data, checked before anything is set) and ``checkpoint``
(atomic, pickle-free ``.npz`` files of the whole run). The course's paths
(``normgrad.optim``, ``normgrad.solver``) re-export them.
"""
