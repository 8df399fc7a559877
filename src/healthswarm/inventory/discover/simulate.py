"""A day of an ecosystem's traffic, written in real formats, for measuring discovery against ground truth.

The demo's logs tell an attack story on a few dozen flows; the inventory declares 231 flows and 187
assets. To measure whether discovery finds removed parts of the inventory again, every declared flow
needs traffic. `simulate` writes it from the *full* inventory, deterministically from a seed:

- Suricata EVE `flow` records for every declared flow (1-6 connections, client port ephemeral, the
  application protocol Suricata would name), `http` records with the device's user agent on its HTTP(S)
  flows, and a `dhcp` record for every workstation and medical device (MAC with an OUI of its vendor
  from netaddr's IEEE table, host name, vendor class);
- Suricata `flow` records for what the inventory implies without declaring a flow: the talking
  dependencies (identity → Kerberos, data to a LIS or analyser → HL7, to a PACS → DICOM, else HTTPS),
  every addressed asset's DNS to its organisation's first domain controller, and replication between
  an organisation's domain controllers;
- DICOM association records (calling/called AE title, implementation version name) on DICOM flows;
- `contradict` assets announce another version than the one declared (the ground truth of version
  contradictions).

The announcements come from the fingerprint files' own `examples` (the version substituted by the
asset's), so this measures the pipeline — ingest, aggregation, classification, address resolution, the
diff — not how well the example patterns match real devices in the field: docs/discover.md says so.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from pathlib import Path

import orjson

from healthswarm.inventory.advisories.products import vendor_keys
from healthswarm.inventory.discover.fingerprints import BUILTIN, fingerprint_files, rule_examples
from healthswarm.model import MEDICAL_DEVICE_KINDS, Asset, Flow, Inventory

_DEFAULT_PORT = {"https": 443, "http": 80, "smb": 445, "kerberos": 88, "ldap": 389, "rdp": 3389, "ssh": 22,
                 "dicom": 104, "hl7v2": 2575, "fhir": 443, "smtp": 25, "dns": 53, "sql": 1433, "mqtt": 1883,
                 "vpn": 443, "wado": 443, "ntp": 123, "syslog": 514, "snmp": 161, "tcp": 9000}
_APP = {"https": "tls", "fhir": "tls", "wado": "tls", "vpn": "tls", "http": "http", "smb": "smb",
        "kerberos": "krb5", "ldap": "ldap", "rdp": "rdp", "ssh": "ssh", "smtp": "smtp", "dns": "dns"}
_UDP = frozenset({"dns", "ntp", "syslog", "snmp"})
DHCP_KINDS = MEDICAL_DEVICE_KINDS | {"workstation", "clinical-workstation", "laptop", "mobile-device"}


@dataclass
class Simulated:
    files: list[Path]
    flow_records: int
    announcements: int
    contradicted: dict[str, tuple[str, str]] = field(default_factory=dict)  # asset → (declared, announced)


@lru_cache(maxsize=1)
def _oui_table() -> list[tuple[str, str]]:
    try:
        import netaddr.eui as eui
    except ImportError:  # pragma: no cover
        return []
    text = (Path(eui.__file__).parent / "oui.txt").read_text(encoding="utf-8", errors="replace")
    return [(m.group(1).replace("-", ":").lower(), m.group(2).strip())
            for m in re.finditer(r"^([0-9A-F]{2}-[0-9A-F]{2}-[0-9A-F]{2})\s+\(hex\)\s+(.+)$", text, re.M)]


@lru_cache(maxsize=256)
def _oui_for(pattern: str) -> str | None:
    rx = re.compile(pattern, re.IGNORECASE)
    return next((prefix for prefix, org in _oui_table() if rx.search(org)), None)


def _address(asset: Asset) -> str | None:
    for text in asset.addresses:
        if "/" not in text:
            return text
    return None


def _with_version(example: tuple[str, str], version: str) -> str:
    """The example announcement with the span its rule reads as the version replaced by `version`."""
    text, pattern = example
    m = re.search(pattern, text, re.IGNORECASE)
    if not version or m is None or "version" not in m.groupdict() or m.group("version") is None:
        return text
    compact = version.replace(" ", "")
    if re.fullmatch(r"\d{3}", m.group("version")):  # OFFIS_DCMTK_365 writes 3.6.5 without the dots
        compact = compact.replace(".", "")
    return text[: m.start("version")] + compact + text[m.end("version"):]


def _other_version(version: str) -> str:
    """A different version of the same shape: the first number one higher (9.33.1 → 10.33.1)."""
    return re.sub(r"\d+", lambda m: str(int(m.group()) + 1), version, count=1)


class _Announcer:
    def __init__(self, files: list[Path]) -> None:
        self.examples = rule_examples(files)
        self.mac_patterns: list[tuple[str, str]] = []
        import yaml

        for path in files:
            data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
            for rule in data.get("rules") or []:
                if rule.get("signal") == "mac.vendor":
                    self.mac_patterns.append((rule.get("vendor") or data.get("vendor") or "", rule["pattern"]))

    def of(self, asset: Asset, signal: str) -> tuple[str, str] | None:
        """(example, its rule's pattern) for the asset's vendor and product, else the vendor's generic one."""
        keys = set(vendor_keys(asset.vendor)) if asset.vendor else set()
        best = None
        for sig, example, vendor, product, pattern in self.examples:
            if sig != signal or not keys & set(vendor_keys(vendor)):
                continue
            if product and asset.product and product.lower() == asset.product.lower():
                return example, pattern
            if not product and best is None:
                best = example, pattern
        return best

    def oui(self, asset: Asset) -> str | None:
        keys = set(vendor_keys(asset.vendor)) if asset.vendor else set()
        for vendor, pattern in self.mac_patterns:
            if keys & set(vendor_keys(vendor)) and (prefix := _oui_for(pattern)) is not None:
                return prefix
        return None


def simulate(inventory: Inventory, folder: Path, seed: int = 7, day: datetime | None = None,
             contradict: int = 5) -> Simulated:
    rng = random.Random(seed)
    day = day or datetime(2026, 11, 26, tzinfo=UTC)
    folder.mkdir(parents=True, exist_ok=True)
    announcer = _Announcer(fingerprint_files([BUILTIN]))
    assets = {a.id: a for a in inventory.assets}
    eve: list[tuple[datetime, bytes]] = []
    dicom: list[tuple[datetime, bytes]] = []
    flow_id = 1_000_000_000_000
    result = Simulated([], 0, 0)

    # assets that announce another version than declared (only those whose user agent carries one)
    def versioned(a: Asset) -> bool:
        ua = announcer.of(a, "http.user_agent")
        return ua is not None and "(?P<version>" in ua[1]

    candidates = [a for a in inventory.assets if a.version and _address(a) and versioned(a)
                  and any(f.source == a.id and f.protocol in ("https", "http") for f in inventory.flows)]
    for a in rng.sample(candidates, min(contradict, len(candidates))):
        result.contradicted[a.id] = (a.version, _other_version(a.version))

    def stamp(ts: datetime) -> str:
        return ts.strftime("%Y-%m-%dT%H:%M:%S.%f") + "+0000"

    def announced_version(a: Asset) -> str:
        return result.contradicted.get(a.id, (a.version, a.version))[1]

    conversations: list[Flow] = list(inventory.flows)
    pairs = {(f.source, f.target) for f in inventory.flows}
    for dep in inventory.dependencies:
        if dep.kind in ("service", "data", "identity", "vendor-access") and (dep.source, dep.target) not in pairs:
            target = assets.get(dep.target)
            kind = target.kind if target is not None else ""
            protocol, port = (("kerberos", 88) if dep.kind == "identity" else ("hl7v2", 2575)
                              if kind in ("lis", "lab-analyser", "interface-engine") else ("dicom", 104)
                              if kind in ("pacs", "dicom-router") else ("https", 443))
            conversations.append(Flow(dep.source, dep.target, protocol, port))
    controllers: dict[str, list[str]] = {}
    for a in inventory.assets:
        if a.kind == "domain-controller" and _address(a):
            controllers.setdefault(a.organisation, []).append(a.id)
    for a in inventory.assets:
        dcs = controllers.get(a.organisation, [])
        if dcs and a.id != dcs[0] and _address(a):
            conversations.append(Flow(a.id, dcs[0], "dns", 53))
    for dcs in controllers.values():
        conversations += [Flow(dc, dcs[0], "ldap", 389) for dc in dcs[1:]]

    for flow in conversations:
        src, dst = assets.get(flow.source), assets.get(flow.target)
        if src is None or dst is None or (sip := _address(src)) is None or (dip := _address(dst)) is None:
            continue
        port = flow.port or _DEFAULT_PORT.get(flow.protocol, 9000)
        udp = flow.protocol in _UDP
        for _ in range(rng.randint(1, 6)):
            start = day + timedelta(seconds=rng.uniform(0, 86_000))
            end = start + timedelta(seconds=rng.uniform(0.1, 30))
            flow_id += 1
            sport = rng.randint(49152, 65535)
            record = {"timestamp": stamp(end), "flow_id": flow_id, "event_type": "flow", "src_ip": sip,
                      "src_port": sport, "dest_ip": dip, "dest_port": port, "proto": "UDP" if udp else "TCP",
                      "app_proto": _APP.get(flow.protocol, "failed"),
                      "flow": {"pkts_toserver": rng.randint(3, 40), "pkts_toclient": rng.randint(3, 40),
                               "bytes_toserver": rng.randint(200, 90_000), "bytes_toclient": rng.randint(200, 900_000),
                               "start": stamp(start), "end": stamp(end), "age": int((end - start).total_seconds()),
                               "state": "closed", "reason": "timeout", "alerted": False}}
            eve.append((end, orjson.dumps(record)))
            result.flow_records += 1
            if flow.protocol in ("https", "http", "fhir") and (ua := announcer.of(src, "http.user_agent")):
                http = {"timestamp": stamp(start), "flow_id": flow_id, "event_type": "http", "src_ip": sip,
                        "src_port": sport, "dest_ip": dip, "dest_port": port, "proto": "TCP",
                        "http": {"hostname": dst.hostnames[0] if dst.hostnames else dip, "url": "/",
                                 "http_user_agent": _with_version(ua, announced_version(src)),
                                 "http_method": "GET", "protocol": "HTTP/1.1", "status": 200, "length": 512}}
                eve.append((start, orjson.dumps(http)))
                result.announcements += 1
            if flow.protocol == "dicom":
                assoc = {"ts": start.isoformat().replace("+00:00", "Z"), "calling_ae": src.id.upper().replace("-", "_"),
                         "called_ae": dst.id.upper().replace("-", "_"), "src_ip": sip, "src_port": sport,
                         "dst_ip": dip, "dst_port": port, "command": "C-ECHO", "status": "0x0000"}
                if name := announcer.of(src, "dicom.implementation_version_name"):
                    assoc["implementation_version_name"] = _with_version(name, announced_version(src))
                dicom.append((start, orjson.dumps(assoc)))
                result.announcements += 1
    # every DHCP client asks for its lease once in the day
    for a in inventory.assets:
        ip = _address(a)
        if ip is None or a.kind not in DHCP_KINDS:
            continue
        prefix = announcer.oui(a) or "02:00:00"  # no IEEE registrant known: a locally administered MAC
        mac = prefix + ":" + ":".join(f"{rng.randint(0, 255):02x}" for _ in range(3))
        dhcp: dict[str, object] = {"type": "reply", "id": rng.randint(1, 2**31), "client_mac": mac,
                                   "assigned_ip": ip, "dhcp_type": "ack", "hostname": a.id}
        if vendor_class := announcer.of(a, "dhcp.vendor_class"):
            dhcp["vendor_class_identifier"] = _with_version(vendor_class, announced_version(a))
        ts = day + timedelta(seconds=rng.uniform(0, 3600))
        gateway = ip.rsplit(".", 1)[0] + ".1"
        record = {"timestamp": stamp(ts), "event_type": "dhcp", "src_ip": gateway, "src_port": 67,
                  "dest_ip": ip, "dest_port": 68, "proto": "UDP", "dhcp": dhcp}
        eve.append((ts, orjson.dumps(record)))
        result.announcements += 1
    eve.sort(key=lambda item: item[0])
    dicom.sort(key=lambda item: item[0])
    for name, lines in (("simulated-eve.json", eve), ("simulated-dicom.json", dicom)):
        path = folder / name
        path.write_bytes(b"\n".join(line for _, line in lines) + b"\n")
        result.files.append(path)
    return result


def main(argv: list[str] | None = None) -> int:
    """`python -m healthswarm.inventory.discover.simulate --out DIR [--holdout 0.2]`: the demo ecosystem's day
    of traffic in DIR, and with --holdout an inventory with that share of assets and flows removed
    (`reduced-inventory.yaml`) and what was removed (`removed.yaml`), for the worked example of docs/discover.md."""
    import argparse

    import yaml

    from healthswarm.demo import ECOSYSTEM
    from healthswarm.inventory import load_inventory
    from healthswarm.inventory.discover.evaluate import holdout
    from healthswarm.inventory.discover.patch import inventory_to_dict

    parser = argparse.ArgumentParser(prog="python -m healthswarm.inventory.discover.simulate")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--inventory", type=Path, default=ECOSYSTEM)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--holdout", type=float, default=0.0, help="share of assets and flows to remove (0.2)")
    parser.add_argument("--holdout-seed", type=int, default=42)
    args = parser.parse_args(argv)
    inventory = load_inventory([args.inventory])
    result = simulate(inventory, args.out, seed=args.seed)
    print(f"wrote {', '.join(str(p) for p in result.files)}: {result.flow_records} flow records, "
          f"{result.announcements} announcements; announcing another version than declared: "
          + ", ".join(f"{a} ({d} -> {o})" for a, (d, o) in sorted(result.contradicted.items())))
    if args.holdout > 0:
        reduced, assets, flows = holdout(inventory, args.holdout, args.holdout_seed)
        (args.out / "reduced-inventory.yaml").write_text(
            yaml.safe_dump(inventory_to_dict(reduced), sort_keys=False, allow_unicode=True), encoding="utf-8")
        removed = {"assets": [a.id for a in assets],
                   "flows": [f"{f.source} -> {f.target} {f.protocol}/{f.port}" for f in flows]}
        (args.out / "removed.yaml").write_text(yaml.safe_dump(removed, sort_keys=False), encoding="utf-8")
        print(f"wrote {args.out / 'reduced-inventory.yaml'}: {len(assets)} assets and {len(flows)} flows removed "
              f"(listed in {args.out / 'removed.yaml'})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
