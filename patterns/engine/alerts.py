"""Alerts: telling someone when a node's run fails, times out, or recovers.

``settings.alerts`` (the app's, or a node's own, which replaces it; ``alerts: false`` turns
them off for a node) says where to: a webhook URL (Slack- and Discord-compatible JSON) and/or
a command (see :mod:`patterns.engine.alert_delivery`). The engine calls
:meth:`Alerts.run_ended` with every run it ends, under ``patterns run`` and ``patterns
serve`` alike; everything after that happens on a thread of its own, so an alert never
delays or fails a run, and a delivery that fails is logged.

What alerts:

- ``failed`` / ``timed_out``: a run that ended so and will not be retried (its last
  attempt under ``settings.retries``). A ``cancelled`` run never alerts: someone stopped it.
- ``recovered``: the first success after such a failure.

The rate limit (per node): at most one ``failed``/``timed_out`` alert every
``quiet_minutes`` (default 15); the ones held back are counted, and the next alert sent for
the node says how many. A ``recovered`` alert is always sent (one per run of failures).
What was last sent is kept in ``.patterns/alerts.json`` beside the store, so the limit holds
across ``patterns run`` invocations (a cron job running the app every minute).
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from patterns.engine.alert_delivery import body, post, run_command
from patterns.engine.masking import Masker
from patterns.graph.model import AlertSettings, App, Node
from patterns.store.interface import Store
from patterns.store.model import RunRecord

log = logging.getLogger("patterns.alerts")

#: The run ends that alert, and how each is told.
HEADLINES = {"failed": "failed", "timed_out": "timed out", "recovered": "recovered"}
#: How long :meth:`Alerts.close` waits for alerts still being sent.
CLOSE_SECONDS = 45.0


class Alerts:
    """Decides which run ends alert, keeps the rate limit, and sends them in the background.

    ``app()`` is the app as it is now (a served app reloads); ``masker()`` masks every
    secret known to the engine; ``secret(name)`` resolves a ``${{ name }}`` webhook URL."""

    def __init__(self, *, app: Callable[[], App], store: Store, state_file: Path,
                 masker: Callable[[], Masker], secret: Callable[[str], str | None]) -> None:
        self._app = app
        self._store = store
        self._state_file = state_file
        self._masker = masker
        self._secret = secret
        self._failing: dict[str, bool] = {}  # node id -> its last final outcome was a failure
        self._lock = threading.Lock()
        self._sender: ThreadPoolExecutor | None = None

    def run_ended(self, record: RunRecord) -> None:
        """Called with each run's final record; returns at once (never raises)."""
        node = next((n for n in self._app().nodes if n.id == record.node_id), None)
        if node is None or node.settings.alerts is None or record.status not in (
                "succeeded", "failed", "timed_out"):
            return
        with self._lock:
            if self._sender is None:
                self._sender = ThreadPoolExecutor(1, thread_name_prefix="patterns-alerts")
            self._sender.submit(self._handle, record, node, node.settings.alerts)

    def close(self, timeout: float = CLOSE_SECONDS) -> None:
        """Wait (up to ``timeout``) for the alerts still being sent, then stop."""
        with self._lock:
            sender, self._sender = self._sender, None
        if sender is None:
            return
        waiter = threading.Thread(target=sender.shutdown, kwargs={"wait": True}, daemon=True)
        waiter.start()
        waiter.join(timeout)
        if waiter.is_alive():
            log.warning("alerts still being sent after %g s were given up", timeout)

    # ------------------------------------------------------------------ on the sender thread
    def _handle(self, record: RunRecord, node: Node, settings: AlertSettings) -> None:
        try:
            event = self._event(record, node)
            if event is None or event not in settings.when:
                return
            suppressed = self._admit(node.id, event, settings.quiet_minutes)
            if suppressed is None:
                return
            self._send(record, node, settings, event, suppressed)
        except Exception:  # (an alert must never take anything down)
            log.exception("the alert for run %s of node %s failed", record.id, node.label)

    def _event(self, record: RunRecord, node: Node) -> str | None:
        """``failed``, ``timed_out`` or ``recovered``; None when this run end does not alert."""
        if record.status in ("failed", "timed_out"):
            if record.attempt <= node.settings.retries_count:
                return None  # retried: only its last attempt counts
            self._failing[node.id] = True
            return record.status
        was_failing = self._failing.get(node.id)
        if was_failing is None:
            was_failing = self._failing_before(record, node)
        self._failing[node.id] = False
        return "recovered" if was_failing else None

    def _failing_before(self, record: RunRecord, node: Node) -> bool:
        """Whether the node's last run before ``record`` that counted was a final failure."""
        with self._store.read() as view:
            earlier = view.runs.recent(node.id, 50)
        for run in earlier:
            if run.id == record.id or run.status not in ("succeeded", "failed", "timed_out"):
                continue
            if run.status == "succeeded":
                return False
            if run.attempt > node.settings.retries_count:
                return True
        return False

    def _admit(self, node_id: str, event: str, quiet_minutes: float) -> int | None:
        """The rate limit: how many alerts of the node were held back since the last one
        sent (this one is sent), or None (this one is held back and counted)."""
        state = self._load()
        entry = state.get(node_id) or {}
        now = time.time()
        recent = now - float(entry.get("sent_at", 0)) < quiet_minutes * 60
        if event != "recovered" and recent:
            entry["suppressed"] = int(entry.get("suppressed", 0)) + 1
            state[node_id] = entry
            self._save(state)
            return None
        suppressed = int(entry.get("suppressed", 0))
        state[node_id] = {"sent_at": now, "suppressed": 0}
        self._save(state)
        return suppressed

    def _send(self, record: RunRecord, node: Node, settings: AlertSettings, event: str,
              suppressed: int) -> None:
        app = self._app()
        mask = self._masker()
        error = ((record.error or "").strip().splitlines() or [""])[0]
        logs = f"patterns logs {app.root} --run {record.id}"
        where = f"{app.title}: node {node.title} ({node.rel_file or node.id})"
        text = f"{where} {HEADLINES[event]}, run {record.id}"
        if event == "recovered":
            text += " succeeded after a failure"
        elif error:
            text += f"\n{error}"
        if suppressed:
            text += (f"\n({suppressed} more alert(s) for this node were held back in the "
                     f"{settings.quiet_minutes:g} minutes before this one)")
        text += f"\nLogs: {logs}"
        facts = {"event": event, "app": app.title, "node": node.title, "node_id": node.id,
                 "node_file": node.rel_file, "run_id": record.id, "status": record.status,
                 "error": mask(error) if error else None, "logs": logs,
                 "suppressed": suppressed,
                 "at": record.ended_at.isoformat() if record.ended_at else None}
        document = body(mask(text), facts)
        failures = []
        if settings.webhook is not None:
            url = self._url(settings.webhook)
            failures.append(post(url, document) if url else
                            f"the secret {settings.webhook.strip()} holding the webhook URL "
                            f"is not set: `patterns create secret NAME`")
        if settings.command is not None:
            failures.append(run_command(settings.command, document, app.root))
        for failure in failures:
            if failure is not None:
                log.warning("alert for node %s (run %s) not delivered: %s", node.label,
                            record.id, mask(failure))

    def _url(self, webhook: str) -> str | None:
        from patterns.graph.parameters import is_reference, parse_reference

        if not is_reference(webhook):
            return webhook
        kind, name = parse_reference(webhook)
        return self._secret(name) if kind == "secret" else None

    def _load(self) -> dict[str, Any]:
        try:
            data = json.loads(self._state_file.read_text())
        except (OSError, ValueError):
            return {}
        nodes = data.get("nodes") if isinstance(data, dict) else None
        return dict(nodes) if isinstance(nodes, dict) else {}

    def _save(self, state: dict[str, Any]) -> None:
        try:
            self._state_file.parent.mkdir(parents=True, exist_ok=True)
            temporary = self._state_file.with_suffix(".tmp")
            temporary.write_text(json.dumps({"version": 1, "nodes": state}))
            os.replace(temporary, self._state_file)
        except OSError as exc:
            log.warning("the alerts' rate limit could not be saved in %s: %s",
                        self._state_file, exc)
