"""Discovery: devices, services and flows observed in events, fingerprinted, against the declared inventory.

Modules, one job each (see docs/discover.md): `observe` (the streaming aggregates: `Discovery.observe`),
`protocols` (an observation in the inventory's protocol words), `fingerprints` (YAML rules per vendor
family, MAC OUI from netaddr's IEEE table), `diff` (the comparison with the inventory), `patch` (a YAML
patch in the inventory's schema, and `merge_patch`), `alerts` (undeclared flows into safety-critical
devices, ATT&CK for ICS), `service` (what the faces and the agent call), `simulate` (a day of the
demo ecosystem's traffic in real formats, for the evaluation).
"""

from healthswarm.inventory.discover.diff import DiscoveryReport, compare
from healthswarm.inventory.discover.fingerprints import Fingerprints, load_fingerprints
from healthswarm.inventory.discover.observe import Discovery

__all__ = ["Discovery", "DiscoveryReport", "Fingerprints", "compare", "load_fingerprints"]
