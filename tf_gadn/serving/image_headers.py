"""Image dimensions read from the raw header bytes of PNG, JPEG, GIF and BMP files, without any decoder.

Why: a size check that goes through a decoder (PIL) is skipped whenever that decoder refuses the file (one bad-CRC
chunk is enough), and the graph's own decoder (tf.io.decode_image) then allocates whatever the header promises. The
few bytes that state width and height are read here directly; bytes that are not one of these four formats, or whose
header is cut short, have no known size and are refused by the caller.
"""

from __future__ import annotations

import struct

MAX_IMAGE_PIXELS = (
    4096 * 4096
)  # the one pixel limit: server header check (tf_gadn.serve) and graph backstop (export)

_PNG = b"\x89PNG\r\n\x1a\n"
# JPEG start-of-frame markers (baseline, progressive, lossless, arithmetic ...): all but DHT (C4), JPG (C8), DAC (CC)
_JPEG_SOF = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}
_JPEG_STANDALONE = {0x01, *range(0xD0, 0xD8)}  # TEM, RST0-7: no length field


def _png(data: bytes):
    # IHDR is the first chunk by the PNG spec: length (4), type (4), width (4), height (4), big-endian; CRC not read
    if len(data) < 24 or data[12:16] != b"IHDR":
        return None
    return struct.unpack(">II", data[16:24])


def _gif(data: bytes):
    # logical screen width and height (little-endian uint16) after "GIF87a"/"GIF89a": the canvas decoders allocate
    return struct.unpack("<HH", data[6:10]) if len(data) >= 10 else None


def _bmp(data: bytes):
    # BITMAPFILEHEADER (14 bytes), then the DIB header: 12-byte OS/2 core header (uint16 sizes) or the later ones
    # (int32 sizes; a negative height means top-down rows)
    if len(data) < 26:
        return None
    if struct.unpack("<I", data[14:18])[0] == 12:
        return struct.unpack("<HH", data[18:22])
    width, height = struct.unpack("<ii", data[18:26])
    return abs(width), abs(height)


def _jpeg(data: bytes):
    """Walks the marker segments up to the first start-of-frame, which holds height and width (big-endian)."""
    position = 2
    while position + 4 <= len(data):
        if data[position] != 0xFF:
            return None
        marker = data[position + 1]
        if marker == 0xFF:  # fill byte before a marker
            position += 1
            continue
        if marker in _JPEG_STANDALONE:
            position += 2
            continue
        if marker in (0xD9, 0xDA):  # end of image or start of scan before any frame header
            return None
        length = struct.unpack(">H", data[position + 2 : position + 4])[0]
        if marker in _JPEG_SOF:
            if length < 7 or position + 9 > len(data):
                return None
            height, width = struct.unpack(">HH", data[position + 5 : position + 9])
            return width, height
        position += 2 + length
    return None


def image_size(data: bytes) -> tuple[int, int] | None:
    """(width, height) from the header of a PNG, JPEG, GIF or BMP file; None for anything else or a cut header."""
    if data.startswith(_PNG):
        return _png(data)
    if data.startswith(b"\xff\xd8"):
        return _jpeg(data)
    if data.startswith((b"GIF87a", b"GIF89a")):
        return _gif(data)
    if data.startswith(b"BM"):
        return _bmp(data)
    return None


def graph_image_size(encoded):
    """The same header reading inside a TensorFlow graph, for the SavedModel itself: (width, height) as float64
    scalars of one encoded image, (-1, -1) when its size cannot be read from its header (not PNG/JPEG/GIF/BMP, or cut
    short). JPEG goes through tf.io.extract_jpeg_shape, which reads the frame header and decodes nothing. Behind the
    real tensorflow_model_server no Python runs before the graph, so this check is what keeps a small file that
    claims 30000 x 30000 pixels away from tf.io.decode_image."""
    import tensorflow as tf

    head = tf.strings.substr(encoded, 0, 26)
    length = tf.strings.length(head)
    # a fixed 26 bytes to read from: bytes past the end of the file read as zero, and `length` says which are real
    raw = tf.io.decode_raw(tf.strings.substr(tf.strings.join([head, "\0" * 26]), 0, 26), tf.uint8)
    byte = tf.cast(raw, tf.float64)
    unknown = (tf.constant(-1.0, tf.float64), tf.constant(-1.0, tf.float64))

    def big_endian(start, count):
        return sum(byte[start + i] * 256.0 ** (count - 1 - i) for i in range(count))

    def little_endian(start, count):
        return sum(byte[start + i] * 256.0**i for i in range(count))

    def png():
        ok = (length >= 24) & tf.equal(tf.strings.substr(head, 12, 4), "IHDR")
        return tf.cond(ok, lambda: (big_endian(16, 4), big_endian(20, 4)), lambda: unknown)

    def gif():
        return tf.cond(
            length >= 10, lambda: (little_endian(6, 2), little_endian(8, 2)), lambda: unknown
        )

    def bmp():
        def signed(start):
            value = little_endian(start, 4)
            return tf.abs(tf.where(value >= 2.0**31, value - 2.0**32, value))

        core = tf.equal(little_endian(14, 4), 12.0)  # OS/2 core header: uint16 sizes
        return tf.cond(
            length < 26,
            lambda: unknown,
            lambda: tf.cond(
                core,
                lambda: (little_endian(18, 2), little_endian(20, 2)),
                lambda: (signed(18), signed(22)),
            ),
        )

    def jpeg():
        shape = tf.cast(tf.io.extract_jpeg_shape(encoded), tf.float64)  # [height, width, channels]
        return shape[1], shape[0]

    starts = lambda prefix: tf.equal(tf.strings.substr(head, 0, len(prefix)), prefix)  # noqa: E731
    return tf.case(
        [
            (starts(_PNG), png),
            (starts(b"\xff\xd8"), jpeg),
            (starts(b"GIF87a") | starts(b"GIF89a"), gif),
            (starts(b"BM"), bmp),
        ],
        default=lambda: unknown,
        exclusive=False,
    )
