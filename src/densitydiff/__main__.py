"""`python -m densitydiff` is the same as the `densitydiff` command."""

import sys

from densitydiff.cli import main

sys.exit(main())
