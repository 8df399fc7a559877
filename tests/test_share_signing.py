"""Signatures: key files, RFC 8785 canonical form, and rejection of unsigned, tampered, replayed, expired bundles."""

from __future__ import annotations

import copy
import stat
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import rfc8785

from healthswarm.model import Indicator
from healthswarm.share.canonical import canonical
from healthswarm.share.pipeline import import_signed
from healthswarm.share.signing import (
    SIGNATURE,
    SeenStore,
    TrustStore,
    VerificationError,
    load_or_create_keys,
    sign_document,
    verify_bundle,
)
from healthswarm.share.stix_export import ExportContext, build_bundle

NOW = datetime(2026, 11, 29, 4, 0, tzinfo=UTC)


def bundle() -> dict:
    ctx = ExportContext("org", b"x" * 32, now=NOW)
    indicators = [Indicator("evil.example", "domain", NOW, NOW), Indicator("203.0.113.5", "ipv4", NOW, NOW),
                  Indicator("naïve ünïcode \u2028 \x01.example", "domain", NOW, NOW)]
    return build_bundle(ctx, indicators=indicators)[0]


@pytest.fixture()
def parties(tmp_path: Path) -> tuple[Path, Path]:
    sender, receiver = tmp_path / "sender", tmp_path / "receiver"
    keys = load_or_create_keys(sender)
    TrustStore.in_workspace(receiver).trust("St Aurelia", keys.public_text)
    return sender, receiver


def test_keys_are_created_once_with_private_mode(tmp_path: Path) -> None:
    first = load_or_create_keys(tmp_path)
    again = load_or_create_keys(tmp_path)
    assert first.public_raw == again.public_raw
    private = tmp_path / "keys" / "ed25519.key"
    assert stat.S_IMODE(private.stat().st_mode) == 0o600
    private.chmod(0o644)
    with pytest.raises(ValueError, match="readable by others"):
        load_or_create_keys(tmp_path)


class Text(str):
    """A str subclass: it must not take the fast path on trust."""


@pytest.mark.parametrize("value", [
    {"b": [1, 2.5, {"é": "x"}], "a": "\x1f\u2028"}, {"\ue000": 1, "\U0001f600": 2},
    # numbers: I-JSON's integer edge, floats that orjson writes otherwise (1.0, 1e+21, 5e-324, -0.0)
    {"n": [2**53 - 1, -(2**53 - 1), 0, -1]}, {"f": [1.0, 1e21, 1e-7, 5e-324, -0.0, 0.1, 123456789.125]},
    {"t": True, "f": False, "z": None, "s": ["", "\x00\x7f\"\\/", "\ud7ff\ue000\U0010ffff"]},
    [{"k": Text("a")}], {"k": (1, "x")}, {"z": 1, "Z": 2, "a": {"b": [[], {}]}},
])
def test_canonical_form_is_rfc8785(value: object) -> None:
    assert canonical(value) == rfc8785.dumps(value)


def test_canonical_form_of_a_bundle_is_rfc8785() -> None:
    exported = bundle()
    assert canonical(exported) == rfc8785.dumps(exported)


def test_integers_beyond_i_json_are_refused() -> None:
    with pytest.raises(ValueError, match="RFC 8785"):
        canonical({"n": 2**53})


def test_sign_verify_round_trip(parties: tuple[Path, Path]) -> None:
    sender, receiver = parties
    signed = sign_document(bundle(), load_or_create_keys(sender), "identity--x", now=NOW)
    peer = verify_bundle(signed, TrustStore.in_workspace(receiver), now=NOW + timedelta(hours=1))
    assert peer.name == "St Aurelia"


def test_rejections(parties: tuple[Path, Path]) -> None:
    sender, receiver = parties
    keys = load_or_create_keys(sender)
    trust = TrustStore.in_workspace(receiver)
    signed = sign_document(bundle(), keys, "identity--x", now=NOW)

    def reason(candidate: dict, when: datetime = NOW, seen: SeenStore | None = None) -> str:
        with pytest.raises(VerificationError) as caught:
            verify_bundle(candidate, trust, seen, now=when)
        return caught.value.reason

    unsigned = {k: v for k, v in signed.items() if k != SIGNATURE}
    assert reason(unsigned) == "unsigned"
    tampered = copy.deepcopy(signed)
    next(o for o in tampered["objects"] if o["type"] == "indicator")["confidence"] = 100
    assert reason(tampered) == "tampered"
    extended = copy.deepcopy(signed)
    extended[SIGNATURE]["expires"] = "2027-01-01T00:00:00.000Z"
    assert reason(extended) == "tampered"
    assert reason(signed, NOW + timedelta(days=8)) == "expired"
    assert reason(signed, NOW - timedelta(hours=1)) == "not-yet-valid"
    stranger = sign_document(bundle(), load_or_create_keys(receiver / "other"), "identity--y", now=NOW)
    assert reason(stranger) == "untrusted"
    seen = SeenStore.in_workspace(receiver)
    verify_bundle(signed, trust, seen, now=NOW)
    assert reason(signed, seen=seen) == "replayed"
    again = sign_document(signed, keys, "identity--x", now=NOW)  # new nonce, same bundle id
    assert reason(again, seen=seen) == "replayed"


def test_import_signed_validates_then_remembers(parties: tuple[Path, Path]) -> None:
    sender, receiver = parties
    signed = sign_document(bundle(), load_or_create_keys(sender), "identity--x")
    outcome = import_signed(signed, receiver)
    assert {i.value for i in outcome.result.indicators} >= {"evil.example", "203.0.113.5"}
    with pytest.raises(VerificationError, match="replayed"):
        import_signed(signed, receiver)


def test_peer_reputation_weights_incoming_confidence(parties: tuple[Path, Path]) -> None:
    from healthswarm.share.reputation import Reputation, ReputationStore

    assert Reputation("k").score == 0.5 and Reputation("k").weigh(80) == 80
    assert Reputation("k", confirmed=0, refuted=6).weigh(80) == 20
    assert Reputation("k", confirmed=50, refuted=0).weigh(90) == 100
    sender, receiver = parties
    keys = load_or_create_keys(sender)
    store = ReputationStore.in_workspace(receiver)
    store.record(keys.key_id, refuted=2)
    faded = store.record(keys.key_id, refuted=0)
    assert faded.refuted == pytest.approx(2 * 0.98)
    signed = sign_document(bundle(), keys, "identity--x")
    outcome = import_signed(signed, receiver)
    domain = next(i for i in outcome.result.indicators if i.value == "evil.example")
    assert domain.extra["peer_confidence"] == 50 and domain.extra["peer_key"] == keys.key_id
    assert domain.confidence == round(50 * faded.score * 2) < 50
