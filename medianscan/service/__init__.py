"""The long-running modes that run the stages: the shared service loop, capture mode, watch mode with its
hot-folder tracking, the blend pool of worker processes, sd_notify and operator hooks."""
