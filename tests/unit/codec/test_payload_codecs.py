"""Payload codecs (AES-GCM with key rotation, zstd), the stored forms, limits, bounded errors."""

from __future__ import annotations

import base64
import json
import os
import sys
from typing import Any

import pytest

import perdure
from perdure import (
    Compressed,
    DecryptionError,
    Encrypted,
    InvalidConfiguration,
    PayloadTooLarge,
    PayloadUnavailable,
)
from perdure.codec.envelope import BlobRef, Inline, parse
from perdure.codec.functions import FunctionCodec
from perdure.codec.limits import human_size
from perdure.records import ErrorInfo, bound_text
from perdure.workflow.payloads import Payloads

K1, K2 = os.urandom(32), os.urandom(32)
SECRET = "card 4111-1111-1111-1111"


def test_encrypted_round_trip_names_its_key_and_hides_the_text() -> None:
    codec = Encrypted(keys={"k1": K1}, current="k1")
    label, data = codec.encode(SECRET.encode())
    assert label == "aesgcm=k1"
    assert SECRET.encode() not in data
    assert codec.decode(label, data) == SECRET.encode()
    # A fresh nonce each time: the same value never encrypts to the same bytes.
    assert codec.encode(SECRET.encode())[1] != data
    assert "k1" in repr(codec) and K1.hex() not in repr(codec)


def test_keys_rotate_without_re_encrypting_history() -> None:
    old = Encrypted(keys={"k1": K1}, current="k1")
    label, data = old.encode(b'"before"')
    new = Encrypted(keys={"k2": K2, "k1": K1}, current="k2")
    assert new.decode(label, data) == b'"before"'  # history names k1, still in the ring
    label2, data2 = new.encode(b'"after"')
    assert label2 == "aesgcm=k2"
    only_new = Encrypted(keys={"k2": K2}, current="k2")
    assert only_new.decode(label2, data2) == b'"after"'
    with pytest.raises(DecryptionError, match="'k1'") as missing:
        only_new.decode(label, data)
    assert missing.value.key_id == "k1"


def test_a_wrong_key_or_altered_data_is_a_typed_error_naming_the_key() -> None:
    codec = Encrypted(keys={"k1": K1}, current="k1")
    label, data = codec.encode(b"[1,2,3]")
    impostor = Encrypted(keys={"k1": K2}, current="k1")
    with pytest.raises(DecryptionError, match="'k1' does not decrypt") as wrong:
        impostor.decode(label, data)
    assert wrong.value.key_id == "k1"
    with pytest.raises(DecryptionError):
        codec.decode(label, data[:-1] + bytes([data[-1] ^ 1]))
    with pytest.raises(DecryptionError):
        codec.decode(label, data[:10])
    # The label is authenticated: dropping or faking a step is detected.
    packed = Encrypted(keys={"k1": K1}, current="k1", compress_above=0)
    label, data = packed.encode(b"x" * 1000)
    assert label == "zstd+aesgcm=k1"
    with pytest.raises(DecryptionError):
        packed.decode("aesgcm=k1", data)


@pytest.mark.parametrize(("keys", "current", "match"), [
    ({}, "k1", "non-empty dict"),
    ([("k1", K1)], "k1", "non-empty dict"),
    ({"k1": K1[:15]}, "k1", "15 bytes long"),
    ({"k1": K1 + b"x"}, "k1", "33 bytes long"),
    ({"k1": K1.hex()}, "k1", "must be bytes, not str .*bytes.fromhex"),
    ({"k1": 42}, "k1", "must be bytes, not int"),
    ({"bad id": K1}, "bad id", "invalid key id"),
    ({"": K1}, "", "invalid key id"),
    ({"k1": K1}, "k3", "current key 'k3' is not among the keys"),
    ({"k1": K1}, None, "current key None"),
])
def test_malformed_keys_are_rejected_at_configuration(keys: Any, current: Any,
                                                      match: str) -> None:
    with pytest.raises(InvalidConfiguration, match=match):
        Encrypted(keys=keys, current=current)


def test_bad_compression_settings_are_rejected() -> None:
    with pytest.raises(InvalidConfiguration, match="compress_above"):
        Encrypted(keys={"k1": K1}, current="k1", compress_above=-1)
    with pytest.raises(InvalidConfiguration, match="zstd level"):
        Encrypted(keys={"k1": K1}, current="k1", compress_above=10, compression_level=99)
    with pytest.raises(InvalidConfiguration, match="above"):
        Compressed(above=-5)


