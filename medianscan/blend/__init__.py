"""Stage 3, blend: read a stack's frames, check they differ only in noise, combine them."""
