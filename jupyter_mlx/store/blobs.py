"""Content-addressed blob store: sha256 of the content -> one compressed file, written atomically.

A blob file is one of two formats, told apart by its first bytes:

- plain: the zlib stream of the content (what every file written before dictionaries was);
- with a dictionary: ``DICT_MAGIC`` (4 bytes), the kind of dictionary (1 byte), the sha256 of
  another blob (32 bytes, binary), then the zlib stream of the content compressed with a preset
  dictionary derived from that other blob (``zlib.compressobj(zdict=...)``).

- raw: ``RAW_MAGIC`` (4 bytes), then the content as it is: files that do not compress (images,
  pickled models, parquet), stored by ``put_file`` without paying for zlib.

A zlib stream's first byte has 8 in its low four bits (deflate), the magics' do not, so a
file cannot be read as the wrong format. The hash is always over the uncompressed content. A file
written with a dictionary depends on the dictionary blob: whoever counts references to blobs must
count that one too (``dependencies``).
"""
from __future__ import annotations

import hashlib
import os
import tempfile
import threading
import zlib
from pathlib import Path
from typing import Callable, Iterator

DICT_MAGIC = b"mlxz"
RAW_MAGIC = b"mlxr"
CHUNK = 1 << 20
SAMPLE = 64 << 10  # the start of a file that decides whether compressing it pays
COMPRESSION_PAYS = 0.9  # compress a file when zlib makes its sample at most this fraction of its size
_HEADER = len(DICT_MAGIC) + 1 + 32

NOTEBOOK_DICTIONARY = 1
"""Dictionary kind: ``notebook_dictionary`` of the blob (a notebook's text without its outputs)."""