def test_missing_packages_name_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "cryptography.hazmat.primitives.ciphers.aead", None)
    with pytest.raises(InvalidConfiguration, match=r"perdure\[crypto\]"):
        Encrypted(keys={"k1": K1}, current="k1")
    monkeypatch.undo()
    label, data = Compressed(above=0).encode(b"a" * 500)
    monkeypatch.setitem(sys.modules, "zstandard", None)
    with pytest.raises(InvalidConfiguration, match=r"perdure\[zstd\]"):
        Compressed()
    with pytest.raises(InvalidConfiguration, match=r"perdure\[zstd\]"):
        Encrypted(keys={"k1": K1}, current="k1", compress_above=100)
    # Reading a compressed payload without the package: unreadable here, named.
    with pytest.raises(PayloadUnavailable, match=r"perdure\[zstd\]"):
        Payloads().open(f"~inline:{label}:{base64.b64encode(data).decode()}")


def test_compressed_only_above_the_threshold_and_only_when_it_helps() -> None:
    codec = Compressed(above=100)
    assert codec.encode(b"x" * 100) == ("", b"x" * 100)
    label, data = codec.encode(b"x" * 10_000)
    assert label == "zstd" and len(data) < 100
    assert codec.decode(label, data) == b"x" * 10_000
    noise = os.urandom(5000)
    assert codec.encode(noise) == ("", noise)  # incompressible: stored as it is


async def test_stored_forms() -> None:
    plain = Payloads()
    assert await plain.store('{"a":1}', "x") == '{"a":1}'
    assert parse('{"a":1}') == '{"a":1}'
    sealed = Payloads(codec=Encrypted(keys={"k1": K1}, current="k1"))
    text = await sealed.store(json.dumps(SECRET), "x")
    assert text.startswith("~inline:aesgcm=k1:") and SECRET not in text
    assert isinstance(parse(text), Inline)
    assert await sealed.load(text) == json.dumps(SECRET)
    assert await sealed.load('"written before encryption"') == '"written before encryption"'
    assert isinstance(parse("~blob:aesgcm=k1:" + "ab" * 32 + ":12"), BlobRef)
    for damaged in ("~inline:aesgcm=k1:not base64!", "~blob:x:nothex:1", "~what"):
        with pytest.raises(PayloadUnavailable, match="damaged"):
            await sealed.load(damaged)
    # Without the codec, an encrypted value says which key it needs.
    with pytest.raises(DecryptionError, match="no codec") as err:
        await plain.load(text)
    assert err.value.key_id == "k1"
    assert await plain.readable(text) == (None, "encrypted (key 'k1')")


def test_function_codec_names_the_argument_over_the_limit() -> None:
    def fn(name: str, data: bytes, flag: bool = False) -> bytes:
        return data

    codec = FunctionCodec(fn)
    assert codec.encode_args(("a", b"x" * 100), {}, limit=1000)
    with pytest.raises(PayloadTooLarge, match=r"the largest, 'data', is 1\.3 MiB") as err:
        codec.encode_args(("a", b"x" * 1_000_000), {}, limit=1_000_000)
    assert err.value.size is not None and err.value.size > 1_000_000
    assert err.value.limit == 1_000_000 and "fn" in err.value.what
    with pytest.raises(PayloadTooLarge, match=r"the result of .*fn is 1\.3 MiB"):
        codec.encode_result(b"x" * 1_000_000, limit=1_000_000)

    def one(data: str) -> None:
        pass

    with pytest.raises(perdure.SerializationError, match=r"argument 'data' of .*one is 2\.0 KiB"):
        FunctionCodec(one).encode_args(("é" * 1000,), {}, limit=1024)


def test_human_sizes() -> None:
    assert human_size(512) == "512 bytes"
    assert human_size(20 * 1024 * 1024) == "20.0 MiB (20,971,520 bytes)"


def test_error_messages_and_tracebacks_are_bounded_head_and_tail() -> None:
    message = "START" + "m" * 5_000_000 + "END"
    try:
        raise ValueError(message)
    except ValueError as exc:
        info = ErrorInfo.from_exception(exc)
    assert len(info.message) < 17_000 and len(info.traceback) < 33_000
    assert info.message.startswith("START") and info.message.endswith("END")
    assert "characters cut" in info.message
    assert "Traceback" in info.traceback and info.traceback.rstrip().endswith("END")
    assert len(info.to_json()) < 60_000  # not 10 MB: the message is no longer stored twice
    assert bound_text("short", 100) == "short"
    cut = bound_text("a" * 1000, 200)
    assert cut.startswith("a") and "864 characters cut" in cut
