"""Stage 4, outputs: the DNG, TIFF and JPEG writers, previews, and the read-back that proves them."""
