"""Risk: the attack graph, exact and ant-colony path search, cascade across dependencies and
organisations, incremental live risk from footholds, and the choice of mitigations.

Modules, one job each (see docs/risk.md): `vector`, `likelihood`, `reach`, `facts`, `states`,
`techniques` (rule registry), `profiles` (attacker registry), `attack_graph`, `paths`, `aco`,
`campaign`, `impact`, `cascade`, `whatif`, `assess`, `controls` (control-kind registry), `mitigate`,
`engine` (which method for which question), `inputs`.
"""

from healthswarm.risk.attack_graph import AttackGraph, build_attack_graph, resolve_targets
from healthswarm.risk.paths import AttackPath, PathResult, k_best_paths
from healthswarm.risk.profiles import PROFILES, Attacker, Profile
from healthswarm.risk.whatif import LiveRisk, what_if

__all__ = ["PROFILES", "AttackGraph", "AttackPath", "Attacker", "LiveRisk", "PathResult", "Profile",
           "build_attack_graph", "k_best_paths", "resolve_targets", "what_if"]
