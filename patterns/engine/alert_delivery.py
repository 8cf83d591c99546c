"""Sending one alert: a JSON POST to a webhook URL and/or a command run on this machine.

The body carries the message twice, as ``text`` (what Slack's incoming webhooks show) and
``content`` (Discord's, cut to its 2,000 characters), beside the facts as fields of their
own (``event``, ``app``, ``node``, ``run_id``, ``error``, ``logs``...) for any other
receiver. A command gets the same facts in ``PATTERNS_ALERT_*`` environment variables and
the JSON body on its stdin. Each delivery has a time limit; a failure is logged, never
raised (see :mod:`patterns.engine.alerts`).
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import urllib.error
import urllib.request
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

log = logging.getLogger("patterns.alerts")

#: How long a webhook may take to answer.
WEBHOOK_TIMEOUT_SECONDS = 10.0
#: How long an alert command may run before it is killed.
COMMAND_TIMEOUT_SECONDS = 30.0
#: Discord refuses a ``content`` longer than this.
DISCORD_LIMIT = 2000


def body(text: str, facts: Mapping[str, Any]) -> dict[str, Any]:
    """The JSON document posted (and given to a command on its stdin)."""
    content = text if len(text) <= DISCORD_LIMIT else text[:DISCORD_LIMIT - 1] + "…"
    return {"text": text, "content": content, **facts}


def post(url: str, document: Mapping[str, Any]) -> str | None:
    """POST ``document`` to ``url``; None when it was taken (2xx), else why not. The URL
    itself never appears in the answer (a Slack webhook URL is a secret): only its host."""
    host = urlsplit(url).hostname or "?"
    request = urllib.request.Request(
        url, data=json.dumps(document).encode(), method="POST",
        headers={"Content-Type": "application/json", "User-Agent": "patterns-alerts"})
    try:
        with urllib.request.urlopen(request, timeout=WEBHOOK_TIMEOUT_SECONDS) as answer:
            answer.read(65_536)
            return None
    except urllib.error.HTTPError as exc:
        return f"the webhook at {host} answered {exc.code} {exc.reason}"
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        return f"the webhook at {host} could not be reached: {reason}"


def run_command(command: str | tuple[str, ...], document: Mapping[str, Any],
                cwd: Path) -> str | None:
    """Run ``command`` (a string: through the shell; a tuple: as is) in ``cwd``; None when
    it exited 0, else why not (with the end of its stderr)."""
    env = {**os.environ, **{f"PATTERNS_ALERT_{key.upper()}": "" if value is None else str(value)
                            for key, value in document.items() if key != "content"}}
    shown = command if isinstance(command, str) else " ".join(command)
    try:
        done = subprocess.run(command if isinstance(command, str) else list(command),
                              shell=isinstance(command, str), cwd=cwd, env=env,
                              input=json.dumps(document).encode(), capture_output=True,
                              timeout=COMMAND_TIMEOUT_SECONDS, start_new_session=True)
    except subprocess.TimeoutExpired:
        return f"the alert command `{shown}` ran past {COMMAND_TIMEOUT_SECONDS:g} s and was killed"
    except OSError as exc:
        return f"the alert command `{shown}` could not be started: {exc.strerror or exc}"
    if done.returncode != 0:
        tail = done.stderr.decode(errors="replace").strip().splitlines()[-3:]
        return (f"the alert command `{shown}` exited with code {done.returncode}"
                + (f": {' / '.join(tail)}" if tail else ""))
    return None
