"""The data plane beyond loopback (``--data-plane-host``): node processes reach it over a
machine address with their run token; the engine's admin door still answers only from the
engine's own machine; a bad setting is one clear error."""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Any

import pyarrow.flight as flight
import pytest

from patterns import wire
from patterns.engine.dataplane import DataPlane
from patterns.engine.engine import Engine
from patterns.errors import ConfigError
from patterns.graph.loader import load_app
from tests.conftest import write_app


def machine_address() -> str:
    """An address of this machine that is not loopback (skip if it has none)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(("192.0.2.1", 9))  # (no packet is sent)
        except OSError:
            pytest.skip("this machine has no address beyond loopback")
        address = str(probe.getsockname()[0])
    if address.startswith("127."):
        pytest.skip("this machine has no address beyond loopback")
    return address


def admin(uri: str, token: str) -> Any:
    client = flight.connect(uri)
    try:
        body = wire.encode({"token": token, "name": "tables", "args": {}})
        return list(client.do_action(flight.Action("admin", body)))
    finally:
        client.close()


def test_nodes_reach_a_data_plane_on_every_interface_by_the_address_it_advertises(
        tmp_path: Path) -> None:
    address = machine_address()
    root = write_app(tmp_path / "app", {"writer.py": """
        from patterns import Table
        Table("out", "w").append([{"n": i} for i in range(5)])
    """}, ["out"])
    engine = Engine(load_app(root), data_plane_host=f"0.0.0.0={address}")
    try:
        assert engine.dataplane.uri == f"grpc://{address}:{engine.dataplane.port}"
        record, _ = engine.run_node(engine.app.node("writer"), "manual")
        assert record.status == "succeeded", record.error
        assert engine.store.arrow('SELECT count(*) AS n FROM main."out"').to_pylist() == [
            {"n": 5}]
        # the CLI's door: on loopback, with the admin token
        assert admin(engine.dataplane.local_uri, engine.announced.token)
        # the same token from another address is refused
        with pytest.raises(flight.FlightUnauthenticatedError,
                           match="only answered from the engine's own machine"):
            admin(engine.dataplane.uri, engine.announced.token)
    finally:
        engine.close()


def test_a_run_token_is_still_needed_beyond_loopback(tmp_path: Path) -> None:
    address = machine_address()
    plane = DataPlane.from_settings(address)
    plane.start()
    try:
        client = flight.connect(plane.uri)
        body = wire.encode({"token": "not-a-run-token"})
        with pytest.raises(flight.FlightUnauthenticatedError, match="token is not valid"):
            list(client.do_action(flight.Action("run_info", body)))
        client.close()
    finally:
        plane.stop()


def test_a_bad_data_plane_setting_is_one_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATTERNS_DATA_PLANE_PORT", "http")
    with pytest.raises(ConfigError, match="PATTERNS_DATA_PLANE_PORT='http' is not a port"):
        DataPlane.from_settings()
    monkeypatch.delenv("PATTERNS_DATA_PLANE_PORT")
    with pytest.raises(ConfigError, match=r"cannot listen on 203\.0\.113\.7:0"):
        DataPlane.from_settings("203.0.113.7")  # not an address of this machine
