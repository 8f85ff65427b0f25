"""Stage 2, the stack on disk: roll and negative folders, which files in them are frames, manifests,
recovery after a crash, retention."""
