"""The plan of a negative in tiles: how many, where the stage goes, in which order, backlash taken up, and where
each tile lies in the stitched picture. Pure: the stage here is a model of lost motion (a nut with play on a
lead screw) written for the test, the truth the route is checked against."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from medianscan.capture.rig.tile_plan import (
    FORMATS_MM,
    Move,
    PlanError,
    Slack,
    StageScale,
    Wanted,
    make_plan,
    route,
    serpentine,
)

SENSOR = (1536, 1024)


def scale(px_per_mm: float = 60.0, degrees: float = 0.0, backlash: float = 0.0) -> StageScale:
    """A stage whose X moves the picture leftwards (the film moves right, the view sees more of its left), Y
    upwards, both turned `degrees` from the sensor's axes."""
    a = math.radians(degrees)
    x_axis = (-px_per_mm * math.cos(a), -px_per_mm * math.sin(a))
    y_axis = (px_per_mm * math.sin(a), -px_per_mm * math.cos(a))
    return StageScale(x_axis, y_axis, SENSOR, (backlash, backlash))


class PlayStage:
    """Where a stage with `play` mm of lost motion per axis really is: the carriage follows the motor only once
    the nut touches it, lagging by the play after a move one way and none after the other."""

    def __init__(self, play: tuple[float, float], slack: tuple[float, float] = (0.3, 0.7)) -> None:
        self.play = play
        self.motor = [0.0, 0.0]
        self.stage = [-slack[0] * play[0], -slack[1] * play[1]]  # somewhere within the play, not known

    def move(self, dx: float, dy: float) -> None:
        for axis, d in enumerate((dx, dy)):
            self.motor[axis] += d
            if d > 0:
                self.stage[axis] = max(self.stage[axis], self.motor[axis] - self.play[axis])
            elif d < 0:
                self.stage[axis] = min(self.stage[axis], self.motor[axis])


def test_a_6x7_negative_is_covered_with_the_overlap_asked_and_tiles_in_a_serpentine() -> None:
    plan = make_plan(Wanted(format="6x7"), scale(60.0))  # a view of 25.6 x 17.1 mm
    width, height = FORMATS_MM["6x7"]
    assert (plan.columns, plan.rows) == (4, 5)
    assert plan.covered_mm[0] >= width + 2 and plan.covered_mm[1] >= height + 2
    assert plan.covered_mm[0] == pytest.approx(width + 2)  # X needs the smaller overlap: it fits exactly
    assert plan.overlap[0] == pytest.approx(plan.overlap[1]) and plan.overlap[0] >= 0.25  # one overlap: the prior's
    assert len({(t.column, t.row) for t in plan.tiles}) == plan.columns * plan.rows
    for a, b in itertools.pairwise(plan.tiles):  # each tile next to the one before: one step
        assert abs(a.column - b.column) + abs(a.row - b.row) == 1
    xs = sorted({round(t.stage_mm[0], 6) for t in plan.tiles})
    assert xs[0] == pytest.approx(-xs[-1])  # centred on the negative
    assert plan.said() == "6x7 (70 x 56 mm and 1 mm margins) in 4x5 tiles covering 72.0 x 58.3 mm, 40% overlap"


def test_fewer_tiles_with_a_wider_view_and_a_grid_when_asked() -> None:
    wide = make_plan(Wanted(format="6x7"), scale(30.0))  # a view of 51.2 x 34.1 mm
    assert (wide.columns, wide.rows) == (2, 2)
    plan = make_plan(Wanted(columns=3, rows=2, overlap=0.3), scale(60.0))
    assert (plan.columns, plan.rows) == (3, 2)
    assert plan.overlap[0] == pytest.approx(0.3) and plan.overlap[1] == pytest.approx(0.3)
    assert make_plan(Wanted(width_mm=10, height_mm=10), scale(60.0)).tiles[0].stage_mm == (0.0, 0.0)  # one tile


def test_the_serpentine_runs_along_the_axis_with_more_tiles() -> None:
    assert serpentine(3, 2) == [(0, 0), (1, 0), (2, 0), (2, 1), (1, 1), (0, 1)]
    assert serpentine(2, 3) == [(0, 0), (0, 1), (0, 2), (1, 2), (1, 1), (1, 0)]


