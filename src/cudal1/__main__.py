"""`python -m cudal1 ...`: the console script without an installation (e.g. PYTHONPATH=src on a GPU image)."""

from cudal1.cli.main import main

raise SystemExit(main())
