"""Turns a user's own illustration collection into the tf_gadn TFRecord data set (GADN §4 "Dataset"; style-space
paper §5.1): face crops (or centre crops), artists with at least 50 images, optional held-out split.

Input is a folder with one sub-folder per artist, or a CSV/TSV listing of `path,artist`. Every file is read once;
unreadable, truncated, non-image and oversized (decompression-bomb) files are skipped and counted with their reason,
never crash the run. Only regular files are opened (never a FIFO or device), each real file and folder is listed once
however many links reach it, folders that cannot be listed are reported, and files with the same bytes are kept once
(the first in listing order) before the split, so no image is in both splits or under two artists. Names that are not
UTF-8 are opened by their real bytes and written to the records and JSON files with `\\xNN` escapes (`printable`).
Because the 50-image rule counts what survives (faces, with --detect_faces), crops are first staged inside the
temporary output directory and only then given artist ids (0..N-1 by sorted name) and a split.
Sources are processed in a seeded random order so the shards come out shuffled across artists (the input pipeline
shuffles with a bounded buffer). The output appears atomically (records.atomic_output_dir), with report.json.

    python -m tf_gadn.data.prepare --input_dir=my_art --output_dir=data/my_art --detect_faces --test_split
"""

from __future__ import annotations

import collections
import contextlib
import csv
import dataclasses
import functools
import hashlib
import io
import multiprocessing
import os
import stat
import sys
import time
import warnings
from collections.abc import Collection, Iterable, Sequence

import numpy as np
from PIL import ExifTags, Image

from tf_gadn.data import faces

# tensorflow (through records) is imported inside `prepare` only: the per-file work is pure PIL/numpy, and spawned
# workers import only this module and `faces` (the `tf_gadn.data` package loads its pipeline lazily).

IMAGE_EXTENSIONS = frozenset({".png", ".jpg", ".jpeg", ".webp", ".gif", ".bmp", ".tif", ".tiff"})
REPORT_FILE = "report.json"
DEFAULT_MAX_PIXELS = (
    40_000_000  # 40 MP: larger than any real illustration scan, far below a decompression bomb
)
_STAGING_FILE = "staging.tfrecord"
_HEADER = ("path", "artist")
_ORIENTATION_FIX = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}

# Skip reasons (the report's vocabulary).
MISSING = "missing"
UNREADABLE = "unreadable"
NOT_AN_IMAGE = "not an image"
CORRUPT = "corrupt or truncated"
TOO_LARGE = "too large"
NO_FACE = "no face found"
NOT_IMAGE_EXTENSION = "not an image file extension"
OUTSIDE_ARTIST_FOLDER = "outside artist folders"
DUPLICATE = "listed twice"
FAILED = "failed to process"
NOT_REGULAR = "not a regular file"
UNREADABLE_FOLDER = "unreadable folder"
LINKED_TWICE = "same file or folder reached twice"
SAME_CONTENT = "same content as another file"
SAME_CONTENT_OTHER_ARTIST = "same content as another artist's file"


@dataclasses.dataclass(frozen=True)
class Source:
    path: str
    artist: str


class SkippedImage(Exception):
    """A file that contributes nothing, with the reason the report counts it under."""

    def __init__(self, reason: str, detail: str = ""):
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason, self.detail = reason, detail


