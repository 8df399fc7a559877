"""Crypto-PAn: prefix-preserving IP address anonymisation (Xu, Fan, Ammar, Moon, ICNP 2002).

Two addresses that share a k-bit prefix map to addresses that share a k-bit prefix, so a trusted
peer can still see "these hosts are on one subnet" without learning the subnet. The key is 32 bytes:
the first 16 are the AES-128 key, the last 16 are encrypted to make the pad. Output bit i flips input
bit i when the first bit of AES(first i input bits ‖ pad bits i..127) is 1. Checked against the
vectors of the reference distribution (sample_trace_raw/sanitized) in the tests.
"""

from __future__ import annotations

import ipaddress
from functools import lru_cache

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

_FULL = (1 << 128) - 1


class CryptoPAn:
    def __init__(self, key: bytes) -> None:
        if len(key) != 32:
            raise ValueError("Crypto-PAn needs a 32-byte key")
        self._encryptor = Cipher(algorithms.AES(key[:16]), modes.ECB()).encryptor()
        self._pad = int.from_bytes(self._block(key[16:]), "big")
        self.anonymise_int = lru_cache(maxsize=65536)(self._anonymise_int)

    def _block(self, data: bytes) -> bytes:
        return self._encryptor.update(data)

    def _anonymise_int(self, value: int, bits: int) -> int:
        shift = 128 - bits
        original = value << shift
        flips = 0
        # the i-bit prefixes share their AES inputs' prefix; one batched update for all `bits` blocks
        blocks = bytearray()
        for i in range(bits):
            keep = (_FULL << (128 - i)) & _FULL
            block = (original & keep) | (self._pad & ~keep & _FULL)
            blocks += block.to_bytes(16, "big")
        out = self._block(bytes(blocks))
        for i in range(bits):
            flips = (flips << 1) | (out[16 * i] >> 7)
        return value ^ flips

    def anonymise(self, address: str) -> str:
        ip = ipaddress.ip_address(address)
        bits = 32 if ip.version == 4 else 128
        value = self.anonymise_int(int(ip), bits)
        return str(ipaddress.IPv4Address(value) if bits == 32 else ipaddress.IPv6Address(value))
