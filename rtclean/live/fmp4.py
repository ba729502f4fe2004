"""Fragmented MP4 for browsers' Media Source Extensions: H.264 in, boxes out.

The live view's H.264 feed (feed.py) re-wraps the DVR encoder's packets, so
the browser gets video without a second encode. A packet from libx264 (or the
Pi's hardware encoder) is Annex B: NAL units behind 00 00 01 start codes,
with the SPS and PPS repeated before every keyframe. MSE wants ISO BMFF: one
initialisation segment (``ftyp`` + ``moov``, the SPS/PPS in an ``avcC``
box) and then media fragments (``moof`` + ``mdat``) whose NAL units carry
4-byte length prefixes. One fragment per frame: a frame is appended as soon
as it is encoded, which is what keeps the view live.

Only what a single progressive H.264 video track needs is written; field
layouts follow ISO/IEC 14496-12 and 14496-15.
"""

from __future__ import annotations

import struct

# Media timescale: 90 kHz, like MPEG-TS, divides both 25 and 30000/1001 fps.
TIMESCALE = 90000

NAL_SPS, NAL_PPS, NAL_AUD = 7, 8, 9
_PARAMETER_SETS = (NAL_SPS, NAL_PPS, NAL_AUD)  # carried in avcC, not in the samples

# trun sample flags: a sync sample depends on nothing; other samples depend
# on earlier ones and are not sync samples (ISO/IEC 14496-12 8.8.3.1).
_FLAGS_KEY = 0x02000000
_FLAGS_DELTA = 0x01010000

_MATRIX = struct.pack(">9I", 0x10000, 0, 0, 0, 0x10000, 0, 0, 0, 0x40000000)


def _box(kind: bytes, *payload: bytes) -> bytes:
    body = b"".join(payload)
    return struct.pack(">I", 8 + len(body)) + kind + body


def _full(kind: bytes, version: int, flags: int, *payload: bytes) -> bytes:
    return _box(kind, struct.pack(">I", (version << 24) | flags), *payload)


def split_annexb(data: bytes) -> list[bytes]:
    """The NAL units of an Annex B byte stream (start codes removed)."""
    units = []
    i = data.find(b"\x00\x00\x01")
    while i >= 0:
        start = i + 3
        j = data.find(b"\x00\x00\x01", start)
        end = len(data) if j < 0 else j
        # A 4-byte start code's leading zero belongs to no NAL unit.
        unit = data[start:end].rstrip(b"\x00") if j >= 0 else data[start:end]
        if unit:
            units.append(unit)
        i = j
    return units


def nal_type(unit: bytes) -> int:
    return unit[0] & 0x1F


def codec_string(sps: bytes) -> str:
    """RFC 6381 codec name for MSE, e.g. avc1.42c01e (profile, constraints, level)."""
    return f"avc1.{sps[1]:02x}{sps[2]:02x}{sps[3]:02x}"


def init_segment(sps: bytes, pps: bytes, width: int, height: int) -> bytes:
    """``ftyp`` + ``moov`` for one H.264 track (track 1, 90 kHz)."""
    ftyp = _box(b"ftyp", b"isom", struct.pack(">I", 0x200), b"isom", b"iso6", b"avc1", b"mp41")
    mvhd = _full(b"mvhd", 0, 0, struct.pack(">IIII", 0, 0, 1000, 0), struct.pack(">IH", 0x10000, 0x100),
                 bytes(10), _MATRIX, bytes(24), struct.pack(">I", 2))
    tkhd = _full(b"tkhd", 0, 3, struct.pack(">IIIII", 0, 0, 1, 0, 0), bytes(8),
                 struct.pack(">hhhH", 0, 0, 0, 0), _MATRIX, struct.pack(">II", width << 16, height << 16))
    mdhd = _full(b"mdhd", 0, 0, struct.pack(">IIII", 0, 0, TIMESCALE, 0), struct.pack(">HH", 0x55C4, 0))  # "und"
    hdlr = _full(b"hdlr", 0, 0, struct.pack(">I", 0), b"vide", bytes(12), b"rtclean live\x00")
    avcc = _box(b"avcC", bytes((1, sps[1], sps[2], sps[3], 0xFF, 0xE1)), struct.pack(">H", len(sps)), sps,
                b"\x01", struct.pack(">H", len(pps)), pps)
    avc1 = _box(b"avc1", bytes(6), struct.pack(">H", 1), bytes(16), struct.pack(">HH", width, height),
                struct.pack(">II", 0x480000, 0x480000), bytes(4), struct.pack(">H", 1), bytes(32),
                struct.pack(">Hh", 0x18, -1), avcc)
    stbl = _box(b"stbl", _full(b"stsd", 0, 0, struct.pack(">I", 1), avc1),
                _full(b"stts", 0, 0, bytes(4)), _full(b"stsc", 0, 0, bytes(4)),
                _full(b"stsz", 0, 0, bytes(8)), _full(b"stco", 0, 0, bytes(4)))
    dinf = _box(b"dinf", _full(b"dref", 0, 0, struct.pack(">I", 1), _full(b"url ", 0, 1)))
    minf = _box(b"minf", _full(b"vmhd", 0, 1, bytes(8)), dinf, stbl)
    trak = _box(b"trak", tkhd, _box(b"mdia", mdhd, hdlr, minf))
    mvex = _box(b"mvex", _full(b"trex", 0, 0, struct.pack(">IIIII", 1, 1, 0, 0, 0)))
    return ftyp + _box(b"moov", mvhd, trak, mvex)


def sample(units: list[bytes]) -> bytes:
    """One frame's NAL units, length-prefixed, without parameter sets."""
    return b"".join(struct.pack(">I", len(u)) + u for u in units if nal_type(u) not in _PARAMETER_SETS)


def fragment(sequence: int, decode_time: int, duration: int, data: bytes, key: bool) -> bytes:
    """``moof`` + ``mdat`` holding one sample that starts at ``decode_time``
    (TIMESCALE ticks) and lasts ``duration`` ticks."""
    mfhd = _full(b"mfhd", 0, 0, struct.pack(">I", sequence))
    tfhd = _full(b"tfhd", 0, 0x020000, struct.pack(">I", 1))  # default-base-is-moof
    tfdt = _full(b"tfdt", 1, 0, struct.pack(">Q", decode_time))
    # trun: data offset, and per sample: duration, size, flags. The offset
    # (from the start of moof to the sample) is known once moof's size is.
    trun_len = 8 + 4 + 4 + 4 + 12
    moof_len = 8 + len(mfhd) + 8 + len(tfhd) + len(tfdt) + trun_len
    trun = _full(b"trun", 0, 0x000701, struct.pack(">IiIII", 1, moof_len + 8, duration, len(data),
                                                    _FLAGS_KEY if key else _FLAGS_DELTA))
    moof = _box(b"moof", mfhd, _box(b"traf", tfhd, tfdt, trun))
    return moof + struct.pack(">I", 8 + len(data)) + b"mdat" + data
