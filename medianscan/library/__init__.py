"""Stage 2, the stack on disk: roll and frame folders, which files in them are frames, manifests,
recovery after a crash, retention."""
