"""`python -m tui.cli` runs the command line."""

from tui.cli.main import main

raise SystemExit(main())
