"""The way every payload goes into storage and comes back: size limit, codec, blob offload.

One :class:`Payloads` per engine, shared by its runs and handles. Writing a payload is
``await payloads.store(text, what)``; reading it is ``await payloads.load(stored)``. Whoever adds
a new kind of stored payload (events, stream items) calls these two and nothing else.

On the way in, the JSON text is checked against ``max_payload``, transformed by the codec
(compression, encryption), and, when the result is longer than ``offload_above`` and a blob
store is configured, put in the blob store under its content hash, the row keeping only the
reference. On the way out each step is undone; the forms are in :mod:`perdure.codec.envelope`.
Plain JSON rows (written without a codec, or before one was configured) read as they are.
"""

from __future__ import annotations

import asyncio
from dataclasses import replace

from perdure.codec.envelope import (
    BlobRef,
    Inline,
    PayloadCodec,
    blob_key,
    check_label,
    decode_steps,
    describe,
    inline_text,
    parse,
)
from perdure.codec.limits import (
    DEFAULT_MAX_PAYLOAD,
    DEFAULT_OFFLOAD_ABOVE,
    size_over,
    too_large,
)
from perdure.errors import BlobMissing, InvalidConfiguration, PayloadUnavailable
from perdure.records import JournalEntry, RunInfo, RunRow, RunStatus
from perdure.storage.blobs import BlobStore

__all__ = ["Payloads"]

#: payloads longer than this that go through a codec are encoded, hashed and decoded in a
#: worker thread: compressing 20 MB takes ~0.15 s, which must not stall the other runs on the
#: event loop. Without a codec the work is a copy and a hash (~25 ms for 20 MB), cheaper than
#: the thread's cost in memory (each thread's allocations go to its own malloc arena: +40-80
#: MiB peak in bench/payloads.md)
_THREAD_ABOVE = 1024 * 1024


