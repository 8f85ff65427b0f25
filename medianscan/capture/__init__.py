"""Stage 1, capture: what the operator presses (footswitch, keyboard, control socket) and the camera that
fires the burst."""
