"""`medianscan demo`: the daemon on the simulated camera, pressed automatically, then a summary.

The same Daemon as `medianscan run` (camera thread, spawned blend workers, manifests), with the simulated
camera and an automatic trigger: press, wait for the burst, press again, as an operator would.
"""

from __future__ import annotations

import argparse
import dataclasses
import shutil
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from medianscan.blend.kernels.kernel_build import built, needs
from medianscan.config.listen import parse_listen
from medianscan.config.schema import Config
from medianscan.errors import MedianscanError
from medianscan.service.capture import Daemon
from medianscan.service.progress import BlendDone, BurstDone, Progress, ServiceError
from medianscan.wording import counted


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser(
        "demo",
        help="scan a few simulated negatives through the whole daemon and show what the blend gained",
        description=(
            "Runs the daemon on the simulated camera with an automatic trigger, waits for the blends, then "
            "prints frames, capture and blend times, and the noise of each blend against a single frame."
        ),
    )
    parser.add_argument("--negatives", type=int, default=3, metavar="N", help="negatives to scan (3)")
    parser.add_argument("--frames", type=int, default=9, metavar="N", help="frames per burst (9)")
    parser.add_argument(
        "--library",
        type=Path,
        default=Path("medianscan-demo"),
        metavar="DIR",
        help="library folder (./medianscan-demo)",
    )
    parser.add_argument("--no-keep", action="store_true", help="scan into a temporary folder and remove it after")
    parser.add_argument(
        "--console",
        action="store_true",
        help="serve the operator console meanwhile and leave it up after the scan, until Ctrl-C",
    )
    parser.add_argument(
        "--listen", default="127.0.0.1:8631", metavar="HOST:PORT", help="where the console listens (127.0.0.1:8631)"
    )
    parser.add_argument("--timeout", type=float, default=300.0, help=argparse.SUPPRESS)
    parser.set_defaults(handler=run)


@dataclasses.dataclass
class Negative:
    stack: Path
    frames: int = 0
    capture_seconds: float | None = None
    blend_seconds: float | None = None
    noise_ratio: float | None = None
    output: Path | None = None
    error: str | None = None


class AutoTrigger:
    """Presses capture, waits for the burst to be done, presses again; then waits for every blend. It times the
    scan from its first press to its last blend (the console may stay up long after)."""

    def __init__(self, daemon: Any, count: int, timeout: float, say: Any = print, *, stay: bool = False) -> None:
        self.daemon = daemon
        self.stay = stay  # leave the daemon running after the scan (the console stays up)
        self.say = say  # progress, a line per burst and per blend
        self.count = count
        self.timeout = timeout
        self.negatives: dict[Path, Negative] = {}
        self.order: list[Path] = []
        self.failure: str | None = None
        self._cond = threading.Condition()
        self._bursts = 0
        self._errors = 0
        self.started: float | None = None
        self.finished: float | None = None
        daemon.listeners.append(self.on_event)

    def on_event(self, news: Progress) -> None:
        with self._cond:
            if isinstance(news, BurstDone):
                stack = news.stack
                self.order.append(stack)
                self.negatives[stack] = Negative(stack, news.frames, news.seconds)
                self._bursts += 1
                self.say(f"  {stack.name}: {news.frames} frames captured in {news.seconds:.1f} s, blending")
            elif isinstance(news, BlendDone) and news.stack in self.negatives:
                neg = self.negatives[news.stack]
                neg.blend_seconds = news.seconds
                neg.noise_ratio, neg.output = news.result.noise_ratio, news.result.output
                gain = f", {neg.noise_ratio:.2f}x the noise of one frame" if neg.noise_ratio else ""
                self.say(f"  {news.stack.name}: blended in {news.seconds:.1f} s -> {neg.output.name}{gain}")
            elif isinstance(news, ServiceError):
                if news.stack in self.negatives:
                    self.negatives[news.stack].error = news.message
                else:
                    self._errors += 1
                    self.failure = news.message
            self._cond.notify_all()

    def _done(self, neg: Negative) -> bool:
        return neg.output is not None or neg.error is not None

    def run(self) -> None:
        deadline = time.monotonic() + self.timeout
        self.started = time.monotonic()
        try:
            for i in range(self.count):
                self.daemon.request("capture")
                with self._cond:
                    ok = self._cond.wait_for(
                        lambda: self._bursts > i or self._errors > 0,  # noqa: B023 - called within this iteration
                        max(0.0, deadline - time.monotonic()),
                    )
                if not ok or self._errors:
                    self.failure = self.failure or f"negative {i + 1} was not captured in time"
                    return
            with self._cond:
                if not self._cond.wait_for(
                    lambda: all(self._done(n) for n in self.negatives.values()), max(0.0, deadline - time.monotonic())
                ):
                    self.failure = "the blends did not finish in time"
                self.finished = time.monotonic()
        finally:
            if not self.stay or self.failure:
                self.daemon.stop()
            else:
                console = self.daemon.console
                self.say(f"\nThe console stays up at {console.url if console else '?'}: Ctrl-C stops the demo.")


