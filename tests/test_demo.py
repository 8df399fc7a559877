"""`healthswarm demo` runs end to end on embedded defaults, in a fresh workspace, twice in a row (its steps; the
live agents after them are tests/test_demo_live.py's)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from conftest import shared
from healthswarm.demo.flows import flow_model_step
from healthswarm.demo.steps import DemoRun
from healthswarm.store import Store


def run_demo(workspace: Path) -> dict:
    result = subprocess.run([sys.executable, "-m", "healthswarm", "-w", str(workspace), "demo", "--no-live", "--format",
                             "json"], capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_demo_summary_and_rerun(tmp_path: Path) -> None:
    first = run_demo(tmp_path / "ws")
    eco = first["Load the reference ecosystem"]
    assert eco["assets"] >= 150 and eco["organisations"] >= 4
    vulns = first["Match medical-device advisories"]
    assert vulns["advisories"] >= 30 and vulns["advisory_problems"] == []
    assert vulns["affected_assets"] > 0 and vulns["possibly_affected_assets"] > 0
    ingested = first["Ingest the scenario's logs"]["files"]
    assert {f["format"] for f in ingested.values()} == {"suricata", "windows-json", "fhir", "hl7", "dicom"}
    assert len(ingested) == 6
    assert all(f["rejects"] == 0 and f["events"] > 0 for f in ingested.values())
    detected = first["Detect: Sigma, sensors, baselines, clinical analytics, patient privacy; correlate"]
    for rule in ("Suspicious Encoded PowerShell Command Line", "FHIR Mass Patient Record Reads by One Account",
                 "DICOM C-MOVE to an Unknown AE Title", "HL7 ADT Message Flood From One Facility",
                 "ET JA3 Hash - Possible Malware - Cobalt Strike Beacon",
                 # the learned per-asset baselines: the pump's first SMB, the workstation's exfiltration volume
                 "Infusion pump ICU bed 2: new service and destination", "Office workstation 3: volume",
                 # the clinical protocol analytics, learned per interface, AE title and user
                 "DICOM C-MOVE to a Destination Never Used by This AE", "HL7 Sender Never Seen on This Interface",
                 "FHIR Bulk $export by a Principal Not Seen Exporting",
                 # patient privacy: reads judged against care relationships from the ADT feed and the staff directory
                 "Patient records read without care relationship by k.schmidt",
                 "After-hours burst of patient record reads by k.schmidt"):
        assert detected["alerts_by_rule"].get(rule), rule
    phishing = next(i for i in detected["incidents"] if "sta-ws-03" in i["assets"])
    assert phishing["severity"] == 4 and phishing["stage"] in ("lateral-movement", "objectives")
    assert phishing["predicted_next"] and not set(phishing["predicted_next"]) & set(phishing["assets"])
    response = first["Respond: a case, the phishing playbook (dry run), the regulators' clocks"]
    assert response["incident"] == phishing["id"] and response["first_containment"]["kind"] == "isolate-host"
    assert {d["id"] for d in response["deadlines"]} >= {"gdpr-33", "nis2-early-warning", "hipaa-individuals"}
    risk = first["Attack paths to the shared PACS, and what to fix first"]
    assert risk["paths"] and risk["mitigation"]["true_residual_risk"] < risk["mitigation"]["true_baseline_risk"]
    shared = first["Warn the neighbour: a signed, sanitised STIX bundle"]
    assert "ipv4:198.51.100.77" in shared["indicators"]
    bundle = (tmp_path / "ws" / "outbox" / f"{shared['incident']}.stix.json").read_text()
    for secret in ("sta-ws-03", "j.meyer", "10.10.1.103", "St. Aurelia"):
        assert secret not in bundle
    swarm = first["The swarm: every organisation's agent warned by gossip"]["organisations"]
    assert set(swarm) == {"st-aurelia", "northfield", "regio-imaging", "citylab", "medtech-support"}
    assert all(o["items"] == swarm["st-aurelia"]["items"] for o in swarm.values())
    assert "first seen here 2026-11-26 14:02" in " ".join(swarm["northfield"]["actions"])
    assert "skipped" in first["Learned models in the pipeline: the flow classifier on labelled flows (--flows)"]
    assert (tmp_path / "ws" / "healthswarm.db").exists()
    # a second run starts from a clean store and gives the same figures
    second = run_demo(tmp_path / "ws")
    for step in ("Load the reference ecosystem", "Match medical-device advisories", "Ingest the scenario's logs"):
        assert second[step] == first[step]


def test_flow_classifier_step_needs_labelled_flows(tmp_path: Path) -> None:
    store = Store.open(f"sqlite:///{tmp_path / 'hs.db'}")
    skipped = flow_model_step(DemoRun(store=store, workspace=tmp_path))
    assert "--flows" in skipped.summary["skipped"]
    ran = flow_model_step(DemoRun(store=store, workspace=tmp_path, flows_path=shared("flows", "cicids2017")))
    summary = ran.summary
    assert summary["events"] == summary["held_out"] > 500  # every held-out flow stored and scored
    assert summary["precision"] >= 0.9 and summary["recall"] >= 0.95, summary
    assert {"DDoS", "Portscan", "SSH-Patator"} <= set(summary["alerts_by_class"])
    assert (tmp_path / "models").is_dir()  # saved like `healthswarm model train` saves
    store.close()
