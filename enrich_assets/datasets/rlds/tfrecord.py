"""TFRecord framing with its checksums: each record is a little-endian uint64 length, the
masked CRC-32C of those 8 bytes, the data, and the masked CRC-32C of the data.

Framing is read here rather than with `tfrecord.reader.tfrecord_iterator` because that
iterator skips both checksums, does not say where a record starts (we seek back to one
episode's record later) and reuses one buffer across records. The `tfrecord` package still
provides the `tf.train.Example` protobuf classes (`example_pb2`); `crc32c` the checksum.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import crc32c

HEADER = 12  # length (8) + its masked CRC (4)
FOOTER = 4  # the data's masked CRC


class RecordError(ValueError):
    """A record whose length or data fails its checksum, or a file cut short."""


def masked_crc(data: bytes | memoryview) -> int:
    crc = crc32c.crc32c(data)
    return (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF


@dataclass(frozen=True)
class Record:
    offset: int  # where its header starts in the file
    size: int  # data bytes
    crc: int  # the stored masked CRC of the data: a content signature for free


def _header(f: BinaryIO, offset: int) -> int:
    head = f.read(HEADER)
    if len(head) < HEADER:
        raise RecordError(f"file ends inside the record header at byte {offset}")
    (size,) = struct.unpack("<Q", head[:8])
    if masked_crc(head[:8]) != struct.unpack("<I", head[8:])[0]:
        raise RecordError(f"record length at byte {offset} fails its checksum")
    return size


def _data(f: BinaryIO, offset: int, size: int) -> tuple[bytes, int]:
    data = f.read(size)
    tail = f.read(FOOTER)
    if len(data) < size or len(tail) < FOOTER:
        raise RecordError(f"file ends inside the record at byte {offset}")
    return data, struct.unpack("<I", tail)[0]


def scan(path: Path) -> Iterator[tuple[Record, bytes | None, str | None]]:
    """Every record in file order: (record, data, None), or (record, None, problem) when its
    data fails its checksum (the next records are still found). A broken header or a file
    cut short raises RecordError: nothing after it can be located."""
    end = path.stat().st_size
    with path.open("rb") as f:
        offset = 0
        while offset < end:
            size = _header(f, offset)
            data, crc = _data(f, offset, size)
            record = Record(offset, size, crc)
            if masked_crc(data) != crc:
                yield record, None, f"record data at byte {offset} fails its checksum"
            else:
                yield record, data, None
            offset += HEADER + size + FOOTER


def read(path: Path, record: Record) -> bytes:
    """One record's data, its checksums verified; RecordError otherwise."""
    with path.open("rb") as f:
        f.seek(record.offset)
        size = _header(f, record.offset)
        if size != record.size:
            raise RecordError(f"record at byte {record.offset} changed size since listing")
        data, crc = _data(f, record.offset, size)
    if masked_crc(data) != crc:
        raise RecordError(f"record data at byte {record.offset} fails its checksum")
    return data
