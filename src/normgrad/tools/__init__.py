"""What the ``normgrad`` commands run: checks, benchmarks, experiments, training, the demo.

``checks`` (``normgrad check``, with ``op_cases``), ``bench`` and ``bench_conv``
(``normgrad bench``), ``experiments`` (``normgrad experiment``), ``train``
(``normgrad train``) and ``demo`` (``normgrad demo``). The argument parsers live in
``normgrad.cli``, one module per command.
"""
