"""AES-GCM encryption of stored payloads, with a key ring for rotation (extra
``perdure[crypto]``, the ``cryptography`` package).

Each value is encrypted with the *current* key under a fresh random 96-bit nonce, and its label
names the key (``aesgcm=k2``, see :mod:`perdure.codec.envelope`), so adding a new key and making
it current rotates keys without re-encrypting history: older values name the older key, which
stays in the ring for as long as they are kept. The label is the authenticated data, so a value
cannot be passed off under another key id or without its compression step.

What is not encrypted: the metadata the engine needs to list and route runs (ids, workflow
names and versions, statuses, times, journal kinds and sequence numbers, the reason a run is
blocked) and the value sizes. Compression before encryption (``compress_above``) reveals how
well a value compresses; leave it off when an attacker can mix chosen text into a secret.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from typing import Any

from perdure.codec.compression import check_level, check_threshold, maybe_compress, zstandard
from perdure.codec.envelope import decode_steps
from perdure.errors import DecryptionError, InvalidConfiguration

__all__ = ["Encrypted"]

_KEY_ID = re.compile(r"[A-Za-z0-9_.-]{1,64}")
_NONCE = 12
_TAG = 16


def _aesgcm() -> Any:
    try:
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM
    except ImportError:
        raise InvalidConfiguration(
            "perdure.Encrypted needs the 'cryptography' package: pip install "
            "'perdure[crypto]'") from None
    return AESGCM


def _check_keys(keys: object) -> dict[str, bytes]:
    if not isinstance(keys, Mapping) or not keys:
        raise InvalidConfiguration("Encrypted(keys=...) must be a non-empty dict of key id to "
                                   f"key bytes, not {type(keys).__name__}")
    ring: dict[str, bytes] = {}
    for key_id, key in keys.items():
        if not isinstance(key_id, str) or not _KEY_ID.fullmatch(key_id):
            raise InvalidConfiguration(
                f"invalid key id {key_id!r}: use 1-64 letters, digits, '_', '.' or '-' (it is "
                "stored in the clear beside every value it encrypts)")
        if not isinstance(key, bytes | bytearray):
            hint = (" (decode it first: bytes.fromhex(...) or base64.b64decode(...))"
                    if isinstance(key, str) else "")
            raise InvalidConfiguration(
                f"key {key_id!r} must be bytes, not {type(key).__name__}{hint}")
        if len(key) not in (16, 24, 32):
            raise InvalidConfiguration(
                f"key {key_id!r} is {len(key)} bytes long; AES-GCM takes 16, 24 or 32 (use "
                "32: os.urandom(32) or AESGCM.generate_key(bit_length=256))")
        ring[key_id] = bytes(key)
    return ring


class Encrypted:
    """A payload codec that encrypts every stored payload with AES-GCM:
    ``Engine(codec=perdure.Encrypted(keys={"k2": key2, "k1": key1}, current="k2"))``.

    ``keys`` maps key ids (1-64 of ``A-Z a-z 0-9 _ . -``, stored in the clear with each value)
    to 16-, 24- or 32-byte keys; ``current`` encrypts new values, and every key decrypts the
    values that name it, so keys rotate without re-encrypting history. With
    ``compress_above`` (bytes), longer payloads are compressed with zstd at
    ``compression_level`` before they are encrypted (extra ``perdure[zstd]``).

    Needs the ``cryptography`` package (``pip install 'perdure[crypto]'``). Reading a value
    whose key is not in ``keys``, or that the key does not decrypt, raises
    :class:`~perdure.errors.DecryptionError` naming the key id.
    """

    def __init__(self, keys: Mapping[str, bytes], current: str, *,
                 compress_above: int | None = None, compression_level: int = 3) -> None:
        aesgcm = _aesgcm()
        ring = _check_keys(keys)
        if not isinstance(current, str) or current not in ring:
            raise InvalidConfiguration(
                f"the current key {current!r} is not among the keys ({', '.join(ring)})")
        if compress_above is not None:
            check_threshold("compress_above", compress_above)
            zstandard()  # fail here, at configuration, if the package is missing
        self.current = current
        self.compress_above = compress_above
        self.compression_level = check_level(compression_level)
        self._ciphers = {key_id: aesgcm(key) for key_id, key in ring.items()}

    @property
    def key_ids(self) -> list[str]:
        """The ids of the keys in the ring (never the keys)."""
        return list(self._ciphers)

    def __repr__(self) -> str:
        return (f"Encrypted(keys={self.key_ids}, current={self.current!r}, "
                f"compress_above={self.compress_above})")

    def encode(self, data: bytes) -> tuple[str, bytes]:
        """Compress (above the threshold, when it helps), then encrypt with the current key."""
        packed, data = maybe_compress(data, self.compress_above, self.compression_level)
        label = f"zstd+aesgcm={self.current}" if packed else f"aesgcm={self.current}"
        nonce = os.urandom(_NONCE)
        return label, nonce + self._ciphers[self.current].encrypt(nonce, data, label.encode())

    def decode(self, label: str, data: bytes) -> bytes:
        """Decrypt (with the key the label names), then decompress if it was compressed."""
        return decode_steps(label, data, self._decrypt)

    def _decrypt(self, key_id: str, label: str, data: bytes) -> bytes:
        cipher = self._ciphers.get(key_id)
        if cipher is None:
            raise DecryptionError(
                f"this payload is encrypted with key {key_id!r}, which is not among this "
                f"engine's keys ({', '.join(self._ciphers)}): add it to "
                "Encrypted(keys=...)", key_id=key_id)
        from cryptography.exceptions import InvalidTag

        try:
            if len(data) < _NONCE + _TAG:
                raise InvalidTag
            out: bytes = cipher.decrypt(data[:_NONCE], data[_NONCE:], label.encode())
        except InvalidTag:
            raise DecryptionError(
                f"key {key_id!r} does not decrypt this payload: another key was configured "
                "under that id, or the stored data was altered", key_id=key_id) from None
        return out
