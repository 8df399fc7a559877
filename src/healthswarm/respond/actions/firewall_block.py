"""Firewall rules that drop traffic from and to addresses, for `isolate-host` and `block-address`."""

from __future__ import annotations

from healthswarm.respond.firewall import check_iptables, check_nft, iptables_block, nft_block


def firewall_artefacts(addresses: list[str], comment: str) -> tuple[dict[str, str], list[str]]:
    """nftables and iptables rules, and what their syntax checkers find wrong with them."""
    nft, ipt = nft_block(addresses, comment), iptables_block(addresses, comment)
    problems = [f"nft: {p}" for p in check_nft(nft)] + [f"iptables: {p}" for p in check_iptables(ipt)]
    return {"nft": nft, "iptables.sh": ipt}, problems
