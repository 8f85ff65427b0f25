"""The simulated camera: a body without a camera, for tests, benches and trying the console with no hardware.

`camera.SimulatedCamera` is the Camera; `body` is its shutter and link in real time (a `BodyLink`) at the speed
`timing` gives, `scene` is what its sensor sees, `live` its preview frames, `strip` the roll of negatives the
simulated rig moves. Like a real body it is owned by the capture daemon's camera thread; its shutter runs a thread
of its own, and its strip, which the rig's thread moves, is behind a lock.
"""