def run(args: argparse.Namespace) -> int:
    if args.negatives < 1 or args.frames < 3:
        raise MedianscanError("the demo needs at least 1 negative and 3 frames per burst")
    temporary = args.no_keep
    library = Path(tempfile.mkdtemp(prefix="medianscan-demo-")) if temporary else args.library.expanduser().absolute()
    cfg = Config()
    cfg.library = library
    cfg.frames = args.frames
    cfg.camera.backend = "simulated"
    cfg.queue_size = max(cfg.queue_size, args.negatives)
    cfg.console.listen = args.listen if args.console else None
    if args.console:
        try:
            where = parse_listen(args.listen)
        except ValueError as exc:
            raise MedianscanError(f"--listen {exc}") from None
        if not where.loopback:
            raise MedianscanError(
                f"--listen {args.listen}: the demo serves its console on loopback only (it has no token); "
                "from another machine use an SSH tunnel: ssh -L 8631:127.0.0.1:8631 THIS-HOST"
            )
    daemon = Daemon(cfg, triggers=args.console)  # the console is one of the daemon's trigger sources
    trigger = AutoTrigger(
        daemon, args.negatives, args.timeout, say=lambda line: print(line, flush=True), stay=args.console
    )
    negatives = counted(args.negatives, "simulated negative")
    print(f"medianscan demo: {negatives} x {args.frames} frames into {library}", flush=True)
    if not built(needs(cfg.blend, args.frames)):  # `medianscan kernels` (make demo runs it) has not built them
        print("  (the first run compiles the blend kernels: a few seconds more)", flush=True)
    if args.console:
        print(f"  the console: {parse_listen(args.listen).url()} (open it in a browser)", flush=True)
    feeder = threading.Thread(target=trigger.run, name="demo-trigger", daemon=True)
    feeder.start()
    code = daemon.run()
    feeder.join()
    scanned = (trigger.finished or time.monotonic()) - (trigger.started or time.monotonic())
    print(summary([trigger.negatives[s] for s in trigger.order], scanned))
    if not temporary:
        print(f"\nFiles: {library} (each negative's folder holds its raws, the blend, its sidecar and stack.json)")
        first = next((n.output for n in trigger.negatives.values() if n.output is not None), None)
        if first is not None:
            print(f"Open a blend like any camera raw: darktable {first}  (or rawtherapee, or Lightroom's import)")
    else:
        shutil.rmtree(library, ignore_errors=True)
        print("\n(temporary library removed; without --no-keep the files stay in ./medianscan-demo)")
    if trigger.failure:
        raise MedianscanError(f"demo stopped early: {trigger.failure}")
    failed = [n for n in trigger.negatives.values() if n.error]
    return code or (1 if failed else 0)


def _not_blended(stack: Path) -> str:
    return "retaken: set aside in discarded/" if not stack.exists() else "not blended"


def summary(negatives: list[Negative], total: float) -> str:
    """The table the demo prints: per negative frames, times, noise against one frame, the output."""
    lines = [
        "",
        f"{'negative':<12}{'frames':>7}{'capture':>10}{'blend':>9}{'noise vs 1 frame':>19}  output",
    ]
    for neg in negatives:
        cap = f"{neg.capture_seconds:.2f} s" if neg.capture_seconds is not None else "-"
        blend = f"{neg.blend_seconds:.2f} s" if neg.blend_seconds is not None else "-"
        noise = f"{neg.noise_ratio:.2f}x ({1 / neg.noise_ratio:.1f}x less)" if neg.noise_ratio else "-"
        out = neg.output.name if neg.output else f"FAILED: {neg.error}" if neg.error else _not_blended(neg.stack)
        lines.append(f"{neg.stack.name:<12}{neg.frames:>7}{cap:>10}{blend:>9}{noise:>19}  {out}")
    ratios = [n.noise_ratio for n in negatives if n.noise_ratio]
    if ratios:
        frames = negatives[0].frames
        lines.append(
            f"\nA median of {frames} frames keeps {sum(ratios) / len(ratios):.2f} of a single frame's noise "
            f"(theory for Gaussian noise: {(3.14159265 / 2) ** 0.5 / frames**0.5:.2f}); "
            "the mean would keep less but not reject dust."
        )
    lines.append(f"Scanned {len(negatives)} negatives in {total:.1f} s, blending while the next burst ran.")
    return "\n".join(lines)
