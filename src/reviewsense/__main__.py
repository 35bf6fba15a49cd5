"""`python -m reviewsense ...` (also what `torchrun -m reviewsense train ...` runs)."""

from reviewsense.cli.main import main

raise SystemExit(main())
