"""``patterns runs``, ``patterns logs``, ``patterns state show|reset``, ``patterns stream reset``.

What happened (run records and their output) and the two pieces of a node's memory a user
may want to replay from scratch: its state document and its stream positions.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from patterns.cli.context import (
    APP_ARGUMENT,
    APP_REQUIRED,
    JSON_OPTION,
    SERVER_OPTION,
    STORE_OPTION,
    YES_OPTION,
    AppGroup,
    StoreAt,
    confirm,
    door,
    has_store,
    load,
    print_json,
    readable_app,
)
from patterns.cli.remote import record_from_json, server_for
from patterns.errors import ConfigError, did_you_mean

if TYPE_CHECKING:
    from patterns.graph.model import App, Node
    from patterns.store.model import RunRecord

NODE_OPTION = click.option("--node", "node_key", metavar="FILE_OR_ID",
                           help="Only this node (its file or id).")
NODE_ARGUMENT = click.argument("node_key", metavar="NODE")


def _local(when: Any, fmt: str = "%Y-%m-%d %H:%M:%S") -> str:
    if isinstance(when, str):
        try:
            when = dt.datetime.fromisoformat(when)
        except ValueError:  # no time (a line not yet stamped)
            return "-"
    return when.astimezone().strftime(fmt) if isinstance(when, dt.datetime) else "-"



@click.command()
@APP_ARGUMENT
@NODE_OPTION
@click.option("--limit", default=20, show_default=True, type=click.IntRange(min=1),
              help="Show at most this many runs.")
@click.option("--full", is_flag=True,
              help="Errors whole, below the table (default: their first line, cut to fit).")
@STORE_OPTION
@SERVER_OPTION
@JSON_OPTION
def runs(app_dir: Path, node_key: str | None, limit: int, full: bool,
         store_path: StoreAt | None, server_url: str | None, as_json: bool) -> None:
    """The run history, newest first: status, trigger, rows, time and error.

    The trigger says why a run ran: first run, out of date (new rows in a table it reads
    since its last run; a node that reads no table always is), upstream (woken by another
    run of the same pass), manual, schedule, webhook, retry, continuation. In a terminal the
    error is cut to fit (whole with --full, below the table); piped, nothing is cut. The
    next runs of cron nodes follow the table (all of them: `patterns schedule`)."""
    app = readable_app(app_dir)
    node = app.node(node_key) if node_key else None
    remote = server_for(app, server_url) if server_url else None
    if remote is not None:
        query = {"limit": limit, **({"node": node.id} if node else {})}
        docs = remote.get("/runs", params=query)
        upcoming = _remote_schedules(remote)
    else:
        with door(app, store_path) as opened:
            docs = opened.call("runs", node_id=node.id if node else None, limit=limit)
            upcoming = opened.call("schedules")
    if node is not None:
        upcoming = [u for u in upcoming if u["node_id"] == node.id]
    records = [record_from_json(doc) for doc in docs]
    if as_json:
        print_json([r.to_json() for r in records])
        return
    from rich.markup import escape

    from patterns.cli.console import print_runs
    from patterns.cli.render import make_console

    console = make_console()
    if not records:
        console.print(f"[dim]no runs yet: run the app with `patterns run {escape(str(app.root))}`"
                      f"[/]")
        return
    print_runs(console, records, title=f"{app.title}: last {len(records)} run(s)", full=full,
               started=True, full_hint="errors are cut to their first line: `--full` shows "
                                       "them whole, `patterns logs --run RUN` the output")
    if upcoming:
        soon = ", ".join(f"{u['node']} {_next_text(u)}" for u in upcoming[:3])
        more = f" (and {len(upcoming) - 3} more: `patterns schedule`)" if len(upcoming) > 3 else ""
        console.print(f"[dim]next scheduled: {escape(soon)}{more}[/]")


@click.command()
@APP_ARGUMENT
@STORE_OPTION
@SERVER_OPTION
@JSON_OPTION
def schedule(app_dir: Path, store_path: StoreAt | None, server_url: str | None,
             as_json: bool) -> None:
    """The nodes with a cron trigger and when each runs next, soonest first.

    While the app is served, the server's own next slot; otherwise the next slot from now
    (when the node would run if the app were served)."""
    app = load(app_dir)
    remote = server_for(app, server_url) if server_url else None
    if remote is not None:
        upcoming = _remote_schedules(remote)
    elif not has_store(app, store_path):  # never run: every slot counts from now
        from patterns.engine.schedules import next_runs

        upcoming = [r.to_json() for r in next_runs(app, {})]
    else:
        with door(app, store_path) as opened:
            upcoming = opened.call("schedules")
    if as_json:
        print_json(upcoming)
        return
    from patterns.cli.render import Col, make_console, print_table, when

    console = make_console()
    if not upcoming:
        console.print("[dim]no node has a cron trigger: give one with `trigger: \"0 6 * * *\"` "
                      "in graph.yml (or `patterns create node --trigger`)[/]")
        return
    columns = [Col("node", "key"), Col("cron", "key"), Col("timezone"), Col("next run", "key"),
               Col("in", "key"), Col("note", "long")]
    rows = [[u["node"], u["cron"], u["timezone"], when(u["next_run"]), _until(u["next_run"]),
             "missed while the server was stopped: runs when it starts" if u.get("due")
             else ""] for u in upcoming]
    print_table(console, columns, rows, title=f"{app.title}: {len(upcoming)} scheduled node(s)",
                label=(0,))
    if not all(u.get("kept", True) for u in upcoming):
        console.print("[dim]the app is not served: the times are when each node would run "
                      "if it were (`patterns serve`)[/]")


def _remote_schedules(remote: Any) -> list[dict[str, Any]]:
    """The served app's cron nodes and their next runs, from its node list."""
    found = [{"node_id": n["id"], "node": n["title"], "cron": n["trigger"],
              "timezone": "", "next_run": n["next_run"], "kept": True, "due": False}
             for n in remote.get("/nodes") if n.get("next_run")]
    return sorted(found, key=lambda u: str(u["next_run"]))


