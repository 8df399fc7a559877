"""Benchmark of the inventory: load + validate + index a large ecosystem, address lookups, advisory matching.

    python bench/inventory.py [--quick]

Full: 100,000 assets, 1,000,000 address lookups, all ICSMA advisories in ../shared/data/csaf-icsma
matched against the 100,000 assets. --quick: 10,000 assets and 100,000 lookups.
The address-lookup figure is compared with a plain dict lookup of exact IPs in the same run.
"""

from __future__ import annotations

import argparse
import ipaddress
import random
import sys
import tempfile
from pathlib import Path

from common import peak_rss_mib, report, timed
from healthswarm.inventory import AddressIndex, load_inventory
from healthswarm.store import Store
from healthswarm.store.inventory import replace_inventory

DEMO = Path(__file__).resolve().parent.parent / "src" / "healthswarm" / "demo" / "ecosystem.yaml"
ADVISORIES = Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "csaf-icsma"
ASSETS_PER_ORG = 1000


def generate(path: Path, n_assets: int, rng: random.Random) -> None:
    """Write a YAML ecosystem of n_assets: products drawn from the demo ecosystem (so advisories match),
    one address each, every tenth asset a /28 network, flows to a hub per organisation."""
    demo = load_inventory([DEMO])
    models = [(a.kind, a.vendor, a.product, a.version) for a in demo.assets]
    n_orgs = max(1, n_assets // ASSETS_PER_ORG)
    lines = ["organisations:"]
    lines += [f"  - {{id: org{o}, name: Hospital {o}, kind: hospital}}" for o in range(n_orgs)]
    lines.append("zones:")
    lines += [f"  - {{id: org{o}-z, organisation: org{o}, name: Network, exposure: clinical}}" for o in range(n_orgs)]
    lines.append("assets:")
    base = int(ipaddress.IPv4Address("10.0.0.0"))
    for i in range(n_assets):
        kind, vendor, product, version = rng.choice(models)
        start = base + i * 16
        address = f"{ipaddress.IPv4Address(start)}/28" if i % 10 == 0 else str(ipaddress.IPv4Address(start + 1))
        lines.append(
            f"  - {{id: a{i}, organisation: org{i // ASSETS_PER_ORG}, zone: org{i // ASSETS_PER_ORG}-z, "
            f"kind: {kind}, name: asset {i}, vendor: '{vendor}', product: '{product}', version: '{version}', "
            f"addresses: ['{address}'], criticality: {{safety: high}}}}"
        )
    lines.append("flows:")
    lines += [f"  - {{from: a{i}, to: a{(i // ASSETS_PER_ORG) * ASSETS_PER_ORG}, protocol: https}}"
              for i in range(n_assets) if i % ASSETS_PER_ORG]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def lookup_sample(n_assets: int, n: int, rng: random.Random) -> list[str]:
    """Addresses as logs would show them: 60 % inventory hosts, 20 % inside networks, 20 % unknown."""
    base = int(ipaddress.IPv4Address("10.0.0.0"))
    out = []
    for _ in range(n):
        i, roll = rng.randrange(n_assets), rng.random()
        if roll < 0.6:
            i = i if i % 10 else i + 1
            out.append(str(ipaddress.IPv4Address(base + i * 16 + 1)))
        elif roll < 0.8:
            out.append(str(ipaddress.IPv4Address(base + (i - i % 10) * 16 + rng.randrange(16))))
        else:
            out.append(f"192.168.{rng.randrange(256)}.{rng.randrange(256)}")
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    n_assets, n_lookups = (10_000, 100_000) if args.quick else (100_000, 1_000_000)
    rng = random.Random(2026)
    figures: dict[str, float | int | str] = {"assets": n_assets, "lookups": n_lookups}
    with tempfile.TemporaryDirectory() as tmp:
        yaml_path = Path(tmp) / "ecosystem.yaml"
        generate(yaml_path, n_assets, rng)
        figures["yaml_mib"] = round(yaml_path.stat().st_size / 2**20, 1)
        inventory, figures["load_validate_s"] = timed(lambda: load_inventory([yaml_path]))
        figures["load_validate_peak_rss_mib"] = round(peak_rss_mib(), 1)
        index, figures["index_build_s"] = timed(lambda: AddressIndex(inventory.assets))

        store = Store.open(f"sqlite:///{tmp}/bench.db")

        def store_load() -> None:
            with store.transaction() as conn:
                replace_inventory(conn, inventory)

        _, figures["sqlite_store_s"] = timed(store_load)
        store.close()

    addresses = lookup_sample(n_assets, n_lookups, rng)
    exact = {a.addresses[0]: a.id for a in inventory.assets}
    _, figures["dict_lookups_s"] = timed(lambda: [exact.get(ip) for ip in addresses])
    resolved, figures["index_lookups_s"] = timed(lambda: [index.lookup(ip) for ip in addresses])
    figures["index_vs_dict_ratio"] = round(figures["index_lookups_s"] / figures["dict_lookups_s"], 2)
    figures["lookups_per_s"] = round(n_lookups / figures["index_lookups_s"])
    figures["resolved_share"] = round(sum(r is not None for r in resolved) / n_lookups, 3)

    rows = [
        ("assets", f"{n_assets:,}"),
        ("YAML size", f"{figures['yaml_mib']} MiB"),
        ("load + validate", f"{figures['load_validate_s']:.2f} s"),
        ("peak RSS after load", f"{figures['load_validate_peak_rss_mib']} MiB"),
        ("address index build", f"{figures['index_build_s']:.3f} s"),
        ("store in SQLite (one transaction)", f"{figures['sqlite_store_s']:.2f} s"),
        (f"{n_lookups:,} lookups, dict of exact IPs (baseline)", f"{figures['dict_lookups_s']:.3f} s"),
        (f"{n_lookups:,} lookups, address index", f"{figures['index_lookups_s']:.3f} s"),
        ("index / dict time ratio", f"{figures['index_vs_dict_ratio']}×"),
        ("resolved share (hosts + networks)", f"{figures['resolved_share']:.1%}"),
    ]
    rows += match_advisories(inventory, figures)
    figures["peak_rss_mib"] = round(peak_rss_mib(), 1)
    rows.append(("peak RSS", f"{figures['peak_rss_mib']} MiB"))
    report("inventory", figures, rows, args.quick)
    return 0


def match_advisories(inventory, figures: dict) -> list[tuple[str, str]]:  # type: ignore[no-untyped-def]
    if not ADVISORIES.exists():
        print(f"skipping advisory matching: {ADVISORIES} not found", file=sys.stderr)
        return []
    from healthswarm.inventory.advisories import load_advisories, match_findings

    (advisories, problems), figures["advisories_load_s"] = timed(lambda: load_advisories([ADVISORIES]))
    findings, figures["match_s"] = timed(lambda: match_findings(advisories, inventory.assets))
    figures["advisories"] = len(advisories)
    figures["advisory_problems"] = len(problems)
    figures["findings"] = len(findings)
    return [
        (f"load {len(advisories)} CSAF advisories", f"{figures['advisories_load_s']:.2f} s"),
        (f"match against {len(inventory.assets):,} assets", f"{figures['match_s']:.2f} s"),
        ("findings", f"{len(findings):,}"),
    ]


if __name__ == "__main__":
    sys.exit(main())
