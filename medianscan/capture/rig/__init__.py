"""The rig: a film advancer or XY stage on a serial line, for a roll shot without hands (`medianscan scan-roll`).
One module per protocol (grbl, marlin, line) over one port (port: pyserial's, or the simulated controller's);
`open` opens the configured one, `roll_run` drives a roll with it."""
