"""medianscan test suite (a package, so test helpers import as tests.<module>)."""
