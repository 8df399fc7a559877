"""Import as one pipeline (export is the egress gate's: `share/egress.py`).

import: verify the signature against the trust store (unsigned, tampered, replayed, expired: refused)
→ validate (stix2-validator) → parse → indicators, weighted by nothing yet (peer reputation is later).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from healthswarm.share.reputation import ReputationStore
from healthswarm.share.signing import (
    Peer,
    SeenStore,
    TrustStore,
    strip_signature,
    verify_bundle,
)
from healthswarm.share.stix_import import ImportResult, import_bundle


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
