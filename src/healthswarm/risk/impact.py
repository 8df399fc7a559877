"""Healthcare impact of an attacker state: patient safety, confidentiality of patient records and
availability of clinical services, each in [0, 1], weighted into one harm score.

- safety: the asset's safety criticality; a medical device someone can *disrupt* already hurts
  patients at full weight, other assets at half.
- confidentiality: the larger of the confidentiality criticality and the patient records held
  (log scale: 10^6 records = 1).
- availability: the availability criticality, and how many other assets depend on it (cascade).
What each privilege exposes is in `EXPOSURE`; weights in `ImpactWeights`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from healthswarm.model import Asset
from healthswarm.risk.states import Privilege

# share of each dimension an attacker holding this privilege can damage
EXPOSURE: dict[Privilege, tuple[float, float, float]] = {  # (safety, confidentiality, availability)
    Privilege.ADMIN: (1.0, 1.0, 1.0),
    Privilege.USER: (0.5, 1.0, 0.5),
    Privilege.DISRUPT: (0.5, 0.0, 1.0),
    Privilege.PHYSICAL: (0.0, 0.0, 0.0),
    Privilege.NONE: (0.0, 0.0, 0.0),
}


@dataclass(frozen=True, slots=True)
class ImpactWeights:
    safety: float = 0.5
    confidentiality: float = 0.3
    availability: float = 0.2


@dataclass(frozen=True, slots=True)
class Impact:
    safety: float
    confidentiality: float
    availability: float
    harm: float

    def as_dict(self) -> dict[str, float]:
        return {"safety": round(self.safety, 4), "confidentiality": round(self.confidentiality, 4),
                "availability": round(self.availability, 4), "harm": round(self.harm, 4)}


def records_weight(records: int | None) -> float:
    return min(1.0, math.log10(1 + records) / 6) if records else 0.0


def impact(asset: Asset, privilege: Privilege, weights: ImpactWeights = ImpactWeights()) -> Impact:
    s_share, c_share, a_share = EXPOSURE[privilege]
    if privilege is Privilege.DISRUPT and asset.is_medical_device:
        s_share = 1.0
    safety = s_share * asset.criticality.safety / 4
    confidentiality = c_share * max(asset.criticality.confidentiality / 4, records_weight(asset.records))
    availability = a_share * asset.criticality.availability / 4
    harm = (weights.safety * safety + weights.confidentiality * confidentiality
            + weights.availability * availability)
    return Impact(safety, confidentiality, availability, harm)


def worst_harm(asset: Asset, weights: ImpactWeights = ImpactWeights()) -> float:
    """Harm if the attacker becomes admin: the prize of a target in campaign searches."""
    return impact(asset, Privilege.ADMIN, weights).harm
