"""medianscan: locked-exposure RAW bursts of film negatives, blended to a per-pixel median DNG."""

__version__ = "0.1.0"