class Payloads:
    """An engine's payload pipeline (see the module's docstring)."""

    def __init__(self, *, codec: PayloadCodec | None = None, blobs: BlobStore | None = None,
                 offload_above: int = DEFAULT_OFFLOAD_ABOVE,
                 max_payload: int = DEFAULT_MAX_PAYLOAD) -> None:
        self.codec = codec
        self.blobs = blobs
        self.offload_above = offload_above
        self.max_payload = max_payload

    # -- in ---------------------------------------------------------------------------------

    def seal(self, text: str) -> str:
        """``text`` transformed by the codec, kept in the row (never offloaded, never checked
        against the limit): for the small values a workflow journals without waiting, such as
        ``now()``."""
        if self.codec is None:
            return text
        label, data = self._encode(text)
        return inline_text(label, data) if label else text

    async def store(self, text: str, what: str, *, limit: bool = True) -> str:
        """What to write in the row for payload ``text``: itself, its codec form, or a blob
        reference (the blob is stored before this returns). Raises
        :class:`~perdure.errors.PayloadTooLarge`, naming ``what``, over ``max_payload``
        (unless ``limit`` is off: errors, already bounded, must always be recordable)."""
        if limit:
            over = size_over(text, self.max_payload)
            if over is not None:
                raise too_large(what, over, self.max_payload)
        if self.codec is None and (self.blobs is None
                                   or size_over(text, self.offload_above) is None):
            return text  # the common case: no copy, no transformation
        if self.codec is not None and len(text) > _THREAD_ABOVE:
            label, data, key = await asyncio.to_thread(self._encode_and_hash, text)
        else:
            label, data, key = self._encode_and_hash(text)
        if self.blobs is not None and key is not None:
            await self.blobs.put(key, data)
            return BlobRef(label, key, len(data)).text()
        return inline_text(label, data) if label else text

    def _encode_and_hash(self, text: str) -> tuple[str, bytes, str | None]:
        """The codec's label and bytes, and the blob key when they are to be offloaded."""
        label, data = self._encode(text)
        offload = self.blobs is not None and len(data) > self.offload_above
        return label, data, blob_key(data) if offload else None

    def _encode(self, text: str) -> tuple[str, bytes]:
        data = text.encode("utf-8", "surrogatepass")
        if self.codec is None:
            return "", data
        try:
            label, out = self.codec.encode(data)
            return check_label(label), bytes(out)
        except Exception as exc:  # a codec's bug is a deployment matter, told as such
            raise InvalidConfiguration(f"the payload codec {self.codec!r} failed to encode: "
                                       f"{type(exc).__name__}: {exc}") from exc

    # -- out --------------------------------------------------------------------------------

    async def load(self, stored: str | None) -> str | None:
        """The JSON text of a stored payload (None stays None). Raises
        :class:`~perdure.errors.PayloadUnavailable` (:class:`~perdure.errors.DecryptionError`,
        :class:`~perdure.errors.BlobMissing`) when this process cannot read it, and
        :class:`~perdure.errors.StorageUnavailable` when the blob store cannot be reached."""
        if stored is None:
            return None
        form = parse(stored)
        if isinstance(form, str):
            return form
        if isinstance(form, Inline):
            return self._decode(form.label, form.data)
        data = await self._fetch(form)
        if form.label and len(data) > _THREAD_ABOVE:
            return await asyncio.to_thread(self._checked_decode, form, data)
        return self._checked_decode(form, data)

    def open(self, stored: str) -> str:
        """:meth:`load` for a payload written by :meth:`seal` (never a blob reference)."""
        form = parse(stored)
        if isinstance(form, str):
            return form
        if isinstance(form, BlobRef):
            raise PayloadUnavailable("a sealed value unexpectedly refers to a blob")
        return self._decode(form.label, form.data)

    async def _fetch(self, ref: BlobRef) -> bytes:
        if self.blobs is None:
            raise BlobMissing(f"this payload was offloaded to blob {ref.key} and this engine "
                              "has no blob store: pass the same Engine(blobs=...) as the "
                              "workers that wrote it", key=ref.key)
        data = await self.blobs.get(ref.key)
        if data is None:
            raise BlobMissing(f"blob {ref.key} ({ref.size:,} bytes) is missing from "
                              f"{self.blobs!r}: restore it (or point Engine(blobs=...) at "
                              "the store that holds it), then resume the run", key=ref.key)
        return data

    def _checked_decode(self, ref: BlobRef, data: bytes) -> str:
        if len(data) != ref.size or blob_key(data) != ref.key:
            raise BlobMissing(f"blob {ref.key} in {self.blobs!r} is damaged (its bytes do not "
                              "hash to its key): restore it, then resume the run", key=ref.key)
        return self._decode(ref.label, data)

    def _decode(self, label: str, data: bytes) -> str:
        codec = self.codec
        if label and codec is None:
            data = decode_steps(label, data, None)
        elif label and codec is not None:
            try:
                data = codec.decode(label, data)
            except PayloadUnavailable:
                raise
            except Exception as exc:
                raise PayloadUnavailable(f"the payload codec {self.codec!r} failed to decode "
                                         f"a {label!r} payload: {type(exc).__name__}: {exc}"
                                         ) from exc
        try:
            return data.decode("utf-8", "surrogatepass")
        except UnicodeDecodeError:
            raise PayloadUnavailable("a stored payload did not decode to UTF-8 text") from None

    # -- for listings -----------------------------------------------------------------------

    async def readable(self, stored: str | None) -> tuple[str | None, str | None]:
        """``(text, None)``, or ``(None, why)`` when this process cannot read the payload
        (for a listing that must not fail on one unreadable value)."""
        try:
            return await self.load(stored), None
        except PayloadUnavailable as exc:
            return None, describe(exc)

    async def run_info(self, row: RunRow) -> RunInfo:
        """The run's status with its arguments, result and error decoded; a payload this
        process cannot read is left out and the run marked ``unreadable`` (with why)."""
        status = RunStatus(row.status)
        error, why_error = (row.error, None)
        if row.error is not None and status in (RunStatus.FAILED, RunStatus.CANCELLED):
            error, why_error = await self.readable(row.error)
        given, why_input = await self.readable(row.input)
        output, why_output = await self.readable(row.output)
        info = RunInfo.from_row(replace(row, error=error, input=given or "", output=output))
        why = why_error or why_input or why_output
        return info if why is None else replace(info, unreadable=why)

    async def journal(self, entries: list[JournalEntry]) -> list[JournalEntry]:
        """The entries with their outputs and errors decoded (or marked unreadable)."""
        out = []
        for e in entries:
            output, why = await self.readable(e.output)
            error, why_error = await self.readable(e.error)
            why = why or why_error
            out.append(replace(e, output=output, error=error) if why is None
                       else replace(e, output=None, error=None, unreadable=why))
        return out