def content_hash(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _notebook_dictionary(data: bytes) -> bytes:
    from .notebook_blobs import notebook_dictionary

    return notebook_dictionary(data)


# How each dictionary kind is derived from its blob. Never change one: files written with it
# must stay readable; add a kind instead.
DICTIONARY_KINDS: dict[int, Callable[[bytes], bytes]] = {NOTEBOOK_DICTIONARY: _notebook_dictionary}


class BlobStore:
    """Immutable blobs under ``root/ab/cdef...``; the same content is stored once."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self._dictionaries: dict[tuple[int, str], bytes] = {}  # a few derived dictionaries, reused
        self._lock = threading.Lock()

    def path(self, digest: str) -> Path:
        if len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest):
            raise ValueError(f"not a blob hash: {digest!r}")
        return self.root / digest[:2] / digest[2:]

    def exists(self, digest: str) -> bool:
        return self.path(digest).is_file()

    def put(self, data: bytes) -> str:
        """Store ``data`` (no-op when present) and return its hash."""
        digest = content_hash(data)
        self.write(digest, data)
        return digest

    def write(self, digest: str, data: bytes, dictionary: str | None = None, replace: bool = False) -> None:
        """Store ``data`` under ``digest`` (no-op when present, unless ``replace``).

        With ``dictionary`` (the hash of a stored blob, e.g. the source notebook of an executed
        notebook), compress against the notebook dictionary derived from that blob: the file then
        depends on it (``KeyError`` if it is not stored). A present file is kept as it is, whatever
        its format.
        """
        target = self.path(digest)
        if not replace and target.is_file():
            return
        if dictionary is not None:
            zdict = self._dictionary(NOTEBOOK_DICTIONARY, dictionary)
            compressor = zlib.compressobj(6, zdict=zdict)
            stored = DICT_MAGIC + bytes([NOTEBOOK_DICTIONARY]) + bytes.fromhex(dictionary)
            stored += compressor.compress(data) + compressor.flush()
        else:
            stored = zlib.compress(data, 6)
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=target.parent)
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(stored)
            os.replace(tmp, target)  # atomic: readers see all of it or nothing
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def put_file(self, source: Path) -> str:
        """Store a file's content, read once in chunks (never whole in memory), and return its hash.

        zlib-compressed (fast level) when its first 64 KiB compress well, raw otherwise. A file already stored
        is not rewritten (the copy written meanwhile is dropped)."""
        digest = hashlib.sha256()
        self.root.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=self.root)
        try:
            with open(source, "rb") as reader, os.fdopen(fd, "wb") as writer:
                first = reader.read(CHUNK)
                sample = first[:SAMPLE]
                compressor = None
                if sample and len(zlib.compress(sample, 1)) <= COMPRESSION_PAYS * len(sample):
                    compressor = zlib.compressobj(1)  # level 6 keeps ~15% fewer bytes at a 7th of the speed
                else:
                    writer.write(RAW_MAGIC)
                chunk = first
                while chunk:
                    digest.update(chunk)
                    writer.write(compressor.compress(chunk) if compressor else chunk)
                    chunk = reader.read(CHUNK)
                if compressor is not None:
                    writer.write(compressor.flush())
            name = digest.hexdigest()
            target = self.path(name)
            if target.is_file():
                Path(tmp).unlink()
            else:
                target.parent.mkdir(parents=True, exist_ok=True)
                os.replace(tmp, target)
            return name
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def copy_to(self, digest: str, target: Path) -> None:
        """Write a blob's content to ``target`` in chunks (a large artifact is never whole in memory)."""
        with open(target, "wb") as writer:
            for chunk in self.chunks(digest):
                writer.write(chunk)

    def chunks(self, digest: str) -> Iterator[bytes]:
        """A blob's content, in pieces of at most about a megabyte (a download streams them)."""
        try:
            reader = self.path(digest).open("rb")
        except FileNotFoundError:
            raise KeyError(digest) from None
        with reader:
            head = reader.read(len(RAW_MAGIC))
            if head == RAW_MAGIC:
                while chunk := reader.read(CHUNK):
                    yield chunk
                return
            if head == DICT_MAGIC:
                reader.seek(0)
                yield self._decode(reader.read())
                return
            decompressor = zlib.decompressobj()
            pending = head + reader.read(CHUNK)
            while pending:
                while pending:  # at most CHUNK bytes out at a time, however well it compressed
                    yield decompressor.decompress(pending, CHUNK)
                    pending = decompressor.unconsumed_tail
                pending = reader.read(CHUNK)
            yield decompressor.flush()

    def get(self, digest: str) -> bytes:
        try:
            stored = self.path(digest).read_bytes()
        except FileNotFoundError:
            raise KeyError(digest) from None
        return self._decode(stored)

    def _decode(self, stored: bytes) -> bytes:
        if stored.startswith(RAW_MAGIC):
            return stored[len(RAW_MAGIC):]
        if not stored.startswith(DICT_MAGIC):
            return zlib.decompress(stored)
        kind, dictionary = stored[len(DICT_MAGIC)], stored[len(DICT_MAGIC) + 1 : _HEADER].hex()
        decompressor = zlib.decompressobj(zdict=self._dictionary(kind, dictionary))
        return decompressor.decompress(stored[_HEADER:]) + decompressor.flush()

    def dependencies(self, digest: str) -> list[str]:
        """The blobs this blob's file needs to be read (its dictionary), from its header."""
        try:
            with self.path(digest).open("rb") as handle:
                header = handle.read(_HEADER)
        except FileNotFoundError:
            raise KeyError(digest) from None
        if len(header) == _HEADER and header.startswith(DICT_MAGIC):
            return [header[len(DICT_MAGIC) + 1 :].hex()]
        return []

    def _dictionary(self, kind: int, digest: str) -> bytes:
        key = (kind, digest)
        with self._lock:
            zdict = self._dictionaries.get(key)
        if zdict is None:
            try:
                derive = DICTIONARY_KINDS[kind]
            except KeyError:
                raise ValueError(f"blob dictionary kind {kind} is unknown: upgrade jupyter_mlx") from None
            zdict = derive(self.get(digest))
            with self._lock:
                if len(self._dictionaries) >= 16:
                    self._dictionaries.pop(next(iter(self._dictionaries)))
                self._dictionaries[key] = zdict
        return zdict

    def delete(self, digest: str) -> None:
        self.path(digest).unlink(missing_ok=True)

    def size_on_disk(self) -> int:
        return sum(p.stat().st_size for p in self.root.rglob("*") if p.is_file())
