"""RFC 8785 (JSON Canonicalization Scheme) bytes of a JSON value, fast where it is safe.

`rfc8785` (the reference implementation, pure Python) takes ~0.8 s for a 10,000-object bundle. For
values with no floats, integers within I-JSON range and ASCII-only object keys, orjson with sorted
keys writes exactly the RFC 8785 bytes (same escaping: the two-character escapes for \\b \\f \\n \\r \\t,
lower-case `\\u00xx` for other controls, everything else as UTF-8; and for ASCII keys UTF-16 code-unit
order is byte order), ten times faster; anything else goes to `rfc8785`. Tests compare both on exported
bundles and on hostile strings.
"""

from __future__ import annotations

from typing import Any

import orjson
import rfc8785

_MAX_INT = 2**53 - 1


def _plain(value: Any) -> bool:
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str) or item is None or isinstance(item, bool):
            continue
        if isinstance(item, dict):
            for key, child in item.items():
                if not isinstance(key, str) or not key.isascii():
                    return False
                if not isinstance(child, str):
                    stack.append(child)
        elif isinstance(item, list):
            stack.extend(c for c in item if not isinstance(c, str))
        elif isinstance(item, int):
            if not -_MAX_INT <= item <= _MAX_INT:
                return False
        else:
            return False
    return True


def canonical(value: Any) -> bytes:
    if _plain(value):
        return orjson.dumps(value, option=orjson.OPT_SORT_KEYS)
    try:
        return rfc8785.dumps(value)
    except (rfc8785.CanonicalizationError, TypeError, ValueError) as exc:
        raise ValueError(f"cannot canonicalise (RFC 8785): {exc}") from exc
