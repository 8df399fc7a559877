"""A node's deny list: `<workspace>/swarm/deny`, one `host:port` per line, re-read whenever it changes.

The running node sends nothing to a denied address. Writing each side's deny list with the other
side's addresses partitions a consortium of real processes; deleting the files heals it — with no
restart, no firewall rule and no change to the transport. It is a fault-injection switch for tests
and drills (and a way to cut one peer off by hand): a one-sided list makes an asymmetric link.
Frames that still arrive from a denied peer are processed, since the sender cannot be known before the
envelope is opened; a symmetric partition needs both sides' lists.
"""

from __future__ import annotations

from pathlib import Path

DENY = "deny"


class DenyList:
    def __init__(self, folder: Path) -> None:
        self.path = folder / DENY
        self._stamp: tuple[int, int] | None = None
        self.denied: frozenset[str] = frozenset()
        self.blocked = 0   # frames not sent because of the list, for status.json

    def reload(self) -> None:
        """Re-read the file if it changed (one stat per call; the runtime calls it every round)."""
        try:
            st = self.path.stat()
        except FileNotFoundError:
            self._stamp, self.denied = None, frozenset()
            return
        stamp = (st.st_mtime_ns, st.st_ino)   # a replaced file has a new inode even within one mtime tick
        if stamp == self._stamp:
            return
        try:
            lines = self.path.read_text(encoding="utf-8").splitlines()
        except OSError:
            return   # being replaced: the next round reads it
        self._stamp = stamp
        self.denied = frozenset(s for line in lines if (s := line.split("#", 1)[0].strip()))

    def allows(self, addr: str) -> bool:
        if addr in self.denied:
            self.blocked += 1
            return False
        return True


def write_deny(folder: Path, addresses: list[str]) -> None:
    """Replace the deny list atomically (the node never reads half a file); an empty list heals."""
    folder.mkdir(parents=True, exist_ok=True)
    tmp = folder / f".{DENY}.tmp"
    tmp.write_text("".join(f"{a}\n" for a in addresses), encoding="utf-8")
    tmp.replace(folder / DENY)
