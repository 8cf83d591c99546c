"""The local secret store: values encrypted with a key kept in the Patterns home.

``patterns create secret NAME VALUE`` stores a value; graph.yml refers to it as
``${{ NAME }}``; a connection (a credentials dict) is a secret named ``connection.NAME``
holding JSON. The key (``secret.key``) and the encrypted store (``secrets.enc``) live in
``$PATTERNS_HOME`` (default ``~/.patterns``), both readable by the owner only. Values are
never printed: listing shows names.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

from patterns.errors import ConfigError
from patterns.private_files import keep_private, open_private, private_dir

_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.\-]*$")


def patterns_home() -> Path:
    return Path(os.environ.get("PATTERNS_HOME") or Path.home() / ".patterns")


class SecretStore:
    def __init__(self, home: Path | None = None) -> None:
        self.home = home or patterns_home()
        self._key_file = self.home / "secret.key"
        self._file = self.home / "secrets.enc"

    def _fernet(self) -> Any:
        from cryptography.fernet import Fernet

        private_dir(self.home)
        if not self._key_file.exists():
            fd = os.open(self._key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as fh:
                fh.write(Fernet.generate_key())
        keep_private(self._key_file)  # (and the store, if an older version left them open)
        keep_private(self._file)
        return Fernet(self._key_file.read_bytes().strip())

    def _load(self) -> dict[str, str]:
        if not self._file.exists():
            return {}
        from cryptography.fernet import InvalidToken

        try:
            data = self._fernet().decrypt(self._file.read_bytes())
        except InvalidToken as exc:
            raise ConfigError(f"the secret store {self._file} cannot be decrypted with "
                              f"{self._key_file}; was the key replaced? Remove both files and "
                              f"set the secrets again") from exc
        return dict(json.loads(data))

    def _save(self, values: dict[str, str]) -> None:
        token = self._fernet().encrypt(json.dumps(values).encode())
        private_dir(self.home)
        tmp = self._file.with_suffix(".tmp")
        fd = open_private(tmp, os.O_WRONLY | os.O_TRUNC)
        with os.fdopen(fd, "wb") as fh:
            fh.write(token)
        os.replace(tmp, self._file)

    def set(self, name: str, value: str) -> None:
        if not _NAME.match(name):
            raise ConfigError(f"secret name {name!r} is not valid: use letters, digits, "
                              f"'_', '-' and '.', starting with a letter or '_'")
        if name.startswith("connection."):
            try:
                doc = json.loads(value)
            except ValueError as exc:
                raise ConfigError(f"connection {name!r} must be a JSON object of credentials, "
                                  f"e.g. '{{\"api_key\": \"...\"}}'") from exc
            if not isinstance(doc, dict):  # (the value is never echoed: it is a secret)
                raise ConfigError(f"connection {name!r} must be a JSON object of credentials, "
                                  f"not a JSON {type(doc).__name__}, e.g. "
                                  f"'{{\"api_key\": \"...\"}}'")
        values = self._load()
        values[name] = value
        self._save(values)

    def get(self, name: str) -> str | None:
        return self._load().get(name)

    def names(self) -> list[str]:
        return sorted(self._load())

    def delete(self, name: str) -> bool:
        values = self._load()
        if name not in values:
            return False
        del values[name]
        self._save(values)
        return True

    def values(self) -> list[str]:
        """Every secret value (for masking them in logs)."""
        return [v for v in self._load().values() if v]
