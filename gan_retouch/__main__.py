"""`python -m gan_retouch` is the same as the `gan-retouch` command."""

from gan_retouch.cli import main

raise SystemExit(main())