def _until(at: str) -> str:
    from patterns.cli.render import duration

    seconds = (dt.datetime.fromisoformat(at) - dt.datetime.now(dt.UTC)).total_seconds()
    return "due" if seconds <= 0 else f"{duration(seconds)}"


def _next_text(upcoming: dict[str, Any]) -> str:
    from patterns.cli.render import when

    return f"at {when(upcoming['next_run'])} (in {_until(upcoming['next_run'])})" \
        if _until(upcoming["next_run"]) != "due" else "due"


@click.command()
@APP_ARGUMENT
@NODE_OPTION
@click.option("--run", "run_key", metavar="RUN_ID",
              help="This run: its id, or the start or end of it.")
@click.option("-f", "--follow", is_flag=True,
              help="Follow runs as they happen (the runs in progress, then every new run; "
                   "with --run, that run until it ends). Ctrl-C stops.")
@STORE_OPTION
@SERVER_OPTION
@JSON_OPTION
def logs(app_dir: Path, node_key: str | None, run_key: str | None, follow: bool,
         store_path: StoreAt | None, server_url: str | None, as_json: bool) -> None:
    """The output of a run (default: the latest run, or the latest run of --node).

    Output comes from the store (through the engine holding it, if one runs); --follow
    reads the live log beside the store, which every running engine writes.
    """
    from patterns.cli.context import store_path_for
    from patterns.engine.livelog import live_log_path
    from patterns.errors import StoreBusyError

    app = readable_app(app_dir)
    node = app.node(node_key) if node_key else None
    remote = server_for(app, server_url) if server_url else None
    live_path = live_log_path(store_path_for(app, store_path))
    if remote is None and follow and _follow(app, node, run_key, live_path, as_json):
        return
    if remote is not None and follow and not run_key:
        _follow_remote_all(remote, app, node, as_json)
        return
    try:
        if remote is not None:
            record, lines = _remote_log(remote, node, run_key)
            if follow and record.status == "running":
                _follow_remote(remote, record, as_json)
                return
        else:
            record, lines = _stored_log(app, node, run_key, store_path)
            live = _live_run(app, node, record.id, live_path) \
                if record.status == "running" else None
            if live is not None:  # its output so far is in the live log, not yet stored
                _print_live_run(live, as_json)
                return
    except StoreBusyError:
        live = _live_run(app, node, run_key, live_path)
        if live is None:
            raise
        _print_live_run(live, as_json)
        return
    if as_json:
        print_json({"run": record.to_json(), "lines": lines})
        return
    from rich.markup import escape

    from patterns.cli.console import STATUS_STYLE, output_line

    console = _console()
    style = STATUS_STYLE.get(record.status, "default")
    console.print(f"[dim]run {record.short_id} of {escape(record.node_title)} "
                  f"({record.trigger}, {_local(record.started_at or record.queued_at)})[/] "
                  f"[{style}]{record.status}[/]", highlight=False)
    if not lines:
        console.print("[dim](no output)[/]")
    for line in lines:
        console.print(output_line(record.node_title, line["stream"], line["text"],
                                  line.get("level"), _local(line["time"], "%H:%M:%S")))
    if record.status not in ("succeeded", "running", "queued") and record.error:
        console.print(f"[red]{escape(record.error)}[/]")


