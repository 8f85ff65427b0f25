"""`python -m medianscan` is the same as the `medianscan` command."""

import sys

from medianscan.cli import main

sys.exit(main())
