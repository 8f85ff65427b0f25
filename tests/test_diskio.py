"""Pixel blocks straight to and from the disk: the bytes land where the writer left room, nothing around them
moves, and the read-back hash is the hash of what is stored, on the real filesystem of the test folder."""

from __future__ import annotations

import errno
import hashlib
import mmap
import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import tifffile

from medianscan import diskio
from medianscan.blend.pipeline import blend_stack
from medianscan.blend.verify import output_digest, pixels_sha256, verify_output
from medianscan.errors import StackError
from medianscan.outputs import tiff


def written_as(written: diskio.Written, offset: int, data: bytes) -> bool:
    digest = hashlib.sha256(data).hexdigest()
    return written == diskio.Written(offset, len(data), digest, digest)


def tiff_stack(folder: Path, n: int, shape: tuple[int, ...]) -> Path:
    """n noisy 16-bit RGB TIFFs of one grey scene, named after the folder."""
    folder.mkdir()
    rng = np.random.default_rng(n)
    for i in range(n):
        frame = np.clip(20000 + rng.normal(0, 300, shape), 0, 65535).astype(np.uint16)
        tifffile.imwrite(folder / f"{folder.name}_{i}.tif", frame, photometric="rgb")
    return folder


def laid_out(path: Path, offset: int, room: int) -> tuple[bytes, bytes]:
    """A file with a header before `offset`, `room` zero bytes, and a trailer after (as a TIFF's IFD may be)."""
    head, tail = bytes(range(256)) * (offset // 256) + b"H" * (offset % 256), b"trailing IFD" * 100
    path.write_bytes(head + bytes(room) + tail)
    return head, tail


@pytest.mark.parametrize("offset", [diskio.ALIGN, 3 * diskio.ALIGN, 100])
@pytest.mark.parametrize("count", [5 * diskio.ALIGN, 3 * 1000 * 999, (8 << 20) + 6])  # whole blocks, a tail, > chunk
def test_pixels_land_in_their_room_and_hash_as_stored(tmp_path: Path, offset: int, count: int) -> None:
    path = tmp_path / "out.bin"
    pixels = np.random.default_rng(count).integers(0, 65535, count // 2, dtype=np.uint16)
    head, tail = laid_out(path, offset, pixels.nbytes)
    assert written_as(diskio.write_stream(path, offset, [pixels]), offset, pixels.tobytes())
    stored = path.read_bytes()
    assert stored == head + pixels.tobytes() + tail
    assert diskio.sha256_at(path, offset, pixels.nbytes) == hashlib.sha256(pixels.tobytes()).hexdigest()


def test_strided_pixels_are_written_in_c_order(tmp_path: Path) -> None:
    path = tmp_path / "out.bin"
    image = np.arange(64 * 50 * 3, dtype=np.uint16).reshape(64, 50, 3)[:, ::2]
    laid_out(path, diskio.ALIGN, image.nbytes)
    diskio.write_stream(path, diskio.ALIGN, [image])
    assert path.read_bytes()[diskio.ALIGN : diskio.ALIGN + image.nbytes] == np.ascontiguousarray(image).tobytes()


def test_without_direct_io_the_same_bytes_go_through_the_page_cache(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Every filesystem on this machine (even tmpfs) accepts O_DIRECT, so a filesystem that refuses it is
    # simulated by taking the flag away: the fallback must give the same file and the same hash.
    path = tmp_path / "out.bin"
    pixels = np.arange(3 * diskio.ALIGN + 10, dtype=np.uint8)
    head, tail = laid_out(path, diskio.ALIGN, pixels.nbytes)
    monkeypatch.setattr(diskio, "_O_DIRECT", 0)
    assert written_as(diskio.write_stream(path, diskio.ALIGN, [pixels]), diskio.ALIGN, pixels.tobytes())
    assert path.read_bytes() == head + pixels.tobytes() + tail
    assert diskio.sha256_at(path, diskio.ALIGN, pixels.nbytes) == hashlib.sha256(pixels.tobytes()).hexdigest()


@pytest.mark.parametrize("offset", [diskio.ALIGN, 100])
def test_bands_produced_as_they_are_written_land_one_after_another(tmp_path: Path, offset: int) -> None:
    """Bands of odd sizes (a blend's rows) straddle the transfer buffers and the aligned blocks; the producer
    reuses one buffer for every band, as a blend does."""
    path = tmp_path / "out.bin"
    rng = np.random.default_rng(5)
    sizes = (36000, 5_000_001, 7, 4096, 9_000_000, 123, 17 << 20)
    bands = [rng.integers(0, 255, size, dtype=np.uint8) for size in sizes]
    whole = b"".join(band.tobytes() for band in bands)
    head, tail = laid_out(path, offset, len(whole))
    reused = np.empty(max(sizes), np.uint8)

    def produce() -> Iterator[np.ndarray]:
        for band in bands:
            part = reused[: len(band)]
            part[:] = band
            yield part

    assert written_as(diskio.write_stream(path, offset, produce()), offset, whole)
    assert path.read_bytes() == head + whole + tail


def test_a_disk_that_stores_other_bytes_fails_the_blend_and_leaves_no_output(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A device that stores something else than it was given cannot be made on demand: the direct write is
    # wrapped to flip a byte on its way down. The read-back from the disk must catch it.
    folder = tiff_stack(tmp_path / "neg", 3, (200, 300, 3))
    real_pwrite = os.pwrite

    def flaky_pwrite(fd: int, data: memoryview, position: int) -> int:
        damaged = mmap.mmap(-1, len(data))  # page-aligned, as direct I/O needs
        damaged[:] = data
        damaged[len(data) // 2] ^= 0x10
        return real_pwrite(fd, damaged, position)

    monkeypatch.setattr(os, "pwrite", flaky_pwrite)
    with pytest.raises(StackError, match=r"neg_median\.tif: the written file reads back different pixels"):
        blend_stack(folder)
    assert sorted(p.name for p in folder.iterdir()) == ["neg_0.tif", "neg_1.tif", "neg_2.tif"]


def test_a_whole_image_tiff_that_reads_back_different_is_removed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # As above, a device storing other bytes is simulated by damaging the direct write on its way down.
    real_pwrite = os.pwrite

    def flaky_pwrite(fd: int, data: memoryview, position: int) -> int:
        damaged = mmap.mmap(-1, len(data))
        damaged[:] = data
        damaged[0] ^= 0x01
        return real_pwrite(fd, damaged, position)

    monkeypatch.setattr(os, "pwrite", flaky_pwrite)
    out = tmp_path / "linear.tif"
    with pytest.raises(OSError, match=r"linear\.tif reads back different pixels; it was removed"):
        tiff.write_tiff(out, np.zeros((300, 400, 3), np.uint16))
    assert list(tmp_path.iterdir()) == []


def test_a_full_disk_is_a_clear_error_and_leaves_only_the_frames(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A disk cannot be filled on demand here: the direct write is made to fail as a full one does.
    folder = tiff_stack(tmp_path / "neg", 3, (200, 300, 3))
    before = {p.name: p.read_bytes() for p in folder.iterdir()}

    def full(fd: int, data: memoryview, position: int) -> int:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "pwrite", full)
    with pytest.raises(StackError, match=r"neg_median\.tif: cannot write the blend \(No space left on device\)"):
        blend_stack(folder)
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == before


def test_a_file_shorter_than_the_block_read_is_an_error_naming_it(tmp_path: Path) -> None:
    path = tmp_path / "short.bin"
    path.write_bytes(bytes(diskio.ALIGN + 10))
    with pytest.raises(OSError, match=r"short\.bin: ends 90 bytes early"):
        diskio.sha256_at(path, diskio.ALIGN, 100)


def test_tiff_output_reads_back_in_every_reader_and_hashes_from_disk(tmp_path: Path) -> None:
    image = np.random.default_rng(1).integers(0, 65535, (301, 407, 3), dtype=np.uint16)
    out = tmp_path / "blend.tif"
    tiff.write_tiff(out, image, description="medianscan median of a stack")
    with tifffile.TiffFile(out) as tif:
        assert tif.pages.first.dataoffsets[0] % diskio.ALIGN == 0
        np.testing.assert_array_equal(tif.asarray(), image)
        assert tif.pages.first.description == "medianscan median of a stack"
    assert tiff.stored_pixels_sha256(out) == pixels_sha256(image) == output_digest(out)
    assert not list(tmp_path.glob(".*.part"))


def test_tiffs_stored_otherwise_are_decoded_for_their_digest(tmp_path: Path) -> None:
    image = np.random.default_rng(2).integers(0, 65535, (64, 80), dtype=np.uint16)
    packed, big_endian = tmp_path / "packed.tif", tmp_path / "motorola.tif"
    tiff.write_tiff(packed, image, compress=True)
    tifffile.imwrite(big_endian, image, byteorder=">")
    for path in (packed, big_endian):
        assert tiff.stored_pixels_sha256(path) is None
        assert output_digest(path) == pixels_sha256(image)


def test_a_blended_tiff_changed_on_disk_fails_verification(tmp_path: Path) -> None:
    folder = tiff_stack(tmp_path / "neg", 5, (120, 160, 3))
    result = blend_stack(folder)
    verify_output(result)
    with tifffile.TiffFile(result.output) as tif:
        offset = tif.pages.first.dataoffsets[0]
    with result.output.open("r+b") as fh:  # one pixel of the stored block, flipped behind the writer's back
        fh.seek(offset + 1234)
        byte = fh.read(1)
        fh.seek(offset + 1234)
        fh.write(bytes([byte[0] ^ 1]))
    with pytest.raises(StackError, match="its pixels differ from what was blended"):
        verify_output(result)
