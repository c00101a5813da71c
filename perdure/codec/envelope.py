"""How a payload is written into a text column: as it is, transformed by a codec, or offloaded.

A stored payload (a run's input, output and error, a journal entry's output and error, a
signal's payload) is one of three forms, told apart by its first character (JSON text never
starts with ``~``)::

    {"order": 42}                              plain JSON text, as the typed codec wrote it
    ~inline:<label>:<base64 of the bytes>      transformed by a payload codec
    ~blob:<label>:<sha256 hex>:<size>          offloaded to the blob store under its hash

The *label* says, in the clear, what a :class:`PayloadCodec` did to the bytes: ``+``-joined
steps such as ``zstd`` (compressed) and ``aesgcm=k2`` (encrypted with key ``k2``), in the order
applied; an empty label means the bytes are the JSON text itself (UTF-8). Keeping it in the
clear is what lets keys rotate without re-encrypting history (each value names its key), and
lets a process without the key say *why* it cannot read a value instead of failing.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from perdure.errors import BlobMissing, DecryptionError, PayloadUnavailable

__all__ = ["BlobRef", "Inline", "PayloadCodec", "blob_key", "decode_steps", "describe",
           "inline_text", "parse"]

_LABEL = re.compile(r"[A-Za-z0-9_.=+-]*")
_HASH = re.compile(r"[0-9a-f]{64}")


@runtime_checkable
class PayloadCodec(Protocol):
    """Transforms the bytes of every stored payload: encryption, compression (like Temporal's
    payload codecs). Pass one as ``Engine(codec=...)``; :class:`perdure.Encrypted` and
    :class:`perdure.Compressed` are two.

    ``encode`` returns a *label* with the new bytes: what it did, stored in the clear beside
    them and handed back to ``decode`` (letters, digits and ``_ . = + -``; empty when it left
    the bytes as they were). ``decode`` must accept every label the codec ever wrote, so that
    history stays readable after a change of key or setting.
    """

    def encode(self, data: bytes) -> tuple[str, bytes]:
        """Transform ``data``; return ``(label, new bytes)``."""
        ...

    def decode(self, label: str, data: bytes) -> bytes:
        """Undo what the codec did when it returned ``label``."""
        ...


@dataclass(frozen=True, slots=True)
class Inline:
    """A transformed payload held in the row itself."""

    label: str
    data: bytes


@dataclass(frozen=True, slots=True)
class BlobRef:
    """A payload offloaded to the blob store: the label of its bytes, their SHA-256 (the
    blob's key) and their size."""

    label: str
    key: str
    size: int

    def text(self) -> str:
        """The reference as stored in the row."""
        return f"~blob:{self.label}:{self.key}:{self.size}"


def blob_key(data: bytes) -> str:
    """The key of a blob: the SHA-256 of its bytes, in hex (so equal payloads share a blob)."""
    return hashlib.sha256(data).hexdigest()


def check_label(label: object) -> str:
    """``label`` if a codec may return it, else a ``ValueError`` saying why."""
    if not isinstance(label, str) or not _LABEL.fullmatch(label):
        raise ValueError(f"a payload codec returned the label {label!r}: use letters, digits "
                         "and _ . = + - only")
    return label


def inline_text(label: str, data: bytes) -> str:
    """The row text of bytes a codec transformed (``label`` not empty)."""
    return f"~inline:{label}:{base64.b64encode(data).decode('ascii')}"


def parse(stored: str) -> str | Inline | BlobRef:
    """What a stored payload is: its JSON text (plain), an :class:`Inline` or a
    :class:`BlobRef`. Raises :class:`~perdure.errors.PayloadUnavailable` if it is damaged."""
    if not stored.startswith("~"):
        return stored
    kind, _, rest = stored.partition(":")
    try:
        if kind == "~inline":
            label, _, b64 = rest.partition(":")
            return Inline(label, base64.b64decode(b64, validate=True))
        if kind == "~blob":
            label, key, size = rest.split(":")
            if _HASH.fullmatch(key):
                return BlobRef(label, key, int(size))
    except (ValueError, binascii.Error):
        pass
    raise PayloadUnavailable(f"a stored payload is damaged (it starts {stored[:60]!r})")


def key_ids(label: str) -> list[str]:
    """The encryption keys a label names, outermost last."""
    return [step.partition("=")[2] for step in label.split("+") if step.startswith("aesgcm=")]


def describe(error: PayloadUnavailable) -> str:
    """A short account, for a listing, of why a payload cannot be read here."""
    if isinstance(error, DecryptionError):
        return f"encrypted (key {error.key_id!r})"
    if isinstance(error, BlobMissing):
        return f"offloaded to blob {error.key[:12]}..., not available here"
    return str(error)


def decode_steps(label: str, data: bytes,
                 decrypt: Callable[[str, str, bytes], bytes] | None) -> bytes:
    """Undo the steps of ``label``, last first: ``zstd`` decompresses; ``aesgcm=ID`` calls
    ``decrypt(key_id, label, data)`` (the label is the authenticated data). Without
    ``decrypt``, an encrypted payload raises :class:`~perdure.errors.DecryptionError`."""
    from perdure.codec import compression

    for step in reversed(label.split("+") if label else []):
        name, _, arg = step.partition("=")
        if name == "aesgcm":
            if decrypt is None:
                raise DecryptionError(
                    f"this payload is encrypted with key {arg!r} and this engine has no "
                    "codec to decrypt it: pass Engine(codec=perdure.Encrypted(keys=...))",
                    key_id=arg)
            data = decrypt(arg, label, data)
        elif name == "zstd" and not arg:
            data = compression.decompress(data)
        else:
            raise PayloadUnavailable(f"this payload was encoded by a codec step {step!r} that "
                                     "this engine's codec does not know")
    return data
