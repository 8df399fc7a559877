"""The reference scenario: a regional ecosystem, real advisories, synthetic attack logs, and the
`healthswarm demo` run that shows every stage on them."""

from pathlib import Path

DEMO_DIR = Path(__file__).resolve().parent
ECOSYSTEM = DEMO_DIR / "ecosystem.yaml"
ADVISORIES = DEMO_DIR / "advisories"
LOGS = DEMO_DIR / "logs"
RULES = DEMO_DIR / "rules"
STAFF = DEMO_DIR / "staff.yaml"
