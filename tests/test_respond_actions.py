from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import pytest

from healthswarm.errors import InputError
from healthswarm.respond.actions import ACTIONS, execute_proposal, plan_action
from healthswarm.respond.firewall import check_iptables, check_nft, iptables_block, nft_block
from healthswarm.respond.notify import NotifyConfig
from respond_helpers import case_of, context

# ---- firewall rules ---------------------------------------------------------------------------------------


def test_generated_rules_validate_for_both_families() -> None:
    addresses = ["10.0.4.11", "fd00::21", "192.0.2.0/24"]
    nft, ipt = nft_block(addresses, "case CASE-1"), iptables_block(addresses, "case CASE-1")
    assert check_nft(nft) == [] and check_iptables(ipt) == []
    assert "elements = { 10.0.4.11, 192.0.2.0/24 }" in nft and "ip6 saddr @blocked_v6 drop" in nft
    assert "ip6tables -I FORWARD -s fd00::21" in ipt and ipt.count("-j DROP") == 6


@pytest.mark.parametrize(("text", "problem"), [
    ("table inet t {\n chain c {\n type filter hook forward priority 0; policy accept;\n ip saddr 10.0.0.300 drop\n"
     " }\n}\n", "not an IP address"),
    ("table inet t {\n chain c {\n type filter hook forward priority 0; policy accept;\n ip saddr 10.0.0.1\n }\n}\n",
     "without a verdict"),
    ("table inet t {\n chain c {\n type filter hook forward priority 0; policy accept;\n ip saddr fd00::1 drop\n"
     " }\n}\n", "IPv6, expected IPv4"),
    ("table inet t {\n chain c {\n type filter hook forward priority 0; policy accept;\n ip saddr @nope drop\n"
     " }\n}\n", "not declared"),
    ("table inet t {\n chain c {\n type filter hook sideways priority 0; policy accept;\n }\n}\n", "type filter hook"),
    ("table inet t {\n chain c {\n type filter hook input priority 0; policy accept;\n }\n", "unclosed"),
    ("table wat t {\n}\n", "table FAMILY NAME"),
    ("table inet t {\n ip saddr 10.0.0.1 drop\n}\n", "outside a chain"),
])
def test_broken_nft_rules_are_caught(text: str, problem: str) -> None:
    problems = check_nft(text)
    assert problems and problem in problems[0]


@pytest.mark.parametrize(("line", "problem"), [
    ("iptables -I FORWARD -s 10.0.0.999 -j DROP", "not an IP address"),
    ("iptables -I FORWARD -s fd00::1 -j DROP", "IPv6, expected IPv4"),
    ("iptables -I SIDEWAYS -s 10.0.0.1 -j DROP", "unknown chain"),
    ("iptables -I FORWARD -s 10.0.0.1 -j EXPLODE", "unknown target"),
    ("iptables -I FORWARD -s 10.0.0.1 --dport 22 -j DROP", "needs -p"),
    ("iptables -I FORWARD -s 10.0.0.1", "no target"),
    ("iptables -s 10.0.0.1 -j DROP", "no chain"),
    ("iptables -I FORWARD --frobnicate x -j DROP", "unknown option"),
    ("nft add rule x", "expected iptables"),
    ("iptables -I FORWARD -m comment --comment 'unterminated -j DROP", "quotation"),
])
def test_broken_iptables_rules_are_caught(line: str, problem: str) -> None:
    problems = check_iptables(line)
    assert len(problems) == 1 and problem in problems[0]


# ---- the patient-safety guardrail -------------------------------------------------------------------------


def test_isolating_a_safety_critical_pump_needs_approval_and_proposes_the_fallback() -> None:
    ctx = context(case_of(["pump-1", "ws-1"]))
    pump, ws = plan_action("isolate-host", "case.assets", ctx, "test")
    assert pump.status == "awaiting-approval" and pump.approval is not None
    assert "critical safety criticality" in pump.approval.reason
    assert "manual" in pump.approval.fallback and "pump" in pump.approval.fallback
    assert ws.status == "proposed" and ws.approval is None
    assert execute_proposal(pump, ctx).status == "awaiting-approval"  # never executed without approval


def test_human_approval_releases_the_action(tmp_path: Path) -> None:
    ctx = context(case_of(["mon-1"]), approved=frozenset({"mon-1"}), outdir=tmp_path)
    (monitor,) = plan_action("quarantine-port", "case.medical-devices", ctx, "test")
    assert monitor.approval is not None and "alternate monitor" in monitor.approval.fallback
    assert monitor.status == "proposed"
    assert execute_proposal(monitor, ctx).status == "executed"
    request = json.loads((tmp_path / "quarantine-port-mon-1.json").read_text())
    assert request["vlan"] == 999 and request["asset"] == "mon-1"


