"""`python -m medianscan` is the same as the `medianscan` command."""

from medianscan.cli import console

console()
