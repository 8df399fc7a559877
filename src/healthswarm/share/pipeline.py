"""Export and import as one pipeline each.

export: records → STIX (fast builder) → sanitise (policy) → leak check (blocks on any hit) → sign.
import: verify the signature against the trust store (unsigned, tampered, replayed, expired: refused)
→ validate (stix2-validator) → parse → indicators, weighted by nothing yet (peer reputation is later).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from healthswarm.model import Alert, Asset, Finding, Indicator
from healthswarm.share.leakcheck import Hit, LeakChecker
from healthswarm.share.reputation import ReputationStore
from healthswarm.share.sanitise import Policy, Sanitiser, SanitiseReport
from healthswarm.share.secrets import Pseudonymiser, load_or_create_secret
from healthswarm.share.sensitive import Sensitive
from healthswarm.share.signing import (
    DEFAULT_VALIDITY,
    Peer,
    SeenStore,
    TrustStore,
    load_or_create_keys,
    sign_bundle,
    strip_signature,
    verify_bundle,
)
from healthswarm.share.stix_export import ExportContext, build_bundle
from healthswarm.share.stix_import import ImportResult, import_bundle


class LeakError(Exception):
    """The leak check found sensitive values: the bundle must not leave."""

    def __init__(self, hits: list[Hit]) -> None:
        self.hits = hits
        super().__init__(f"leak check: {len(hits)} sensitive value(s) found; export blocked")


@dataclass
class ExportResult:
    bundle: dict[str, Any]
    report: SanitiseReport
    skipped: list[str] = field(default_factory=list)

    @property
    def object_count(self) -> int:
        return len(self.bundle["objects"])


@dataclass
class Exporter:
    """Everything an export needs, prepared once (automata, keys) and reusable for many bundles."""

    workspace: Path
    organisation: str
    policy: Policy
    known: Sensitive
    pap: str | None = None
    validity: timedelta = DEFAULT_VALIDITY

    def __post_init__(self) -> None:
        self.pseudo = Pseudonymiser(load_or_create_secret(self.workspace))
        self.keys = load_or_create_keys(self.workspace)
        self.identity_name = self.pseudo.organisation(self.organisation or "local")
        self.checker = LeakChecker(self.known)
        self.sanitiser = Sanitiser(self.policy, self.known, self.pseudo)

    def export(self, *, alerts: Iterable[Alert] = (), findings: Iterable[Finding] = (),
               assets: Mapping[str, Asset] | None = None, indicators: Iterable[Indicator] = (),
               incidents: Iterable[Mapping[str, Any]] = (), now: datetime | None = None,
               sign: bool = True) -> ExportResult:
        ctx = ExportContext(self.identity_name, self.pseudo.derive("stix-ids"), tlp=self.policy.tlp, pap=self.pap,
                            now=now or datetime.now(UTC))
        raw, skipped = build_bundle(ctx, alerts=alerts, findings=findings, assets=assets, indicators=indicators,
                                    incidents=incidents)
        sanitiser = self.sanitiser
        clean = sanitiser.bundle(raw)
        hits = self.checker.check(clean)
        if hits:
            raise LeakError(hits)
        if sign:
            identity = next(o["id"] for o in clean["objects"] if o["type"] == "identity")
            clean = sign_bundle(clean, self.keys, identity, self.validity, now)
        return ExportResult(clean, sanitiser.report, skipped)


@dataclass
class ImportOutcome:
    peer: Peer
    result: ImportResult


def import_signed(bundle: Any, workspace: Path, source: str = "<bundle>", now: datetime | None = None,
                  remember: bool = True) -> ImportOutcome:
    """Verify (raises VerificationError), then validate and parse (raises InputError)."""
    trust = TrustStore.in_workspace(workspace)
    peer = verify_bundle(bundle, trust, None, now)
    result = import_bundle(strip_signature(bundle), source)
    if remember:  # only an accepted bundle is remembered (a rejected one may come again, fixed)
        verify_bundle(bundle, trust, SeenStore.in_workspace(workspace), now)
    reputation = ReputationStore.in_workspace(workspace).get(peer.key_id)
    for indicator in result.indicators:  # the peer's word, weighted by how often it proved right
        indicator.extra = {**indicator.extra, "peer_key": peer.key_id, "peer_confidence": indicator.confidence,
                           "peer_reputation": round(reputation.score, 3)}
        indicator.confidence = reputation.weigh(indicator.confidence)
    return ImportOutcome(peer, result)
