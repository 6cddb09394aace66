"""A cheap structural check of an encoded image, done before MindSpore's C++ decoder sees the bytes.

MindSpore 2.7.1 kills the whole process with SIGFPE when a JPEG ends inside its header tables (a file truncated at a
few hundred bytes), so such a file cannot be left to the decoder's skip-on-error mode. Walking the marker segments
(JPEG) or chunks (PNG) costs microseconds and catches every truncation; a file that fails is dropped and reported.
"""

JPEG_SOF_MARKERS = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _jpeg_is_complete(data):
    """Segments up to the first scan fit the file, a frame header with a real size comes first, and EOI follows."""
    pos, size_known = 2, False
    while pos + 4 <= len(data):
        if data[pos] != 0xFF:  # stray bytes between segments: libjpeg skips them with a warning, and so do we
            pos = data.find(b"\xff", pos)
            if pos < 0:
                return False
            continue
        marker = data[pos + 1]
        if marker == 0xFF:  # fill byte
            pos += 1
            continue
        if marker == 0x01 or 0xD0 <= marker <= 0xD8:  # segments without a length
            pos += 2
            continue
        length = int.from_bytes(data[pos + 2:pos + 4], "big")
        if length < 2 or pos + 2 + length > len(data):
            return False
        if marker in JPEG_SOF_MARKERS:
            if length < 8:
                return False
            height = int.from_bytes(data[pos + 5:pos + 7], "big")
            width = int.from_bytes(data[pos + 7:pos + 9], "big")
            size_known = height > 0 and width > 0
        if marker == 0xDA:  # start of scan: the entropy-coded data runs to the end-of-image marker
            return size_known and data.rfind(b"\xff\xd9") > pos
        pos += 2 + length
    return False


def _png_is_complete(data):
    """Every chunk fits the file, up to and including IEND."""
    pos = len(PNG_SIGNATURE)
    while pos + 12 <= len(data):
        length = int.from_bytes(data[pos:pos + 4], "big")
        if pos + 12 + length > len(data):
            return False
        if data[pos + 4:pos + 8] == b"IEND":
            return True
        pos += 12 + length
    return False


def is_complete_image(data):
    """True when `data` (bytes) is a JPEG, PNG or BMP whose structure is whole; False for anything else."""
    if data[:2] == b"\xff\xd8":
        return _jpeg_is_complete(data)
    if data[:8] == PNG_SIGNATURE:
        return _png_is_complete(data)
    if data[:2] == b"BM" and len(data) >= 34:
        return _bmp_is_complete(data)
    return False


def _bmp_is_complete(data):
    """The declared file size fits, and for uncompressed pixels the pixel array fits too (the size may be 0)."""
    declared, offset = int.from_bytes(data[2:6], "little"), int.from_bytes(data[10:14], "little")
    width = int.from_bytes(data[18:22], "little", signed=True)
    height = abs(int.from_bytes(data[22:26], "little", signed=True))
    bits, compression = int.from_bytes(data[28:30], "little"), int.from_bytes(data[30:34], "little")
    if declared > len(data) or width <= 0 or height == 0:
        return False
    if compression in (0, 3):  # BI_RGB, BI_BITFIELDS: rows padded to 4 bytes
        return offset + (bits * width + 31) // 32 * 4 * height <= len(data)
    return declared > 0