def _remote_log(remote: Any, node: Node | None, run_key: str | None
                ) -> tuple[RunRecord, list[dict[str, str]]]:
    if run_key:
        run_id = run_key
    else:
        latest = remote.get("/runs", params={"limit": 1, **({"node": node.id} if node else {})})
        if not latest:
            who = f"node {node.label}" if node else "the app"
            raise ConfigError(f"{who} has no runs yet on the server")
        run_id = latest[0]["id"]
    doc = remote.get(f"/runs/{run_id}/logs")
    lines = [{k: v for k, v in line.items() if v is not None} for line in doc["lines"]]
    return record_from_json(doc["run"]), lines


def _follow_remote(remote: Any, record: RunRecord, as_json: bool) -> None:
    """A running run's output from the server, as it happens (server-sent events)."""
    from patterns.engine.livelog import Event, LiveRun

    run = LiveRun(record.id, record.node_id, record.node_title, record.trigger, 0)

    def events() -> Any:
        yield Event("start", run)
        for kind, data in remote.events(f"/runs/{record.id}/logs/stream"):
            if kind == "line":
                yield Event("out", run, {"s": data.get("stream", "stdout"),
                                         "x": data.get("text", ""), "l": data.get("level"),
                                         "t": data.get("time")})
            elif kind == "end":
                yield Event("end", run, data)
                return

    with contextlib.suppress(KeyboardInterrupt):
        _print_events(events(), as_json)


def _follow_remote_all(remote: Any, app: App, node: Node | None, as_json: bool) -> None:
    """Every run on the server as it happens: the runs in progress, then each new one, by
    asking for runs and their output every half second, until Ctrl-C."""
    import time

    from patterns.engine.livelog import Event, LiveRun

    if not as_json:
        who = f"node {node.label}" if node else f"app '{app.title}'"
        _console().print(f"[dim]following the runs of {who} on {remote.url} (Ctrl-C to "
                         f"stop)[/]")
    query = {"limit": 50, **({"node": node.id} if node else {})}
    ended = {r["id"] for r in remote.get("/runs", params=query) if r["status"] != "running"}
    shown: dict[str, int] = {}  # run id -> lines printed

    def events() -> Any:
        while True:
            for doc in reversed(remote.get("/runs", params=query)):
                run_id = doc["id"]
                if run_id in ended:
                    continue
                run = LiveRun(run_id, doc["node_id"], doc["node_title"], doc["trigger"], 0)
                if run_id not in shown:
                    shown[run_id] = 0
                    yield Event("start", run)
                lines = remote.get(f"/runs/{run_id}/logs")["lines"]
                for line in lines[shown[run_id]:]:
                    yield Event("out", run, {"s": line["stream"], "x": line["text"],
                                             "l": line.get("level"), "t": line.get("time")})
                shown[run_id] = len(lines)
                if doc["status"] != "running":
                    ended.add(run_id)
                    yield Event("end", run, {"status": doc["status"], "error": doc["error"]})
            time.sleep(0.5)

    with contextlib.suppress(KeyboardInterrupt):
        _print_events(events(), as_json)


