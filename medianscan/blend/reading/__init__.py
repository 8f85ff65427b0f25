"""Reading a stack's frames: what a file holds by its content (sniff), decoding any frame format into pixels and
metadata (frames, with dng_jxl for the JPEG XL DNGs LibRaw refuses), a raw's layout and colour as the DNG writer
needs them (raw_layout), the memory the frames are decoded into (shelf), and which files a sidecar says a blend
already looked at (recorded). Nothing here measures or writes."""