# ---- listing ----------------------------------------------------------------------------------------------------
def list_folder(input_dir: str) -> tuple[list[Source], list[dict]]:
    """Regular image files under <input_dir>/<artist>/ (any depth), and the entries it ignored with the reason.

    Hidden files and folders (.DS_Store, .git) are left out silently; everything else left out is reported: other
    file types, FIFOs/sockets/devices (opening one could block forever), folders that cannot be listed (also
    warned about on stderr, as an artist could otherwise vanish unnoticed), and a second path to a folder or file
    already reached (symbolic links are followed, but each real folder and file is listed once: a link to the input
    folder or to another artist must not count images twice or under two names). Artist folders that are real
    folders claim their contents before linked ones. Names are kept as the OS gives them (undecodable bytes as
    surrogate escapes, so they can still be opened); the artist name is `printable`.
    """
    if not os.path.isdir(input_dir):
        raise NotADirectoryError(f"--input_dir {input_dir!r} is not a directory")
    ignored = []
    claimed = {
        _file_id(os.stat(input_dir)): input_dir
    }  # real folder -> the path it was first reached by
    artist_dirs = []
    for entry in sorted(os.scandir(input_dir), key=lambda e: (e.is_symlink(), e.name)):
        if entry.name.startswith("."):
            continue
        try:
            info = os.stat(entry.path)
        except OSError as e:
            ignored.append(_skip_entry(entry.path, "", _stat_failure(e), e.strerror))
            continue
        if not stat.S_ISDIR(info.st_mode):
            ignored.append(_skip_entry(entry.path, "", OUTSIDE_ARTIST_FOLDER))
        elif _file_id(info) in claimed:  # an alias, not an artist of its own
            ignored.append(
                _skip_entry(
                    entry.path, "", LINKED_TWICE, f"same folder as {claimed[_file_id(info)]}"
                )
            )
        else:
            claimed[_file_id(info)] = entry.path
            artist_dirs.append(entry)
    sources, files_seen = [], {}
    for entry in sorted(artist_dirs, key=lambda e: e.name):
        _list_artist(entry.path, printable(entry.name), claimed, files_seen, sources, ignored)
    return sources, ignored


def _list_artist(
    top: str, artist: str, claimed: dict, files_seen: dict, sources: list, ignored: list
) -> None:
    """Appends the regular image files under `top` to `sources` (each folder's files, sorted, before its sub-folders,
    as os.walk lists them) and what it leaves out to `ignored`; `claimed` and `files_seen` map real folders and
    files (device, inode) to the first path that reached them."""
    stack = [top]
    while stack:
        folder = stack.pop()
        try:
            entries = sorted(os.scandir(folder), key=lambda e: e.name)
        except OSError as e:
            ignored.append(_skip_entry(folder, artist, UNREADABLE_FOLDER, e.strerror))
            print(
                f"warning: skipping {printable(folder)} (artist {artist}): {e.strerror}",
                file=sys.stderr,
            )
            continue
        subfolders = []
        for entry in entries:
            if entry.name.startswith("."):
                continue
            try:
                info = os.stat(entry.path)  # follows links: a broken one is missing
            except OSError as e:
                ignored.append(_skip_entry(entry.path, artist, _stat_failure(e), e.strerror))
                continue
            key, is_folder = _file_id(info), stat.S_ISDIR(info.st_mode)
            first = claimed if is_folder else files_seen
            if key in first:
                ignored.append(
                    _skip_entry(entry.path, artist, LINKED_TWICE, f"same as {first[key]}")
                )
            elif is_folder:
                claimed[key] = entry.path
                subfolders.append(entry.path)
            elif os.path.splitext(entry.name)[1].lower() not in IMAGE_EXTENSIONS:
                ignored.append(_skip_entry(entry.path, artist, NOT_IMAGE_EXTENSION))
            elif not stat.S_ISREG(info.st_mode):
                ignored.append(
                    _skip_entry(entry.path, artist, NOT_REGULAR, _file_kind(info.st_mode))
                )
            else:
                files_seen[key] = entry.path
                sources.append(Source(entry.path, artist))
        stack.extend(reversed(subfolders))


def read_listing(listing_path: str) -> list[Source]:
    """`path,artist` rows from a CSV, or a TSV when the first line contains a tab.

    A first row reading `path,artist` is a header and skipped; relative paths resolve against the listing's folder;
    blank lines are ignored; any other row without exactly a non-empty path and artist is an error (with its line).
    Bytes that are not UTF-8 are kept as surrogate escapes, so a listed path opens the file the OS names with those
    bytes; the artist name is `printable`.
    """
    with open(listing_path, newline="", encoding="utf-8-sig", errors="surrogateescape") as f:
        text = f.read()
    first_line = text.split("\n", 1)[0]
    delimiter = "\t" if "\t" in first_line else ","
    base = os.path.dirname(os.path.abspath(listing_path))
    sources = []
    for line, row in enumerate(csv.reader(io.StringIO(text), delimiter=delimiter), start=1):
        cells = [cell.strip() for cell in row]
        if not any(cells):
            continue
        if line == 1 and tuple(c.lower() for c in cells) == _HEADER:
            continue
        if len(cells) != 2 or not all(cells):
            raise ValueError(
                f"{listing_path}:{line}: expected 'path{delimiter}artist', got {row!r}"
            )
        path = os.path.expanduser(cells[0])
        sources.append(Source(os.path.normpath(os.path.join(base, path)), printable(cells[1])))
    if not sources:
        raise ValueError(f"{listing_path!r} lists no images")
    return sources


