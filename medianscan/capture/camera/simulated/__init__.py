"""The simulated camera: a body without a camera, for tests, benches and trying the console with no hardware.

`camera.SimulatedCamera` is the Camera; `body` is its shutter and link in real time (a `BodyLink`) at the speed
`timing` gives, `scene` is what its sensor sees, `live` its preview frames, `strip` the roll of negatives the
simulated rig moves, `sheet` the sheet negative on the XY stage it moves instead. Like a real body it is owned by
the capture daemon's camera thread; its shutter runs a thread of its own, and its strip and its stage, which the
rig's thread moves, are behind locks.
"""
