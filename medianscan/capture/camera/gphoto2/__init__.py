"""The real camera: a body on USB through libgphoto2 (python-gphoto2), the only package that imports gphoto2.

`backend.Gphoto2Camera` is the Camera; `session` finds and opens the body, `settings` locks and restores its
widgets, `live` takes its preview frames, `link` is the body as the burst engine drives it. Every libgphoto2 call
for one body runs on one thread: the capture daemon's camera thread, which owns the Camera.
"""
