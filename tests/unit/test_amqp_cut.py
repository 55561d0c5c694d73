"""The broker-side connection cut of the fault tests reads rabbitmqctl's listing only when every
connection in it shows its properties; a half-open one is asked about again, not guessed at."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests import amqp_cut

pytestmark = pytest.mark.unit

OPEN = {"peer_port": 5001, "client_properties": [["connection_name", "longstr", "herald.x"]]}
HALF_OPEN = {"peer_port": 5002, "client_properties": ""}


def test_a_listing_with_a_half_open_connection_is_asked_for_again(monkeypatch: pytest.MonkeyPatch) -> None:
    listings = iter([json.dumps([OPEN, HALF_OPEN]), json.dumps([OPEN])])
    monkeypatch.setattr(amqp_cut, "_ctl", lambda *args: next(listings))
    monkeypatch.setattr(amqp_cut.time, "sleep", lambda seconds: None)
    assert amqp_cut._names() == {5001: "herald.x"}


def test_a_connection_that_never_settles_is_an_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(
        amqp_cut, "_ctl", lambda *args: '[{"peer_port": 5002, "client_properties": [["a", "b"]]}]'
    )
    monkeypatch.setattr(amqp_cut.time, "sleep", lambda seconds: None)
    with pytest.raises(RuntimeError, match="without their properties"):
        amqp_cut._names(attempts=3)


@pytest.mark.parametrize(
    ("conn", "settled"),
    [
        (OPEN, True),
        (HALF_OPEN, False),
        ({"peer_port": 5003}, False),
        ({"peer_port": "5004", "client_properties": []}, False),
        ({"peer_port": 5005, "client_properties": []}, True),
    ],
)
def test_settled(conn: dict[str, Any], settled: bool) -> None:
    assert amqp_cut._settled(conn) is settled
