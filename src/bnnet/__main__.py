"""`python -m bnnet` is the `bnnet` command."""
import sys

from .cli.main import main

sys.exit(main())