def drop_duplicates(sources: Sequence[Source]) -> tuple[list[Source], list[dict]]:
    """The first listing of each path; later ones are reported (a file counted twice, or under two artists, would
    bias p(a) and could put the same image in both splits)."""
    seen, unique, repeated = set(), [], []
    for source in sources:
        if source.path in seen:
            repeated.append(_skip_entry(source.path, source.artist, DUPLICATE))
        else:
            seen.add(source.path)
            unique.append(source)
    return unique, repeated


# ---- one file ---------------------------------------------------------------------------------------------------
def load_image(path: str, max_pixels: int = DEFAULT_MAX_PIXELS) -> Image.Image:
    """The decoded RGB image (EXIF orientation applied, transparency over white, any bit depth scaled to 8 bits);
    SkippedImage if it is not usable."""
    return read_image(path, max_pixels)[0]


def read_image(path: str, max_pixels: int = DEFAULT_MAX_PIXELS) -> tuple[Image.Image, str]:
    """load_image's image, and the SHA-256 of the file's bytes (read from the same open file, after decoding).

    Only a regular file is opened: a FIFO or device named like an image could block the run forever or have side
    effects. The pixel count is checked from the header before decoding, so a decompression bomb is never expanded.
    """
    try:
        info = os.stat(path)
        if not stat.S_ISREG(info.st_mode):
            raise SkippedImage(NOT_REGULAR, _file_kind(info.st_mode))
        f = open(path, "rb")
    except FileNotFoundError as e:
        raise SkippedImage(MISSING, str(e)) from None
    except OSError as e:  # permissions, an I/O error
        raise SkippedImage(UNREADABLE, str(e)) from None
    with f, warnings.catch_warnings():
        # Pillow's own bomb guard warns before it refuses; both mean "too large" here.
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            with Image.open(f) as image:
                width, height = image.size
                if width * height > max_pixels:
                    raise SkippedImage(
                        TOO_LARGE, f"{width}x{height} pixels > max_pixels={max_pixels}"
                    )
                image.load()
                orientation = image.getexif().get(ExifTags.Base.Orientation, 1)
                if orientation in _ORIENTATION_FIX:
                    image = image.transpose(_ORIENTATION_FIX[orientation])
                rgb = _to_rgb(image)
            f.seek(0)
            return rgb, hashlib.file_digest(f, "sha256").hexdigest()
        except (Image.DecompressionBombError, Image.DecompressionBombWarning) as e:
            raise SkippedImage(TOO_LARGE, str(e)) from None
        except Image.UnidentifiedImageError:
            raise SkippedImage(NOT_AN_IMAGE, "no image format Pillow can read") from None
        # Pillow reports damaged data as OSError ("image file is truncated", "broken data stream"), and some
        # malformed headers or streams as SyntaxError or EOFError.
        except (OSError, SyntaxError, EOFError) as e:
            raise SkippedImage(CORRUPT, str(e)) from None


def _to_rgb(image: Image.Image) -> Image.Image:
    """8-bit RGB. Transparent pixels become white (illustrations on a transparent canvas are meant to be seen on
    paper). Pillow's own conversion clips 16- and 32-bit integer pixels at 255 and float ones at 0..255, so these are
    scaled first: 16-bit (I;16*) and 32-bit integer (I, as 16-bit files decode) from 0..65535, float (F) from 0..1."""
    if image.mode.startswith("I") or image.mode == "F":
        image = _grey_to_8_bits(image)
    if image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info:
        rgba = image.convert("RGBA")
        paper = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(paper, rgba).convert("RGB")
    return image.convert("RGB")


