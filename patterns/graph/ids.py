"""Node ids: short strings of lowercase letters and digits.

A function without an ``id`` gets one derived from what it runs (its node_file, webhook
table or component), so the id is the same on every load and the devkit can write it into
graph.yml later without changing it. New nodes get random ids.
"""

from __future__ import annotations

import base64
import hashlib
import re
import secrets
import string
from collections.abc import Container
from typing import Final

ID_PATTERN: Final = re.compile(r"^[a-z0-9]+$")
ID_LENGTH: Final = 8
_ALPHABET: Final = string.ascii_lowercase + string.digits


def is_valid_id(value: str) -> bool:
    return ID_PATTERN.match(value) is not None


def derived_id(source: str) -> str:
    """The stable 8-character id of a function identified by ``source``."""
    digest = hashlib.sha1(source.encode("utf-8")).digest()
    return base64.b32encode(digest).decode("ascii").lower()[:ID_LENGTH]


def random_id(taken: Container[str] = ()) -> str:
    """A new random 8-character id not in ``taken``."""
    while True:
        candidate = "".join(secrets.choice(_ALPHABET) for _ in range(ID_LENGTH))
        if candidate not in taken:
            return candidate
