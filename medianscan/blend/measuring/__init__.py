"""Measuring a stack: do its frames differ only in noise (checks, with consistency, registration and binning
under them), how much noise a blend leaves (noise, efficiency), the negative's densest tenth that `frames: auto`
sizes bursts by (dense), and how much of each frame clipped (exposure). It reads frames; it writes nothing."""