def test_priors_follow_the_stage_turned_off_square() -> None:
    plan = make_plan(Wanted(columns=3, rows=3, overlap=0.25), scale(60.0, degrees=0.2))
    first = next(t for t in plan.tiles if (t.column, t.row) == (0, 0))
    assert first.prior == (0.0, 0.0)
    right = next(t for t in plan.tiles if (t.column, t.row) == (1, 0))
    step = plan.step_mm[0] * 60.0
    assert right.prior[1] == pytest.approx(step * math.cos(math.radians(0.2)))
    assert right.prior[0] == pytest.approx(step * math.sin(math.radians(0.2)))  # drifts down: 4 px a step
    assert step == pytest.approx(0.75 * SENSOR[0])


@pytest.mark.parametrize("play", [(0.0, 0.0), (0.05, 0.05), (0.3, 0.12)])
def test_every_tile_is_reached_exactly_despite_the_play_once_it_is_calibrated(play: tuple[float, float]) -> None:
    plan = make_plan(Wanted(format="6x7"), StageScale((-60.0, 0.0), (0.0, -60.0), SENSOR, play))
    stage = PlayStage(play)
    moves = route([t.stage_mm for t in plan.tiles], (0.0, 0.0), play, home=(0.0, 0.0))
    landed: dict[int, tuple[float, float]] = {}
    for move in moves:
        stage.move(move.dx_mm, move.dy_mm)
        if move.tile is not None:
            landed[move.tile] = (stage.stage[0], stage.stage[1])
    offsets = np.array([np.subtract(landed[k], t.stage_mm) for k, t in enumerate(plan.tiles)])
    assert np.ptp(offsets, axis=0).max() < 1e-9  # every tile where asked, within one constant offset
    assert sum(1 for m in moves if m.kind == "tile") == len(plan.tiles)
    takeups = [m for m, after in itertools.pairwise(moves) if m.kind == "take-up" and after.kind == "tile"]
    reversals = min(plan.columns, plan.rows) - 1  # the serpentine reverses its lines' axis once per line
    assert len(takeups) == (reversals + 1 if play[0] else 0)  # and the approach's return, once
    assert all(abs(m.dx_mm) in (0.0, play[0]) and abs(m.dy_mm) in (0.0, play[1]) for m in takeups)
    assert moves[0].kind == "approach" and moves[-1].kind == "home"


def test_without_taking_up_the_play_the_reversed_lines_land_off() -> None:
    """The model's play is real: the same tiles, the take-ups left out, land a play apart."""
    plan = make_plan(Wanted(format="6x7"), StageScale((-60.0, 0.0), (0.0, -60.0), SENSOR, (0.2, 0.2)))
    stage = PlayStage((0.2, 0.2))
    landed = {}
    for move in route([t.stage_mm for t in plan.tiles], (0.0, 0.0), (0.2, 0.2)):
        if move.kind == "take-up":
            continue
        stage.move(move.dx_mm, move.dy_mm)
        if move.tile is not None:
            landed[move.tile] = np.subtract(stage.stage, plan.tiles[move.tile].stage_mm)
    spread = np.ptp(np.array(list(landed.values())), axis=0)
    assert spread.max() == pytest.approx(0.2)  # along the lines' axis (Y here: 4 columns of 5)


def test_a_route_from_a_known_slack_needs_no_approach() -> None:
    moves = route([(5.0, 0.0), (0.0, 0.0)], (0.0, 0.0), (0.1, 0.1), Slack(1, 1))
    assert moves == [Move(5.0, 0.0, "tile", 0), Move(-0.1, 0.0, "take-up"), Move(-5.0, 0.0, "tile", 1)]


@pytest.mark.parametrize(
    ("wanted", "said"),
    [
        (Wanted(format="6x10"), "tiles.format '6x10': use one of 645, 6x6"),
        (Wanted(), "tiles: give a format"),
        (Wanted(format="6x7", overlap=0.95), "tiles.overlap 0.95"),
        (Wanted(width_mm=-1, height_mm=5), "must be above 0"),
    ],
)
def test_a_plan_that_cannot_be_made_says_which_setting(wanted: Wanted, said: str) -> None:
    with pytest.raises(PlanError, match=said.replace("(", r"\(")):
        make_plan(wanted, scale())


def test_a_calibration_far_off_is_refused_before_hundreds_of_tiles() -> None:
    with pytest.raises(PlanError, match=r"is the rig's calibration right\?"):
        make_plan(Wanted(format="4x5"), scale(2000.0))
