"""The public keys a node accepts: the trust store's peers and its own, reloaded when the file changes."""

from __future__ import annotations

from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from healthswarm.share.signing import KeyPair, TrustStore, unb64u


class Keyring:
    def __init__(self, trust_path: Path, own: KeyPair) -> None:
        self.store = TrustStore(trust_path)
        self.own = own
        self._mtime: float | None = None
        self._keys: dict[str, Ed25519PublicKey] = {}
        self.reload()

    def reload(self) -> None:
        mtime = self.store.path.stat().st_mtime if self.store.path.exists() else 0.0
        if mtime == self._mtime:
            return
        keys = {p.key_id: Ed25519PublicKey.from_public_bytes(unb64u(p.public_key)) for p in self.store.peers()}
        keys[self.own.key_id] = self.own.private.public_key()
        self._keys, self._mtime = keys, mtime

    def __call__(self, kid: str) -> Ed25519PublicKey | None:
        return self._keys.get(kid)
