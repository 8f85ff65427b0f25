"""The burst engine: N frames at the body's own speed, whatever drives the body (libgphoto2 or the simulator).

link (what the engine asks of a body), strategies (how a body is fired) and quirks (what particular bodies need),
engine (the burst), writer (downloads to disk off the camera thread), journal and leftover (what a burst cut off
left on the body).
"""
