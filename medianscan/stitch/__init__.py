"""Tiles stitched on the raw mosaic into one DNG (`medianscan stitch`).

The flow, one module per step: `sources` turns each argument into a raw (a stack folder's blend) and reads it;
`plan` checks the set and the output against the readers' limits before any pixel is read; `register` measures
each overlap (translation and a small rotation on colour-balanced CFA cells) and `solve` places every tile by
least squares over all overlaps, with the prior grid where one is known; `gains` gives each tile one exposure
gain from the overlaps; `place` decides which tiles are copied photosite for photosite and which are resampled
(`resample`, per colour plane onto the output's CFA); `seams` feathers each overlap; `compose` builds the output
a band of rows at a time and `write` streams those bands into a tiled DNG; `record` is OUT.json. `pipeline`
tells the story in one screen.
"""
