"""`python -m connector` is the `b24sync` command."""

import sys

from connector.cli.main import main

sys.exit(main())
