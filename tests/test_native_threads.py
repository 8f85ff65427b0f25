"""Native libraries under threads: Exiv2 reads XMP-bearing files from several threads at once without a crash or a
hang, in every fresh process (issue 27).

Exiv2 started its XMP toolkit lazily, on the first packet it decoded; two frame readers meeting a packet at once
entered that start together and the process segfaulted or hung. The race is at start-up, once per process, so the
test needs many fresh processes: two fresh interpreters import the reader (as `medianscan blend` and a blend worker
do) and each forks hundreds of children, one fresh Exiv2 apiece (forking after the imports is what makes a trial
cheap: a process's Exiv2 state is what its imports left, here as in a spawned worker). Each child reads the
metadata of every file from several threads released together, checking what it reads; a child killed by a
signal, exiting non-zero, or not done in time (a hang) is a failure. The files are our own DNGs with the film's
XMP, and TIFF-structured files whose XMP packets the test builds (vendor namespaces Exiv2 does not know, as a
GoPro's DNG has).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import tifffile

from medianscan.metadata import CameraInfo, Exposure, MosaicLayout
from medianscan.outputs.dng import write_dng
from medianscan.outputs.xmp import RollPlace, film_packet
from medianscan.records import FilmRecord

ROOT = Path(__file__).resolve().parent.parent
FORKERS = 2  # fresh interpreters, one per core
CHILDREN = 600  # fresh processes forked by each (before the fix, about 1 in 200 crashed or hung here)
THREADS = 4
HANG_SECONDS = 5.0  # a child reads a few small files in milliseconds; one at 100 % CPU this long has hung

CHILD = textwrap.dedent(
    """
    import json, os, signal, sys, threading, time
    from pathlib import Path
    from medianscan.blend.reading.frames import read_metadata
    from medianscan.outputs.xmp import read_back

    children, threads, hang = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3])
    wanted = json.loads(sys.argv[4])  # path -> the film packet it carries (or None)
    files = sorted(wanted)

    def read_all() -> None:
        release = threading.Barrier(threads)
        failed = []

        def reader(first: int) -> None:
            release.wait()
            for path in (files + files)[first : first + 2]:  # each starts on another file; all files read
                try:
                    meta = read_metadata(Path(path))
                    if wanted[path] is not None:
                        read_back(Path(path), wanted[path].encode())  # the film's XMP, read whole
                        assert meta.camera.make == "Canon"
                except Exception as exc:
                    failed.append(f"{path}: {exc!r}")

        readers = [threading.Thread(target=reader, args=(i % len(files),)) for i in range(threads)]
        for t in readers:
            t.start()
        for t in readers:
            t.join()
        os._exit(1 if failed else 0)

    outcomes: dict[str, int] = {}
    for _ in range(children):
        pid = os.fork()
        if pid == 0:
            try:
                read_all()
            finally:
                os._exit(2)
        deadline = time.monotonic() + hang
        while (done := os.waitpid(pid, os.WNOHANG))[0] == 0:
            if time.monotonic() > deadline:
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
                done = (pid, -1)
                break
            time.sleep(0.001)
        code = done[1]
        key = "hang" if code == -1 else (
            signal.Signals(-os.waitstatus_to_exitcode(code)).name if os.WIFSIGNALED(code)
            else f"exit {os.waitstatus_to_exitcode(code)}"
        )
        outcomes[key] = outcomes.get(key, 0) + 1
        if key != "exit 0":
            break  # one is enough to fail; the rest would only cost time
    print(json.dumps(outcomes))
    """
)


def _layout(height: int, width: int) -> MosaicLayout:
    return MosaicLayout(
        pattern=np.array([[0, 1], [1, 2]], dtype=np.uint8),
        colors="RGB",
        black_levels=(256, 256, 256),
        white_level=16383,
        active_area=(0, 0, height, width),
        default_crop=(0, 0, width, height),
        color_matrix=np.eye(3),
        as_shot_neutral=(0.5, 1.0, 0.6),
    )


def _vendor_packet(n: int) -> bytes:
    """An XMP packet of namespaces Exiv2 does not know (decoding registers them), as a GoPro's DNG carries."""
    return (
        '<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
        f'<rdf:Description rdf:about="" xmlns:v{n}="http://example.org/vendor{n}/1.0/" '
        'xmlns:xmp="http://ns.adobe.com/xap/1.0/" xmlns:crs="http://ns.adobe.com/camera-raw-settings/1.0/" '
        f'v{n}:Model="HERO{n}" xmp:Rating="3" crs:Exposure2012="+0.50"/></rdf:RDF></x:xmpmeta>'
    ).encode()


def xmp_bearing_files(folder: Path) -> dict[str, str | None]:
    """Our own DNGs with the film's XMP (path -> its packet), and TIFF-structured files with a vendor's packet."""
    rng = np.random.default_rng(0)
    files: dict[str, str | None] = {}
    for i in range(2):
        film = FilmRecord(film=f"HP5 Plus {i}", film_maker="Ilford", developer="ID-11", notes="pushed one stop")
        packet = film_packet(film, RollPlace("roll-1", i + 1))
        path = folder / f"negative-{i}.dng"
        mosaic = rng.integers(256, 16000, (64, 96), dtype=np.uint16)
        write_dng(path, mosaic, _layout(64, 96), CameraInfo(make="Canon", model="EOS 30D"), Exposure(iso=400.0),
                  xmp=packet, preview=False)  # fmt: skip
        files[str(path)] = packet.decode()
    for n in range(2):
        path = folder / f"vendor-{n}.tif"
        packet = _vendor_packet(n)
        tifffile.imwrite(path, np.zeros((16, 16), np.uint16), extratags=[(700, "B", len(packet), packet, True)])
        files[str(path)] = None
    return files


@pytest.mark.slow
def test_many_fresh_processes_read_xmp_from_several_threads_without_a_crash_or_a_hang(tmp_path: Path) -> None:
    files = xmp_bearing_files(tmp_path)
    script = tmp_path / "child.py"
    script.write_text(CHILD)
    args = [sys.executable, str(script), str(CHILDREN), str(THREADS), str(HANG_SECONDS), json.dumps(files)]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    forkers = [subprocess.Popen(args, cwd=ROOT, env=env, stdout=subprocess.PIPE, text=True) for _ in range(FORKERS)]
    outcomes: dict[str, int] = {}
    for forker in forkers:
        out, _ = forker.communicate(timeout=120)
        assert forker.returncode == 0, f"a forking process itself failed ({forker.returncode})"
        for key, count in json.loads(out).items():
            outcomes[key] = outcomes.get(key, 0) + count
    assert outcomes == {"exit 0": FORKERS * CHILDREN}, f"children's outcomes: {outcomes}"
