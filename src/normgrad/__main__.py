"""``python -m normgrad`` is the same CLI as the ``normgrad`` console script."""

from normgrad.cli import main

raise SystemExit(main())
