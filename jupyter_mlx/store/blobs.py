"""Content-addressed blob store: sha256 of the content -> one compressed file, written atomically."""
from __future__ import annotations

import hashlib
import os
import tempfile
import zlib
from pathlib import Path


def content_hash(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class BlobStore:
    """Immutable blobs under ``root/ab/cdef...``; the same content is stored once."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

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

    def write(self, digest: str, data: bytes) -> None:
        target = self.path(digest)
        if target.is_file():
            return
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=target.parent)
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(zlib.compress(data, 6))
            os.replace(tmp, target)  # atomic: readers see all of it or nothing
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def get(self, digest: str) -> bytes:
        try:
            return zlib.decompress(self.path(digest).read_bytes())
        except FileNotFoundError:
            raise KeyError(digest) from None

    def delete(self, digest: str) -> None:
        self.path(digest).unlink(missing_ok=True)

    def size_on_disk(self) -> int:
        return sum(p.stat().st_size for p in self.root.rglob("*") if p.is_file())