def _console() -> Any:
    from rich.console import Console

    return Console(highlight=False, soft_wrap=True)


def _stored_log(app: App, node: Node | None, run_key: str | None,
                store_path: StoreAt | None) -> tuple[RunRecord, list[dict[str, str]]]:
    with door(app, store_path) as opened:
        doc = opened.call("log", node_id=node.id if node else None, run_key=run_key,
                          node_label=node.label if node else "", root=str(app.root))
    return record_from_json(doc["run"]), [_log_line(raw) for raw in doc["text"].splitlines()
                                          if raw.strip()]


def _live_run(app: App, node: Node | None, run_key: str | None, live_path: Path) -> Any:
    """The run from the live log: ``run_key``'s, or the latest (of ``node``); None if the
    live log does not have it."""
    from patterns.engine.livelog import read_runs

    runs = [r for r in read_runs(live_path).values()
            if node is None or r.node == node.id]
    if run_key:
        wanted = run_key.strip().upper()
        runs = [r for r in runs if r.run == wanted or r.run.startswith(wanted)
                or r.run.endswith(wanted)]
        if len(runs) > 1:
            raise ConfigError(f"run '{run_key}' matches more than one run: give more of its id")
    return runs[-1] if runs else None


def _print_live_run(run: Any, as_json: bool) -> None:
    from patterns.engine.livelog import Event

    events = [Event("start", run), *(Event("out", run, line) for line in run.lines)]
    if run.end is not None:
        events.append(Event("end", run, run.end))
    _print_events(iter(events), as_json)


def _follow(app: App, node: Node | None, run_key: str | None, live_path: Path,
            as_json: bool) -> bool:
    """Follow the live log; False if ``run_key`` is not in it (long finished, or unknown:
    the store will tell)."""
    from patterns.engine.livelog import follow

    run_id = None
    if run_key:
        live = _live_run(app, node, run_key, live_path)
        if live is None:
            return False
        run_id = live.run
    elif not as_json:
        who = f"node {node.label}" if node else f"app '{app.title}'"
        _console().print(f"[dim]following the runs of {who} (Ctrl-C to stop)[/]")
    with contextlib.suppress(KeyboardInterrupt):  # Ctrl-C is how following ends
        _print_events(follow(live_path, run_id=run_id, node_ids={node.id} if node else None),
                      as_json)
    return True


def _print_events(events: Any, as_json: bool) -> None:
    from rich.markup import escape

    from patterns.cli.console import STATUS_STYLE, output_line
    from patterns.store.model import short_run_id

    console = _console()
    for event in events:
        run = event.run
        if as_json:
            doc = {"event": event.kind, "run": run.run, "node": run.node, "title": run.title}
            if event.line is not None:
                doc.update({k: v for k, v in event.line.items() if k not in ("e", "run")})
            click.echo(json.dumps(doc, ensure_ascii=False), nl=True)
            continue
        if event.kind == "start":
            console.print(f"[cyan]▶ {escape(run.title)}[/] "
                          f"[dim]({run.trigger}, run {short_run_id(run.run)})[/]")
        elif event.kind == "out" and event.line is not None:
            line = event.line
            console.print(output_line(run.title, line.get("s", "stdout"), line.get("x", ""),
                                      line.get("l"), _local(line.get("t"), "%H:%M:%S")))
        elif event.kind == "end" and event.line is not None:
            status = event.line.get("status", "")
            console.print(f"[{STATUS_STYLE.get(status, 'red')}]■ {escape(run.title)} "
                          f"{escape(status)}[/]")
            if status != "succeeded" and event.line.get("error"):
                console.print(f"  [red]{escape(event.line['error'])}[/]")
        sys.stdout.flush()


