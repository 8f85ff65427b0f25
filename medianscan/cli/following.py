"""Following a daemon's run from the command line (`scan-roll`, `scan-tiles`): the long request asked on its own
thread while the daemon's status is read every POLL_SECONDS for the run's lines; and the tile run as `status`
and `scan-tiles` print it (a map of the plan, each tile's line)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from medianscan.capture.control_client import request
from medianscan.errors import MedianscanError
from medianscan.vocabulary import Request

POLL_SECONDS = 1.0
TILE_MARKS = {"waiting": ".", "shot": "o", "kept": "o", "failed": "x"}  # any other state: under way (>)
SETTLED = ("shot", "kept", "failed")  # nothing more happens to the tile in this run


def follow(
    path: Path, action: Request, timeout: float | None, tick: Callable[[bool], None], **fields: Any
) -> dict[str, Any]:
    """Ask the daemon for a long `action` (a run) and call `tick` every POLL_SECONDS while its answer is awaited
    (`tick(True)` once more when it came), for the run's lines; the answer."""
    done: dict[str, Any] = {}

    def ask() -> None:
        try:
            done["reply"] = request(path, action, timeout=timeout, **fields)
        except BaseException as exc:  # raised again on the main thread
            done["error"] = exc

    asking = threading.Thread(target=ask, name=action, daemon=True)
    asking.start()
    while asking.is_alive():
        asking.join(POLL_SECONDS)
        tick(not asking.is_alive())
    if "error" in done:
        raise done["error"]
    return dict(done["reply"])


def tile_run_lines(run: Any) -> list[str]:
    """The tile run (under way, or the last one): its negative and progress, its plan, a map of it (a mark a
    tile: . waiting, > under way, o shot or kept, x failed), and each tile's line."""
    if not isinstance(run, dict) or not isinstance(run.get("tiles"), list):
        return []
    tiles = [t for t in run["tiles"] if isinstance(t, dict)]
    head = "tile run" if run.get("under_way") else "last tile run"
    lines = [f"{head} {run.get('negative')}: {run.get('said')}"]
    if run.get("plan"):
        lines.append(f"  plan: {run['plan']}")
    grid = {(t.get("row"), t.get("column")): TILE_MARKS.get(str(t.get("state")), ">") for t in tiles}
    columns, rows = run.get("columns"), run.get("rows")
    if isinstance(columns, int) and isinstance(rows, int):
        lines += ["  " + " ".join(grid.get((r, c), "?") for c in range(columns)) for r in range(rows)]
    return lines + [f"  {t.get('text')}" for t in tiles if t.get("state") != "waiting"]


def _tile_run(path: Path) -> dict[str, Any] | None:
    """The daemon's tile run (under way or the last), or None (none yet, or a daemon that does not say)."""
    try:
        run = (request(path, "status").get("status") or {}).get("tile_run")
    except MedianscanError:
        return None
    return run if isinstance(run, dict) else None


def scan_tiles(path: Path, timeout: float | None, strip: bool | None = None) -> dict[str, Any]:
    """`scan-tiles` through the daemon: its answer, with the plan printed as the run starts (each negative's, on
    a strip) and each tile's line once the run is done with it (shot, kept from before, failed), read from the
    daemon's status while the answer is awaited."""
    before = _tile_run(path)
    last = None if before is None else before.get("started")  # the last run's: its tiles are not this run's
    said: set[str] = set()

    def tick(over: bool) -> None:
        run = _tile_run(path)
        if run is None or run.get("started") == last:
            return
        negative = str(run.get("negative"))
        if run.get("plan") and negative not in said:  # an older daemon's status has no plan: its answer says it
            said.add(negative)
            print(f"{negative}: {run['plan']}", flush=True)
        for tile in run.get("tiles") or []:
            name = tile.get("name") if isinstance(tile, dict) else None
            key = f"{run.get('negative')}/{name}"  # a strip's negatives have tiles of the same names
            if isinstance(name, str) and key not in said and tile.get("state") in SETTLED:
                said.add(key)
                print(f"  {str(run.get('negative')) + ' ' if strip else ''}{tile.get('text')}", flush=True)
        del over  # a tile's line is final once settled: nothing more to print at the end

    return follow(path, "scan-tiles", timeout, tick, **({} if strip is None else {"strip": strip}))