def _grey_to_8_bits(image: Image.Image) -> Image.Image:
    """An I;16*, I or F image as L (LA when a transparent grey value is set), full range to full range."""
    values = np.asarray(image).astype(np.float64)
    grey = Image.fromarray(
        np.clip(np.rint(values * (255.0 if image.mode == "F" else 255.0 / 65535.0)), 0, 255).astype(
            np.uint8
        )
    )
    if "transparency" not in image.info:
        return grey
    alpha = Image.fromarray(np.where(values == image.info["transparency"], 0, 255).astype(np.uint8))
    return Image.merge("LA", (grey, alpha))


def encode_png(image: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="PNG")
    return buffer.getvalue()


def crops_of(
    path: str,
    image_size: int,
    detect_faces: bool,
    face_margin: float = 0.0,
    max_pixels: int = DEFAULT_MAX_PIXELS,
) -> tuple[list[bytes], str]:
    """PNG bytes of the training crops of one file (one per detected face, or the centre crop), and the file's
    SHA-256."""
    image, digest = read_image(path, max_pixels)
    if not detect_faces:
        return [encode_png(faces.center_crop(image, image_size))], digest
    return [
        encode_png(crop) for crop in faces.detect_and_crop(image, image_size, face_margin)
    ], digest


def _process_file(
    path: str, *, image_size: int, detect_faces: bool, face_margin: float, max_pixels: int
) -> tuple[list[bytes], str, str, str]:
    """Worker entry: (crops, SHA-256, skip reason, detail); a top-level function so worker processes can run it."""
    try:
        return *crops_of(path, image_size, detect_faces, face_margin, max_pixels), "", ""
    except SkippedImage as e:
        return [], "", e.reason, e.detail
    # A decoder or EXIF parser can fail on damaged input in ways no list foresees (struct.error, ValueError, ...):
    # one file must never end a run over thousands, so the failure is counted and reported with its type.
    except Exception as e:  # noqa: BLE001
        return [], "", FAILED, f"{type(e).__name__}: {e}"