def _log_line(raw: str) -> dict[str, str]:
    """A stored log line as a dict: time, stream, text, and level for a logging record."""
    try:
        stamp, stream, text, *level = json.loads(raw)
    except (ValueError, TypeError):
        return {"time": "", "stream": "stdout", "text": raw}
    line = {"time": str(stamp), "stream": str(stream), "text": str(text)}
    if level:
        line["level"] = str(level[0])
    return line


@click.group(cls=AppGroup)
def state() -> None:
    """Look at or clear a node's state (what State() keeps between runs)."""


@state.command("show")
@APP_REQUIRED
@NODE_ARGUMENT
@STORE_OPTION
@JSON_OPTION
def state_show(app_dir: Path, node_key: str, store_path: StoreAt | None, as_json: bool) -> None:
    """Print the state document of NODE (a file or an id)."""
    app = readable_app(app_dir)
    node = app.node(node_key)
    with door(app, store_path) as opened:
        doc = opened.call("state", node_id=node.id)
    if as_json:
        print_json(doc)
    elif not doc:
        click.secho(f"node {node.label} has no state", dim=True)
    else:
        click.echo(json.dumps(doc, indent=2, ensure_ascii=False, default=str))


@state.command("reset")
@APP_REQUIRED
@NODE_ARGUMENT
@YES_OPTION
@STORE_OPTION
def state_reset(app_dir: Path, node_key: str, yes: bool, store_path: StoreAt | None) -> None:
    """Clear the state of NODE: its next run starts with an empty State()."""
    app = load(app_dir)
    node = app.node(node_key)
    with door(app, store_path, write=True) as opened:
        if not opened.call("state", node_id=node.id):
            click.secho(f"node {node.label} has no state: nothing to reset", dim=True)
            return
        confirm(yes, f"Clear the state of node {node.label}?")
        opened.call_when_free("reset_state", node_id=node.id)
    click.secho(f"state of node {node.label} cleared", fg="green")


@click.group(cls=AppGroup)
def stream() -> None:
    """Replay what a node consumes from a table."""


@stream.command("reset")
@APP_REQUIRED
@NODE_ARGUMENT
@click.argument("table_key", metavar="TABLE")
@YES_OPTION
@STORE_OPTION
def stream_reset(app_dir: Path, node_key: str, table_key: str, yes: bool,
                 store_path: StoreAt | None) -> None:
    """Make NODE consume TABLE again from the start.

    Deletes the stream position of NODE (a file or an id) on TABLE (a table name or the
    node's port name), so its next run consumes every row of the table again."""
    app = load(app_dir)
    node = app.node(node_key)
    with door(app, store_path, write=True) as opened:
        positions = opened.call("positions", node_id=node.id)
        table_name = _stream_table(node, table_key, positions)
        if table_name not in positions:
            click.secho(f"node {node.label} has not consumed {table_name} yet: it will read it "
                        f"from the start anyway", dim=True)
            return
        confirm(yes, f"Make node {node.label} consume {table_name} again from the start?")
        opened.call_when_free("reset_stream", node_id=node.id, table_name=table_name)
    click.secho(f"node {node.label} will consume {table_name} from the start on its next run",
                fg="green")


def _stream_table(node: Node, key: str, positions: dict[str, Any]) -> str:
    """The store behind ``key``: a port of the node, a table it reads, or one it streamed."""
    port = node.interface.table(key)
    if port is not None and port.mode == "r":
        return node.store_for(key)
    if key in node.reads() or key in positions:
        return key
    reads = [t.port if node.store_for(t.port) == t.port else f"{t.port} (table "
             f"{node.store_for(t.port)})" for t in node.interface.tables if t.mode == "r"]
    valid = ", ".join(reads) or "none: it reads no table"
    hint = did_you_mean(key, [*(t.port for t in node.interface.tables if t.mode == "r"),
                              *node.reads(), *positions])
    raise ConfigError(f"node {node.label} does not read a table '{key}'{hint}: the tables it "
                      f"reads are {valid}")


def register(group: click.Group) -> None:
    for command in (runs, schedule, logs, state, stream):
        group.add_command(command)
