"""Checksum-pinned, atomic downloads.

``$DCGAN_MIRROR`` replaces the default base URL of every data-set download. Point it at a folder laid
out like Keras's bucket (``mnist.npz``, the four Fashion-MNIST ``*-ubyte.gz`` files,
``cifar-10-python.tar.gz``) given as a URL (``https://...``, ``file:///...``) or as a local folder path.
Pinned checksums still apply, so a mirror must serve the original files.
"""

from __future__ import annotations

import hashlib
import http.client
import os
import tempfile
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from tqdm import tqdm

from common.data.errors import DataError, one_line

MIRROR_ENV = "DCGAN_MIRROR"
_CHUNK = 1 << 20


@dataclass(frozen=True)
class RemoteFile:
    """A file of a public data set with its pinned digests (at least one of them)."""

    name: str
    sha256: str | None = None
    md5: str | None = None


def mirror_url(default_base: str, name: str) -> str:
    """URL of ``name`` under ``$DCGAN_MIRROR`` if set, else under ``default_base``."""
    base = os.environ.get(MIRROR_ENV) or default_base
    if "://" not in base:  # a plain folder path is friendlier to type than a file:// URL
        base = Path(base).expanduser().resolve().as_uri()
    return base.rstrip("/") + "/" + urllib.parse.quote(name)


def _reason(err: BaseException) -> str:
    """``err`` on one line; for a URLError, the error it wraps (an HTTPError's own text has the status)."""
    reason = getattr(err, "reason", None)  # URLError wraps the socket error in .reason
    return one_line(
        err, str(reason if reason is not None and not isinstance(err, urllib.error.HTTPError) else err)
    )


def download_file(
    url: str,
    dest_path: str | os.PathLike,
    sha256: str | None = None,
    md5: str | None = None,
    progress: bool = True,
    timeout: float = 60.0,
) -> Path:
    """Download ``url`` to ``dest_path`` and verify its pinned digest(s); return the path.

    The data go to a temporary file in the destination folder that replaces ``dest_path`` only after the
    checksums match, so an interrupted or corrupt download never leaves a file that looks complete.
    Network failures and checksum mismatches raise DataError. ``file://`` URLs work too.
    """
    if not sha256 and not md5:
        raise ValueError("download_file needs a pinned sha256 or md5")
    dest = Path(dest_path)
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".part", dir=dest.parent)
    except OSError as err:
        raise DataError(f"cannot write to {dest.parent} to download {dest.name}: {_reason(err)}") from err
    tmp = Path(tmp_name)
    try:
        digest256 = hashlib.sha256()
        digest_md5 = hashlib.md5(usedforsecurity=False)
        with os.fdopen(fd, "wb") as out:
            try:
                with urllib.request.urlopen(url, timeout=timeout) as response:
                    length = response.headers.get("Content-Length")
                    total = int(length) if length and length.isdigit() else None
                    with tqdm(
                        total=total,
                        unit="B",
                        unit_scale=True,
                        unit_divisor=1024,
                        desc=dest.name,
                        disable=not progress,
                        leave=False,
                    ) as bar:
                        while chunk := response.read(_CHUNK):
                            out.write(chunk)
                            digest256.update(chunk)
                            digest_md5.update(chunk)
                            bar.update(len(chunk))
                    if total is not None and out.tell() != total:
                        raise DataError(
                            f"could not download {url}: connection closed after {out.tell()} of {total} bytes"
                        )
            # ValueError: malformed URL; HTTPException: IncompleteRead; OSError: URLError, timeouts, disk.
            except (OSError, ValueError, http.client.HTTPException) as err:
                raise DataError(f"could not download {url}: {_reason(err)}") from err
            out.flush()
            os.fsync(out.fileno())
        for algo, want, got in (("sha256", sha256, digest256), ("md5", md5, digest_md5)):
            if want and got.hexdigest() != want.lower():
                raise DataError(
                    f"checksum mismatch for {url}: {algo} {got.hexdigest()}, expected {want}; "
                    f"nothing was saved to {dest} (corrupt download, or the mirror serves another file)"
                )
        os.chmod(tmp, 0o644)  # mkstemp makes 0600; a shared cache file should be readable like Keras's
        os.replace(tmp, dest)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return dest