# ---- the data set -----------------------------------------------------------------------------------------------
def prepare(
    output_dir: str,
    input_dir: str | None = None,
    input_csv: str | None = None,
    *,
    image_size: int = 256,
    min_images: int = 50,
    test_split: bool = False,
    seed: int = 1,
    num_shards: int = 8,
    detect_faces: bool = False,
    face_margin: float = 0.0,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    overwrite: bool = False,
    num_workers: int = 1,
    progress: bool = False,
) -> dict:
    """Writes the data set to `output_dir` atomically and returns the report (also saved as report.json)."""
    import tensorflow as tf

    from tf_gadn.data import records, synthetic

    if (input_dir is None) == (input_csv is None):
        raise ValueError("give exactly one of --input_dir and --input_csv")
    if image_size < 1 or num_shards < 1 or num_workers < 1 or max_pixels < 1:
        raise ValueError("image_size, num_shards, num_workers and max_pixels must be >= 1")
    if min_images < 1:
        raise ValueError(f"min_images must be >= 1, got {min_images}")
    if test_split and min_images <= synthetic.test_count(min_images):
        raise ValueError(
            f"--test_split holds out max(10%, 10) images per artist; --min_images={min_images} would "
            "leave an artist without training images (use at least 11)"
        )
    source_root = (
        input_dir if input_dir is not None else os.path.dirname(os.path.abspath(input_csv))
    )
    if _inside(source_root, output_dir):
        raise ValueError(
            f"--output_dir {output_dir!r} contains the input {source_root!r}: it would be replaced"
        )
    if input_dir is not None:
        sources, skipped = list_folder(input_dir)
    else:
        sources, skipped = drop_duplicates(read_listing(input_csv))

    started = last_shown = time.time()
    order = np.random.default_rng([seed, 0]).permutation(len(sources))
    staged: list[Source] = []  # one entry per crop, in staging (= final shard) order
    digests = {}  # path -> SHA-256, of the files that gave crops
    images_read = 0
    with records.atomic_output_dir(output_dir, overwrite) as tmp:
        staging_path = os.path.join(tmp, _STAGING_FILE)
        results = _run(
            sources,
            order,
            num_workers,
            image_size=image_size,
            detect_faces=detect_faces,
            face_margin=face_margin,
            max_pixels=max_pixels,
        )
        # closing(): an error below must also stop the worker processes, not wait for garbage collection.
        with tf.io.TFRecordWriter(staging_path) as staging, contextlib.closing(results):
            for done, (source, (crops, digest, reason, detail)) in enumerate(results, start=1):
                if reason:
                    skipped.append(_skip_entry(source.path, source.artist, reason, detail))
                else:
                    images_read += 1
                    if not crops:
                        skipped.append(_skip_entry(source.path, source.artist, NO_FACE))
                    else:
                        digests[source.path] = digest
                    for png in crops:
                        staging.write(png)
                        staged.append(source)
                # at most a few updates a second: a redirected log should not get a line per file
                if progress and (done == len(sources) or time.time() - last_shown >= 0.25):
                    _progress_bar(done, len(sources), started, len(skipped))
                    last_shown = time.time()

        copies, copy_entries = same_content(sources, digests)
        skipped.extend(copy_entries)
        per_artist = collections.Counter(
            source.artist for source in staged if source.path not in copies
        )
        kept = sorted(name for name, n in per_artist.items() if n >= min_images)
        # an artist folder whose every file was skipped is dropped too, and should be listed as such
        seen_artists = {source.artist for source in sources} | {
            entry["artist"] for entry in skipped if entry["artist"]
        }
        dropped = sorted(seen_artists - set(kept))
        if not kept:
            raise ValueError(
                f"no artist has at least --min_images={min_images} usable images "
                f"(best: {per_artist.most_common(3)}); {len(skipped)} files were skipped"
            )
        artist_id = {name: i for i, name in enumerate(kept)}
        held_out = _choose_test(staged, artist_id, seed, copies) if test_split else set()

        num_train = sum(per_artist[name] for name in kept) - len(held_out)
        writers = {"train": records.ShardedWriter(tmp, "train", min(num_shards, num_train))}
        if test_split:
            writers["test"] = records.ShardedWriter(
                tmp, "test", max(1, min(num_shards // 2, len(held_out)))
            )
        try:
            for index, png in enumerate(tf.data.TFRecordDataset(staging_path).as_numpy_iterator()):
                source = staged[index]
                if source.artist in artist_id and source.path not in copies:
                    writers["test" if index in held_out else "train"].write(
                        records.encode_example(
                            png, artist_id[source.artist], source.artist, printable(source.path)
                        )
                    )
        finally:
            for writer in writers.values():
                writer.close()
        os.remove(staging_path)

        test_counts = collections.Counter(staged[i].artist for i in held_out)
        artists = [
            {
                "id": artist_id[name],
                "name": name,
                "count": per_artist[name] - test_counts[name],
                "test_count": test_counts[name],
            }
            for name in kept
        ]
        records.write_artists(tmp, artists)
        records.write_json(
            os.path.join(tmp, records.DATASET_FILE),
            {
                "image_size": image_size,
                "source": "prepare",
                "content_factors": [],
                "style_factors": [],
                "detect_faces": detect_faces,
                "face_margin": face_margin,
                "min_images": min_images,
                "test_split": test_split,
                "seed": seed,
            },
        )
        seconds = time.time() - started
        report = {
            "input": printable(os.path.abspath(input_dir if input_dir is not None else input_csv)),
            "files_listed": len(sources),
            "images_read": images_read,
            "faces_found": len(staged) if detect_faces else None,
            "crops": sum(per_artist.values()),
            "skipped": dict(sorted(collections.Counter(s["reason"] for s in skipped).items())),
            "skipped_files": skipped,
            "artists_kept": len(kept),
            "artists_dropped": [
                {"name": name, "images": per_artist.get(name, 0)} for name in dropped
            ],
            "train_images": sum(a["count"] for a in artists),
            "test_images": len(held_out),
            "seconds": round(seconds, 3),
            "images_per_second": round(len(sources) / max(seconds, 1e-9), 2),
            "settings": {
                "image_size": image_size,
                "min_images": min_images,
                "detect_faces": detect_faces,
                "face_margin": face_margin,
                "test_split": test_split,
                "seed": seed,
                "max_pixels": max_pixels,
                "num_shards": num_shards,
            },
        }
        records.write_json(os.path.join(tmp, REPORT_FILE), report)
    return report


def _run(
    sources: Sequence[Source], order: np.ndarray, num_workers: int, **settings
) -> Iterable[tuple[Source, tuple[list[bytes], str, str]]]:
    """(source, result) in `order`, from worker processes when num_workers > 1 (order kept: reproducible shards)."""
    work = functools.partial(_process_file, **settings)
    paths = [sources[i].path for i in order]
    if num_workers == 1:
        for i, path in zip(order, paths):
            yield sources[i], work(path)
        return
    # spawn, not fork: the parent has TensorFlow's threads running, which a forked child could deadlock on.
    with multiprocessing.get_context("spawn").Pool(num_workers) as pool:
        for i, result in zip(order, pool.imap(work, paths, chunksize=4)):
            yield sources[i], result


def _choose_test(
    staged: Sequence[Source], artist_id: dict, seed: int, left_out: Collection[str] = ()
) -> set[int]:
    """Staging positions held out: per artist max(10%, 10) crops (papers' rule), drawn with `seed` (paper: 001);
    crops of the paths in `left_out` take no part."""
    from tf_gadn.data import synthetic

    positions = collections.defaultdict(list)
    for index, source in enumerate(staged):
        if source.artist in artist_id and source.path not in left_out:
            positions[source.artist].append(index)
    held_out = set()
    for name, indices in positions.items():
        # Sorted by source path, so the choice does not depend on the processing order or the worker count.
        indices.sort(key=lambda i: (staged[i].path, i))
        rng = np.random.default_rng([seed, artist_id[name]])
        chosen = rng.choice(len(indices), size=synthetic.test_count(len(indices)), replace=False)
        held_out.update(indices[k] for k in chosen)
    return held_out


def same_content(sources: Sequence[Source], digests: dict) -> tuple[set[str], list[dict]]:
    """The paths whose bytes (SHA-256 in `digests`) equal those of an earlier source in `sources` (listing) order,
    and their report entries: only the first copy is kept, so no image counts twice, is in both splits, or is
    taught as two artists' work (a copy under another artist is reported as such, naming the kept file)."""
    first, copies, entries = {}, set(), []
    for source in sources:
        digest = digests.get(source.path)
        if digest is None:
            continue
        if digest not in first:
            first[digest] = source
            continue
        kept = first[digest]
        copies.add(source.path)
        entries.append(
            _skip_entry(
                source.path,
                source.artist,
                SAME_CONTENT if kept.artist == source.artist else SAME_CONTENT_OTHER_ARTIST,
                f"same bytes as {kept.path} (artist {kept.artist}), which is kept",
            )
        )
    return copies, entries


def printable(name: str) -> str:
    """A path or name as report.json, artists.json and the records store it: the OS's bytes read as UTF-8, each byte
    that is not UTF-8 written as a `\\xNN` escape (os.listdir hands such bytes over as surrogate escapes, which no
    UTF-8 file or TFRecord string can hold). Files are still opened by their real name, never by this one."""
    return os.fsencode(name).decode("utf-8", errors="backslashreplace")


def _stat_failure(error: OSError) -> str:
    return (
        MISSING if isinstance(error, FileNotFoundError) else UNREADABLE
    )  # e.g. a symbolic link loop


def _file_id(info: os.stat_result) -> tuple[int, int]:
    return info.st_dev, info.st_ino


def _file_kind(mode: int) -> str:
    for test, kind in (
        (stat.S_ISFIFO, "FIFO"),
        (stat.S_ISSOCK, "socket"),
        (stat.S_ISCHR, "character device"),
        (stat.S_ISBLK, "block device"),
    ):
        if test(mode):
            return kind
    return "special file"


def _skip_entry(path: str, artist: str, reason: str, detail: str = "") -> dict:
    """A report entry; path and detail (which may quote paths) made `printable`."""
    return {
        "path": printable(path),
        "artist": artist,
        "reason": reason,
        "detail": printable(detail),
    }


def _inside(path: str, directory: str) -> bool:
    path, directory = os.path.realpath(path), os.path.realpath(directory)
    return os.path.commonpath([path, directory]) == directory


def _progress_bar(done: int, total: int, started: float, skipped: int, width: int = 30) -> None:
    filled = int(width * done / max(total, 1))
    rate = done / max(time.time() - started, 1e-9)
    sys.stderr.write(
        f"\r[{'#' * filled}{'.' * (width - filled)}] {done}/{total} files  {rate:.1f}/s  "
        f"skipped {skipped}" + ("\n" if done == total else "")
    )
    sys.stderr.flush()


def format_report(report: dict, max_listed: int = 10) -> str:
    """The human summary printed at the end of a run (report.json has every skipped file)."""
    lines = [f"files listed: {report['files_listed']}, images read: {report['images_read']}"]
    if report["faces_found"] is not None:
        lines.append(f"faces found: {report['faces_found']}")
    lines.append(
        f"skipped: {sum(report['skipped'].values())}"
        + "".join(f"\n  {reason}: {n}" for reason, n in report["skipped"].items())
    )
    for entry in report["skipped_files"][:max_listed]:
        lines.append(
            f"    {entry['reason']}: {entry['path']}"
            + (f" ({entry['detail']})" if entry["detail"] else "")
        )
    if len(report["skipped_files"]) > max_listed:
        lines.append(f"    ... {len(report['skipped_files']) - max_listed} more in {REPORT_FILE}")
    lines.append(
        f"artists kept: {report['artists_kept']}, dropped (< {report['settings']['min_images']} images): "
        f"{len(report['artists_dropped'])}"
        + "".join(f"\n  {a['name']}: {a['images']}" for a in report["artists_dropped"][:max_listed])
    )
    lines.append(
        f"train images: {report['train_images']}, test images: {report['test_images']} "
        f"({report['seconds']:.1f}s, {report['images_per_second']:.1f} files/s)"
    )
    return "\n".join(lines)


def default_num_workers(detect_faces: bool) -> int:
    """One process per core for AnimeFace (CPU-bound: about 1.8x on 2 cores); one process otherwise, since shipping
    decoded pixels between processes costs more than decoding them (benchmarks/prepare_speed.py)."""
    return max(1, min(8, os.cpu_count() or 1)) if detect_faces else 1


def main(argv):
    from absl import flags

    del argv
    f = flags.FLAGS
    report = prepare(
        f.output_dir,
        f.input_dir,
        f.input_csv,
        image_size=f.image_size,
        min_images=f.min_images,
        test_split=f.test_split,
        seed=f.seed,
        num_shards=f.num_shards,
        detect_faces=f.detect_faces,
        face_margin=f.face_margin,
        max_pixels=f.max_pixels,
        overwrite=f.overwrite,
        num_workers=f.num_workers or default_num_workers(f.detect_faces),
        progress=True,
    )
    print(format_report(report))
    print(f"wrote {f.output_dir} (report: {os.path.join(f.output_dir, REPORT_FILE)})")


def define_flags() -> None:
    from absl import flags

    flags.DEFINE_string("input_dir", None, "Folder with one sub-folder of images per artist.")
    flags.DEFINE_string(
        "input_csv", None, "CSV or TSV of path,artist (header optional; paths relative to it)."
    )
    flags.DEFINE_string(
        "output_dir", None, "Where the TFRecord data set goes (appears when complete)."
    )
    flags.DEFINE_integer("image_size", 256, "Output size in pixels (papers: 256).")
    flags.DEFINE_integer(
        "min_images", 50, "Keep artists with at least this many usable images/faces (papers: 50)."
    )
    flags.DEFINE_bool(
        "test_split", False, "Hold out max(10%, 10 images) per artist as the test split."
    )
    flags.DEFINE_integer("seed", 1, "Seed for the test split and shard order (papers: 001).")
    flags.DEFINE_integer(
        "num_shards", 8, "TFRecord shards of the train split (test: half as many)."
    )
    flags.DEFINE_bool(
        "detect_faces", False, "Crop upright AnimeFace faces instead of centre crops."
    )
    flags.DEFINE_float(
        "face_margin", 0.0, "Extra fraction of the face box on each side (0 = the box, as papers)."
    )
    flags.DEFINE_integer(
        "max_pixels", DEFAULT_MAX_PIXELS, "Skip images with more pixels (decompression bombs)."
    )
    flags.DEFINE_integer(
        "num_workers",
        0,
        "Processes reading/cropping images (0: one per core with --detect_faces, else 1).",
    )
    flags.DEFINE_bool("overwrite", False, "Replace an existing output directory.")
    flags.mark_flag_as_required("output_dir")


if __name__ == "__main__":
    from absl import app

    define_flags()
    app.run(main)