def test_clinical_system_during_care_needs_approval_but_not_in_planned_downtime() -> None:
    (during,) = plan_action("isolate-host", "ehr-1", context(case_of(["ehr-1"])), "test")
    assert during.status == "awaiting-approval" and "downtime" in during.approval.fallback  # type: ignore[union-attr]
    (downtime,) = plan_action("isolate-host", "ehr-1", context(case_of(["ehr-1"]), care_in_progress=False), "test")
    assert downtime.approval is None and downtime.status == "proposed"


def test_medium_safety_medical_device_still_needs_approval() -> None:
    (ecg,) = plan_action("isolate-host", "ecg-1", context(case_of(["ecg-1"])), "test")
    assert ecg.approval is not None and "medical device" in ecg.approval.reason


def test_blocking_a_device_address_passes_the_guardrail_too() -> None:
    (block,) = plan_action("block-address", "10.0.4.11", context(case_of([])), "test")
    assert block.status == "awaiting-approval" and block.approval.asset == "pump-1"  # type: ignore[union-attr]
    (outside,) = plan_action("block-address", "198.51.100.7", context(case_of([])), "test")
    assert outside.approval is None and check_nft(outside.artefacts["nft"]) == []


def test_non_disruptive_actions_never_need_approval() -> None:
    ctx = context(case_of(["pump-1"], accounts=["j.doe"]))
    (disable,) = plan_action("disable-account", "case.accounts", ctx, "test")
    assert disable.approval is None and "Disable-ADAccount -Identity 'j.doe'" in disable.artefacts["ps1"]
    assert not ACTIONS["disable-account"].disruptive


# ---- bad input ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("kind", "target", "message"), [
    ("isolate-host", "no-such-asset", "unknown asset 'no-such-asset'"),
    ("disable-account", "x'; Remove-ADUser -Identity admin; '", "not an account name"),
    ("dns-sinkhole", "not a domain", "not a domain name"),
    ("block-address", "10.0.0.999", "not an IP address"),
    ("watchlist-add", "novalue", "TYPE:VALUE"),
    ("launch-missiles", "x", "unknown action"),
])
def test_bad_targets_are_clear_errors(kind: str, target: str, message: str) -> None:
    with pytest.raises(InputError, match=message):
        plan_action(kind, target, context(case_of(["ws-1"])), "playbook.json: workflow.action--1")


def test_other_artefacts() -> None:
    ctx = context(case_of([], accounts=["j.doe"]))
    (sinkhole,) = plan_action("dns-sinkhole", "Evil.Example.", ctx, "t")
    assert sinkhole.artefacts["rpz"].splitlines()[1:] == ["evil.example CNAME .", "*.evil.example CNAME ."]
    (reset,) = plan_action("reset-password", "CORP\\j.doe", ctx, "t")
    assert "Set-ADAccountPassword -Identity 'j.doe' -Reset" in reset.artefacts["ps1"]
    assert "ChangePasswordAtLogon $true" in reset.artefacts["ps1"]


# ---- notifications --------------------------------------------------------------------------------------------


@pytest.fixture
def webhook() -> Iterator[tuple[str, list[dict]]]:
    received: list[dict] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            received.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}/hook", received
    server.shutdown()
    server.server_close()


def test_webhook_notification(webhook: tuple[str, list[dict]]) -> None:
    url, received = webhook
    ctx = context(case_of(["ws-1"]), notify=NotifyConfig(webhook_url=url))
    (proposal,) = plan_action("notify-webhook", "soc", ctx, "t")
    assert received == []  # planning sends nothing
    assert execute_proposal(proposal, ctx).status == "executed"
    assert received[0]["subject"].startswith("[healthswarm] CASE-test")


def test_unreachable_webhook_is_a_recorded_failure() -> None:
    ctx = context(case_of([]), notify=NotifyConfig(webhook_url="http://127.0.0.1:9/hook", timeout=2))
    (proposal,) = plan_action("notify-webhook", "soc", ctx, "t")
    assert execute_proposal(proposal, ctx).status == "failed" and "127.0.0.1:9" in proposal.result


def test_email_notification_through_a_local_relay() -> None:
    controller_module = pytest.importorskip("aiosmtpd.controller")
    from aiosmtpd.handlers import Message

    messages = []

    class Collect(Message):
        def handle_message(self, message) -> None:  # type: ignore[no-untyped-def]
            messages.append(message)

    with socket.socket() as probe:  # a free loopback port
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    controller = controller_module.Controller(Collect(), hostname="127.0.0.1", port=port)
    controller.start()
    try:
        ctx = context(case_of(["ws-1"]), notify=NotifyConfig(smtp_host="127.0.0.1", smtp_port=port,
                                                             mail_to=("irt@hospital.example",)))
        (proposal,) = plan_action("notify-email", "incident-response-team", ctx, "t")
        assert execute_proposal(proposal, ctx).status == "executed", proposal.result
    finally:
        controller.stop()
    assert messages and messages[0]["To"] == "irt@hospital.example"
    assert "CASE-test" in messages[0]["Subject"]
