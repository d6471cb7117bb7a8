"""Delivery edges against real loopback servers: the stdout channel, the address guard on
webhook/Slack URLs (as the fetcher's), never unsigned, and the stable delivery id."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from newswire.settings import load_settings
from processors.alerts.channels import (
    DELIVERY_HEADER,
    SIGNATURE_HEADER,
    Deliverer,
    refused_destination,
)
from processors.alerts.rules import Rule, SlackChannel, StdoutChannel, WebhookChannel
from processors.alerts.settings import AlertSettings
from processors.alerts.store import RuleError, RuleStore
from tests import test_alerts_channels
from tests.test_alerts_channels import FAST, Receiver, notification

receiver = test_alerts_channels.receiver  # the same loopback server fixture


def run(rule: Rule, note: Any, *, allow: bool, settings: AlertSettings) -> list[Any]:
    async def go() -> list[Any]:
        d = Deliverer(policy=FAST, settings=settings, allow_private_networks=allow)
        try:
            return list(await d.deliver_all(rule.channels, note))
        finally:
            await d.aclose()
    return asyncio.run(go())


def secrets(receiver: Receiver) -> AlertSettings:
    return AlertSettings(secrets={  # type: ignore[arg-type]
        "default": "dflt-key", "desk": f"{receiver.url}/services/T0/B0/slacktoken"})


def test_stdout_channel_prints_one_json_line_per_notification(
        capsys: pytest.CaptureFixture[str]) -> None:
    rule = Rule(name="r", query="x", channels=(StdoutChannel(),))
    [one] = run(rule, notification(rule), allow=False, settings=AlertSettings())
    [two] = run(rule, notification(rule, 2), allow=False, settings=AlertSettings())
    assert one.ok and two.ok and one.channel == "stdout"
    lines = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    assert [x["type"] for x in lines] == ["alert", "digest"]
    assert lines[0]["story"]["story_id"] == "s0" and len(lines[1]["stories"]) == 2
    assert lines[0]["rule"]["id"] == rule.id


def test_private_addresses_are_refused_at_delivery_unless_allowed(receiver: Receiver) -> None:
    rule = Rule(name="r", query="x", channels=(
        WebhookChannel(url=receiver.url + "/hook"), SlackChannel(url_secret="desk"),
        WebhookChannel(url=f"http://localhost:{receiver.server.server_port}/named"),
        WebhookChannel(url="http://169.254.169.254/latest/meta-data")))
    note = notification(rule)
    outcomes = run(rule, note, allow=False, settings=secrets(receiver))
    # permanent (one attempt, no retry), named without the URL, nothing reached the server
    assert [(o.ok, o.attempts) for o in outcomes] == [(False, 1)] * 4
    assert [o.error for o in outcomes] == ["blocked_address:loopback_address"] * 3 + [
        "blocked_address:cloud_metadata_address"]
    assert receiver.requests == []
    assert all("slacktoken" not in (o.error or "") for o in outcomes)

    allowed = run(rule.model_copy(update={"channels": rule.channels[:3]}), note, allow=True,
                  settings=secrets(receiver))
    assert [o.ok for o in allowed] == [True, True, True]
    assert sorted(p.split("/")[1] for p, _, _ in receiver.requests) == [
        "hook", "named", "services"]


def test_delivery_id_is_stable_per_notification_and_channel(receiver: Receiver) -> None:
    rule = Rule(name="r", query="x", channels=(
        WebhookChannel(url=receiver.url + "/a"), WebhookChannel(url=receiver.url + "/b"),
        SlackChannel(url_secret="desk")))
    note = notification(rule)
    for _ in range(2):  # the same notification again (a re-delivery after a crash)
        assert all(o.ok for o in run(rule, note, allow=True, settings=secrets(receiver)))
    ids = {p: [h[DELIVERY_HEADER] for q, h, _ in receiver.requests if q == p]
           for p in ("/a", "/b", "/services/T0/B0/slacktoken")}
    assert ids == {"/a": [f"{rule.id}:s0:0"] * 2, "/b": [f"{rule.id}:s0:1"] * 2,
                   "/services/T0/B0/slacktoken": [f"{rule.id}:s0:2"] * 2}
    assert all(h[SIGNATURE_HEADER].startswith("sha256=")
               for p, h, _ in receiver.requests if p in ("/a", "/b"))
    digest = notification(rule, 3)
    run(rule, digest, allow=True, settings=secrets(receiver))
    [(headers, _)] = receiver.hits("/a")[2:]
    assert headers[DELIVERY_HEADER] == f"{rule.id}:{digest.id}:0"


@pytest.mark.parametrize(("url", "why"), [
    ("http://127.0.0.1:8080/h", "loopback"), ("https://[::1]/h", "loopback"),
    ("http://10.1.2.3/h", "private"), ("http://192.168.0.7/h", "private"),
    ("http://169.254.169.254/latest", "metadata"), ("http://localhost:9/h", "loopback"),
    ("http://[::ffff:127.0.0.1]/h", "loopback"),
])
def test_private_webhook_urls_are_refused_when_the_rule_is_created(url: str, why: str,
                                                                   tmp_path: Any) -> None:
    found = refused_destination(url, allow_private=False)
    assert found is not None and why in found
    assert refused_destination(url, allow_private=True) is None
    settings = load_settings(data_dir=tmp_path, kafka={"bootstrap_servers": "127.0.0.1:9"})
    rule = Rule(name="r", query="x", channels=(WebhookChannel(url=url),))
    with pytest.raises(RuleError, match="ALLOW_PRIVATE_NETWORKS"):  # before any Kafka I/O
        RuleStore(settings).save(rule)


def test_public_and_unresolvable_hosts_pass_the_creation_check() -> None:
    assert refused_destination("https://93.184.216.34/hook", allow_private=False) is None
    # not resolvable here: the worker resolves and checks it again when it delivers
    assert refused_destination("https://hooks.invalid/x", allow_private=False) is None
