"""Stage 3, blend: read a stack's frames, check they differ only in noise, combine them.

The story is told by the modules here: pipeline (one stack, start to end) and bracket_pipeline (a bracket),
with their shared steps in stack_files, write (combine and write the outputs), verify (read them back), sidecar
(what was done) and options (how to blend). Underneath, one level down: reading (frames in), measuring (checks
and noise), kernels (the numba combine) and corrections (flat field, bracket merge, white level).
"""
