"""Medical-device advisories: CSAF 2.0 and CVE JSON 5 import, version rules, matching to assets, CVSS.

Modules, one job each: `csaf` and `cve5` parse documents, `loader` finds and reads files,
`versions` reads and evaluates version rules, `products` normalises names and CPEs, `scoring`
computes CVSS, `match` turns advisories and assets into findings.
"""

from healthswarm.inventory.advisories.loader import load_advisories
from healthswarm.inventory.advisories.match import AssetIndex, match_findings

__all__ = ["AssetIndex", "load_advisories", "match_findings"]
