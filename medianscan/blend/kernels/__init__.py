"""The numba kernels: the per-pixel combine (combine) of kernels generated for each frame count (codegen, from the
selection networks in networks), cached on disk by content (kernel_cache) and built ahead (kernel_build); the
noise model the robust means judge values against (noise_model); and the bracket merge's loop (merge_kernel).
Arrays in, arrays out: no files of frames, no metadata."""
