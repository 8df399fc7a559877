"""A workspace holding the demo ecosystem's inventory and the config of an agent that follows a folder: what the
in-process agent tests start from."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from healthswarm.agent.config import AgentConfig, parse_config
from healthswarm.config import Settings
from healthswarm.inventory import load_inventory
from healthswarm.store import Store
from healthswarm.store.inventory import replace_inventory

DEMO = Path(__file__).resolve().parent.parent / "src" / "healthswarm" / "demo"


def demo_agent_setup(base: Path, **sections: dict[str, Any]) -> tuple[Settings, AgentConfig, Path]:
    """(settings of `base/ws` with the demo inventory stored, the config of St. Aurelia's agent following
    `base/logs` with `sections` over it, that folder)."""
    settings = Settings.load(base / "ws")
    settings.ensure_workspace()
    store = Store.open(settings.db_url)
    with store.transaction() as conn:
        replace_inventory(conn, load_inventory([DEMO / "ecosystem.yaml"]))
    store.close()
    logs = base / "logs"
    logs.mkdir()
    config = parse_config({"agent": {"health": "", "status_file": False, "organisation": "st-aurelia"},
                           "sources": {"files": [{"paths": ["logs"], "rescan": 0.2}]}, **sections}, "test", base)
    return settings, config, logs
