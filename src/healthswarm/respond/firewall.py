"""Firewall rules for containment: nftables and iptables text generated from addresses, and checked by a
small grammar of what we generate (so a broken or hand-edited rule is caught before anyone loads it).
`nft -c -f` is used in addition when nft is installed.
"""

from __future__ import annotations

import ipaddress
import re
import shlex
import shutil
import subprocess
import tempfile
from collections.abc import Sequence
from pathlib import Path

TABLE = "healthswarm"
_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_-]{0,63}$")
_COMMENT = re.compile(r'^[\w .:/@#()+,-]{0,120}$')


def _comment(text: str) -> str:
    return re.sub(r"[^\w .:/@#()+,-]", "-", text)[:120]


def _split(addresses: Sequence[str]) -> tuple[list[str], list[str]]:
    v4, v6 = [], []
    for text in addresses:
        net = ipaddress.ip_network(text, strict=False)
        (v4 if net.version == 4 else v6).append(str(net) if net.num_addresses > 1 else str(net.network_address))
    return v4, v6


def nft_block(addresses: Sequence[str], comment: str, chain: str = "forward") -> str:
    """An nftables table that drops traffic from and to `addresses` (hook forward and input)."""
    v4, v6 = _split(addresses)
    note = _comment(comment)
    lines = [f"table inet {TABLE} {{"]
    if v4:
        lines.append(f"\tset blocked_v4 {{ type ipv4_addr; flags interval; elements = {{ {', '.join(v4)} }}; }}")
    if v6:
        lines.append(f"\tset blocked_v6 {{ type ipv6_addr; flags interval; elements = {{ {', '.join(v6)} }}; }}")
    for hook in dict.fromkeys((chain, "input")):
        lines.append(f"\tchain {hook} {{")
        lines.append(f"\t\ttype filter hook {hook} priority 0; policy accept;")
        for family, name in (("ip", "blocked_v4"), ("ip6", "blocked_v6")):
            if (v4 if family == "ip" else v6):
                lines.append(f'\t\t{family} saddr @{name} drop comment "{note}"')
                lines.append(f'\t\t{family} daddr @{name} drop comment "{note}"')
        lines.append("\t}")
    lines.append("}")
    return "\n".join(lines) + "\n"


def iptables_block(addresses: Sequence[str], comment: str, chain: str = "FORWARD") -> str:
    """iptables/ip6tables commands that drop traffic from and to `addresses`."""
    v4, v6 = _split(addresses)
    note = shlex.quote(_comment(comment))
    lines = []
    for tool, nets in (("iptables", v4), ("ip6tables", v6)):
        for net in nets:
            for flag in ("-s", "-d"):
                lines.append(f"{tool} -I {chain} {flag} {net} -m comment --comment {note} -j DROP")
    return "\n".join(lines) + "\n"


# ---- validation -------------------------------------------------------------------------------------

_FAMILIES = {"ip", "ip6", "inet", "arp", "bridge", "netdev"}
_HOOKS = {"prerouting", "input", "forward", "output", "postrouting", "ingress"}
_VERDICTS = {"accept", "drop", "reject", "continue", "return"}


def _check_address(text: str, version: int | None) -> str | None:
    try:
        net = ipaddress.ip_network(text, strict=False)
    except ValueError:
        return f"{text!r} is not an IP address or network"
    if version and net.version != version:
        return f"{text} is IPv{net.version}, expected IPv{version}"
    return None


def _nft_rule(tokens: list[str], sets: dict[str, int]) -> str | None:
    i, verdict = 0, None
    while i < len(tokens):
        tok = tokens[i]
        if tok in ("ip", "ip6") and i + 2 < len(tokens) and tokens[i + 1] in ("saddr", "daddr"):
            value, version = tokens[i + 2], 4 if tok == "ip" else 6
            if value.startswith("@"):
                if value[1:] not in sets:
                    return f"set {value} is not declared"
                if sets[value[1:]] != version:
                    return f"set {value} holds IPv{sets[value[1:]]} addresses, used with {tok}"
            elif (problem := _check_address(value, version)) is not None:
                return problem
            i += 3
        elif tok in ("tcp", "udp") and i + 2 < len(tokens) and tokens[i + 1] in ("dport", "sport"):
            if not tokens[i + 2].isdigit() or not 0 < int(tokens[i + 2]) < 65536:
                return f"{tokens[i + 2]!r} is not a port"
            i += 3
        elif tok in _VERDICTS:
            if verdict:
                return "two verdicts in one rule"
            verdict, i = tok, i + 1
        elif tok == "comment" and i + 1 < len(tokens):
            if not (tokens[i + 1].startswith('"') and tokens[i + 1].endswith('"')):
                return "comment must be quoted"
            i += 2
        else:
            return f"unexpected {tok!r}"
    return None if verdict else "rule without a verdict (accept/drop/reject)"


