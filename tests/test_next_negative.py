"""Finding the next negative of a 120 strip in one live-view frame (capture.rig.next_negative), on views built
here column by column: the film's orange base, a negative's picture (darker, textured, through the same mask),
the bare light (brighter and white); the light falling off towards the view's edges as a lens's does. The whole
run over the simulated strip is tests/test_scan_strip.py's."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from medianscan.capture.rig.next_negative import GapFinder, film_edge

H, W = 96, 384
BASE = np.array([200.0, 170.0, 60.0])  # the orange base, 8-bit RGB
LIGHT = np.array([235.0, 235.0, 235.0])  # the bare light


def view(*parts: tuple[str, int], falloff: float = 0.1, seed: int = 1) -> npt.NDArray[np.float32]:
    """A view of runs of 'base', 'picture' and 'light', each so many columns wide, left to right."""
    rng = np.random.default_rng(seed)
    columns = []
    for kind, width in parts:
        if kind == "base":
            block = np.broadcast_to(BASE, (H, width, 3)).copy()
        elif kind == "light":
            block = np.broadcast_to(LIGHT, (H, width, 3)).copy()
        else:  # a negative's densities through the mask: 25 to 75 % of the base, in patches
            density = np.repeat(np.repeat(rng.uniform(0.25, 0.75, (H // 8, width // 8 + 1)), 8, 0), 8, 1)[:, :width]
            block = density[..., None] * BASE
        columns.append(block)
    rgb = np.concatenate(columns, axis=1)
    assert rgb.shape[1] == W
    x = np.linspace(-1.0, 1.0, W)
    rgb *= (1 - falloff * x * x)[None, :, None]  # the light falls off towards the view's edges
    return (rgb + rng.normal(0, 1.5, rgb.shape)).astype(np.float32)


def test_the_gap_between_two_pictures_gives_the_next_negatives_first_column() -> None:
    sight = GapFinder().at_gap(view(("picture", 170), ("base", 30), ("picture", 184)))
    assert sight.kind == "gap", sight
    assert abs(sight.start_px - (200 - W / 2)) <= 2 and abs(sight.gap_px - 30) <= 3, sight


def test_a_strip_advancing_leftwards_reads_the_view_from_the_right() -> None:
    mirrored = view(("picture", 184), ("base", 30), ("picture", 170))
    sight = GapFinder(advance=-1).at_gap(mirrored)
    assert sight.kind == "gap" and abs(sight.start_px - (200 - W / 2)) <= 2, sight


def test_clear_base_to_the_far_edge_asks_for_a_look_further_and_bare_light_after_it_is_the_end() -> None:
    finder = GapFinder()
    assert finder.at_gap(view(("picture", 170), ("base", 214))).kind == "further"
    end = finder.at_gap(view(("picture", 170), ("base", 60), ("light", 154)))
    assert end.kind == "end" and "bare light" in end.why, end


def test_where_the_next_negative_should_be_clear_base_is_a_blank_and_bare_light_the_end() -> None:
    finder = GapFinder()
    assert finder.at_centre(view(("base", W), falloff=0.15)).kind == "blank"  # its edges dimmed, still base
    assert finder.at_centre(view(("base", 100), ("light", 284))).kind == "end"
    found = GapFinder().at_centre(view(("base", 120), ("picture", 264)))
    assert found.kind == "gap" and abs(found.start_px - (120 - W / 2)) <= 2, found


def test_a_view_of_picture_alone_or_of_picture_as_bright_as_base_is_lost_with_a_reason() -> None:
    assert GapFinder().at_gap(view(("picture", W))).kind == "lost"
    rgb = view(("picture", 170), ("base", 30), ("picture", 184))
    rgb[:, :170] = rgb[:, 170:200].mean(axis=1, keepdims=True) * 0.97  # a picture nearly as thin as the base
    rgb[:, 200:] = rgb[:, 170:200].mean(axis=1, keepdims=True) * 0.97
    lost = GapFinder().at_gap(rgb)
    assert lost.kind in ("lost", "further"), lost  # never a gap taken from a picture's thin columns


def across(*parts: tuple[str, int]) -> npt.NDArray[np.float32]:
    """A view across the strip at a gap: runs of rows (top to bottom) of 'picture' with the gap's base down its
    middle columns, 'base' (the rebate) and 'light', built as `view` builds columns, then turned."""
    rows = view(*parts, falloff=0.1)  # W rows of H columns once turned
    return np.ascontiguousarray(np.transpose(rows, (1, 0, 2))).astype(np.float32)


def test_the_films_edge_across_the_strip_is_the_row_where_the_bare_light_begins() -> None:
    down = film_edge(across(("picture", 250), ("base", 40), ("light", 94)))
    assert down is not None and abs(down - (290 - W / 2)) <= 1.0, down  # light below: the edge below the centre
    up = film_edge(across(("light", 70), ("base", 40), ("picture", 274)))
    assert up is not None and abs(up - (70 - W / 2)) <= 1.0, up
    assert film_edge(across(("picture", 300), ("base", 84))) is None  # film across the view: no edge
    assert film_edge(across(("light", 60), ("base", 20), ("picture", 224), ("base", 20), ("light", 60))) is None