def check_nft(text: str) -> list[str]:
    """Problems in an nftables ruleset of the shape `nft_block` writes, as 'line N: what'."""
    problems: list[str] = []
    depth, sets = 0, {}
    context: list[str] = []
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        tokens = re.findall(r'"[^"]*"|[{};]|[^\s{};]+', line)
        where = f"line {number}"
        if tokens[:1] == ["table"]:
            if depth != 0 or len(tokens) != 4 or tokens[1] not in _FAMILIES or not _NAME.match(tokens[2]) \
                    or tokens[3] != "{":
                problems.append(f"{where}: expected 'table FAMILY NAME {{' at top level")
            depth += 1
            context.append("table")
            continue
        if tokens[:1] == ["set"]:
            m = re.match(r"^set (\w+) \{ type (ipv4_addr|ipv6_addr);( flags interval;)? elements = \{ (.+) \}; \}$",
                         line)
            if depth != 1 or m is None:
                problems.append(f"{where}: malformed set declaration")
                continue
            version = 4 if m.group(2) == "ipv4_addr" else 6
            sets[m.group(1)] = version
            for element in (e.strip() for e in m.group(4).split(",")):
                if (problem := _check_address(element, version)) is not None:
                    problems.append(f"{where}: {problem}")
            continue
        if tokens[:1] == ["chain"]:
            if depth != 1 or len(tokens) != 3 or not _NAME.match(tokens[1]) or tokens[2] != "{":
                problems.append(f"{where}: expected 'chain NAME {{' inside a table")
            depth += 1
            context.append("chain")
            continue
        if tokens == ["}"]:
            if not context:
                problems.append(f"{where}: unbalanced '}}'")
            else:
                context.pop()
                depth -= 1
            continue
        if tokens[:1] == ["type"]:
            m = re.match(r"^type filter hook (\w+) priority (-?\d+); policy (accept|drop);$", line)
            if context[-1:] != ["chain"] or m is None or m.group(1) not in _HOOKS:
                problems.append(f"{where}: expected 'type filter hook HOOK priority N; policy accept|drop;'")
            continue
        if context[-1:] != ["chain"]:
            problems.append(f"{where}: rule outside a chain")
            continue
        if (problem := _nft_rule(tokens, sets)) is not None:
            problems.append(f"{where}: {problem}")
    if context:
        problems.append(f"end of text: {len(context)} unclosed '{{'")
    if not problems and shutil.which("nft"):
        problems.extend(_nft_check_binary(text))
    return problems


def _nft_check_binary(text: str) -> list[str]:
    with tempfile.NamedTemporaryFile("w", suffix=".nft", delete=False) as fh:
        fh.write(text)
    try:
        done = subprocess.run(["nft", "-c", "-f", fh.name], capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return [f"nft -c: {exc}"]
    finally:
        Path(fh.name).unlink(missing_ok=True)
    # without CAP_NET_ADMIN nft cannot even check; that is not a problem of the rules
    if done.returncode and "Operation not permitted" not in done.stderr:
        return [f"nft -c: {line}" for line in done.stderr.strip().splitlines()[:5]]
    return []


_IPT_CHAINS = {"INPUT", "OUTPUT", "FORWARD", "PREROUTING", "POSTROUTING"}
_IPT_TARGETS = {"DROP", "REJECT", "ACCEPT", "LOG", "RETURN"}


def check_iptables(text: str) -> list[str]:
    """Problems in iptables/ip6tables commands of the shape `iptables_block` writes."""
    problems = []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        where = f"line {number}"
        try:
            tokens = shlex.split(line)
        except ValueError as exc:
            problems.append(f"{where}: {exc}")
            continue
        if tokens[0] not in ("iptables", "ip6tables"):
            problems.append(f"{where}: expected iptables or ip6tables, got {tokens[0]!r}")
            continue
        version = 4 if tokens[0] == "iptables" else 6
        seen: dict[str, str] = {}
        i, problem = 1, None
        while i < len(tokens) and problem is None:
            opt = tokens[i]
            arg = tokens[i + 1] if i + 1 < len(tokens) else None
            if arg is None:
                problem = f"option {opt} without a value"
            elif opt in ("-A", "-I", "-D"):
                problem = None if arg in _IPT_CHAINS else f"unknown chain {arg!r}"
            elif opt in ("-s", "-d"):
                problem = _check_address(arg, version)
            elif opt == "-p":
                problem = None if arg in ("tcp", "udp", "icmp", "icmpv6", "all") else f"unknown protocol {arg!r}"
            elif opt in ("--dport", "--sport"):
                problem = None if "-p" in seen else f"{opt} needs -p tcp|udp first"
                if problem is None and not (arg.isdigit() and 0 < int(arg) < 65536):
                    problem = f"{arg!r} is not a port"
            elif opt == "-m":
                problem = None if arg in ("comment", "tcp", "udp") else f"unknown match {arg!r}"
            elif opt == "--comment":
                problem = None if seen.get("-m") == "comment" else "--comment needs -m comment"
            elif opt == "-j":
                problem = None if arg in _IPT_TARGETS else f"unknown target {arg!r}"
            else:
                problem = f"unknown option {opt!r}"
            if problem is None and opt in seen and opt != "-m":
                problem = f"option {opt} given twice"
            seen[opt] = arg or ""
            i += 2
        if problem is None and not ({"-A", "-I", "-D"} & seen.keys()):
            problem = "no chain (-A/-I CHAIN)"
        if problem is None and "-j" not in seen:
            problem = "no target (-j DROP)"
        if problem:
            problems.append(f"{where}: {problem}")
    return problems
