"""`newswire alerts ...` and /api/alerts against the real rules topic on noida."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import uvicorn
from click.testing import CliRunner
from pydantic import SecretStr

from indexer.embedded import EmbeddedStore
from indexer.web import create_app
from newswire.broker import free_port
from newswire.cli import main
from newswire.records import Article, ConflictTag
from newswire.settings import Settings, child_env
from processors.alerts.store import RuleStore

pytestmark = pytest.mark.integration

TOKEN = "api-token-for-tests"


def cli(settings: Settings, *args: str, input: str | None = None) -> tuple[int, str, str]:
    runner = CliRunner()
    result = runner.invoke(main, ["alerts", *args], env=child_env(settings), input=input,
                           catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


def test_cli_create_list_show_pause_resume_delete(kafka_settings: Settings,
                                                  tmp_path: Path, seed_story: str) -> None:
    code, out, err = cli(kafka_settings, "create", "iran proxies", "Iran AND (militia OR IRGC)",
                         "--conflict", "us-iran-proxy", "--webhook", "http://127.0.0.1:9/h",
                         "--secret-name", "ops", "--slack-secret", "slack_desk",
                         "--throttle", "30", "--json")
    assert code == 0, err
    created = json.loads(out)
    rid = created["id"]
    assert created["filters"]["conflicts"] == ["us-iran-proxy"]
    # the rule names its secrets; the CLI says where the workers must find them
    assert "NEWSWIRE_ALERTS__SECRETS__OPS" in err and "NEWSWIRE_ALERTS__SECRETS__SLACK_DESK" in err
    stored = RuleStore(kafka_settings).get(rid)
    assert stored is not None
    webhook, slack = stored.channels
    assert webhook.secret_name == "ops" and webhook.secret is None  # type: ignore[union-attr]
    assert slack.url_secret == "slack_desk" and slack.url is None  # type: ignore[union-attr]

    code, out, _ = cli(kafka_settings, "list")
    assert code == 0 and rid in out and "active" in out and "webhook:127.0.0.1:9" in out
    assert "slack:slack_desk" in out
    assert cli(kafka_settings, "pause", "iran proxies")[0] == 0
    code, out, _ = cli(kafka_settings, "show", rid)
    assert json.loads(out)["rule"]["paused"] is True
    assert cli(kafka_settings, "resume", rid)[0] == 0

    # which named secrets do the rules need, and does this environment set them?
    env = {**child_env(kafka_settings), "NEWSWIRE_ALERTS__SECRETS__OPS": "x-hush-9"}
    result = CliRunner().invoke(main, ["alerts", "secrets", "--json"], env=env)
    assert result.exit_code == 1  # slack_desk is missing
    report = json.loads(result.stdout)
    assert report["missing"] == ["slack_desk"] and report["secrets"]["ops"]["set"] is True
    assert report["secrets"]["ops"]["rules"] == [rid] and "x-hush-9" not in result.output
    env["NEWSWIRE_ALERTS__SECRETS__SLACK_DESK"] = "https://hooks.example/services/T/B/x"
    result = CliRunner().invoke(main, ["alerts", "secrets"], env=env)
    assert result.exit_code == 0 and "hooks.example" not in result.output, result.output

    article = tmp_path / "a.json"
    tagged = Article(id="x", url="https://x.org/1", text=seed_story,
                     conflicts=(ConflictTag(id="us-iran-proxy", name="x", score=1.0),))
    article.write_text(tagged.model_dump_json())
    code, out, _ = cli(kafka_settings, "test", str(article), "--rule", rid)
    assert code == 0 and json.loads(out)["match"] is True
    untagged = tagged.model_copy(update={"conflicts": ()}).model_dump_json()
    code, out, _ = cli(kafka_settings, "test", "-", "--rule", rid, input=untagged)
    assert code == 1 and json.loads(out)["match"] is False
    code, out, _ = cli(kafka_settings, "test", "-", "--query", "Iran AND IRGC", input=untagged)
    assert code == 0  # an unsaved rule: query only
    code, _, err = cli(kafka_settings, "test", "-", "--query", "Iran", input="{not json")
    assert code == 2 and "not an Article" in err  # bad input is not "no match" (1)

    assert cli(kafka_settings, "delete", rid)[0] == 0
    code, out, _ = cli(kafka_settings, "list")
    assert rid not in out and "no alert rules" in out


def test_cli_create_refuses_private_webhooks_unless_allowed_and_names_the_signing_secret(
        kafka_settings: Settings) -> None:
    closed = kafka_settings.model_copy(update={"fetch": kafka_settings.fetch.model_copy(
        update={"allow_private_networks": False})})
    for url in ("http://127.0.0.1:9/h", "http://169.254.169.254/x"):
        code, _, err = cli(closed, "create", "r", "x", "--webhook", url)
        assert code == 1 and "NEWSWIRE_FETCH__ALLOW_PRIVATE_NETWORKS" in err, err
    assert RuleStore(kafka_settings).all_rules() == []  # nothing written
    code, out, err = cli(closed, "create", "r", "x", "--webhook", "http://127.0.0.1:9/h",
                         "--allow-private-networks")
    assert code == 0 and out.startswith("created"), err
    # no --secret-name: 'default' signs it, and the CLI says so (and that it is unset here)
    assert "webhook:127.0.0.1:9 is signed with secret 'default' " \
        "(NEWSWIRE_ALERTS__SECRETS__DEFAULT)" in err
    assert "warning: secret 'default' is not set here" in err
    [rule] = RuleStore(kafka_settings).all_rules()
    assert rule.secret_names() == ["default"]
    # 'default' is now required like any other: without it those webhooks are not sent
    result = CliRunner().invoke(main, ["alerts", "secrets", "--json"],
                                env=child_env(kafka_settings))
    assert result.exit_code == 1 and json.loads(result.stdout)["missing"] == ["default"]


def test_cli_refuses_a_bad_query_without_writing(kafka_settings: Settings) -> None:
    runner = CliRunner()
    result = runner.invoke(main, ["alerts", "create", "bad", "title:(a OR"],
                           env=child_env(kafka_settings))
    assert result.exit_code == 1 and "cannot parse query" in result.stderr
    assert RuleStore(kafka_settings).all_rules() == []


@pytest.fixture
def api(kafka_settings: Settings, tmp_path: Path) -> Iterator[httpx.Client]:
    settings = kafka_settings.model_copy(update={
        "web": kafka_settings.web.model_copy(update={"token": SecretStr(TOKEN)})})
    store = EmbeddedStore(tmp_path / "index", writer=True)
    store.ensure()
    app = create_app(settings, store=store)
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert time.monotonic() < deadline, "web app did not start"
        time.sleep(0.05)
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as client:
            yield client
    finally:
        server.should_exit = True
        thread.join(10)
        store.close()


def test_api_rules_crud_with_token(api: httpx.Client, seed_story: str) -> None:
    auth = {"Authorization": f"Bearer {TOKEN}"}
    body = {"name": "iran", "query": "Iran AND (militia OR IRGC)",
            "filters": {"conflicts": ["us-iran-proxy"]},
            "channels": [{"type": "webhook", "url": "http://127.0.0.1:9/hook",
                          "secret_name": "ops"}]}
    assert api.post("/api/alerts", json=body).status_code == 401  # writes need the token
    r = api.post("/api/alerts", json=body, headers=auth)
    assert r.status_code == 201, r.text
    rule = r.json()["rule"]
    assert rule["channels"][0]["secret_name"] == "ops" and rule["channels"][0]["secret"] is None
    # the answer says which secret signs the webhook, and that this server lacks it
    notes = r.json()["notes"]
    assert notes[0] == "webhook:127.0.0.1:9 is signed with secret 'ops' " \
        "(NEWSWIRE_ALERTS__SECRETS__OPS)"
    assert "secret 'ops' is not set here" in notes[1] and "webhooks are not sent" in notes[1]

    listed = api.get("/api/alerts").json()["rules"]  # reads are open
    assert [x["id"] for x in listed] == [rule["id"]]
    assert api.get(f"/api/alerts/{rule['id']}").json()["rule"]["name"] == "iran"
    assert api.get("/api/alerts/nope").status_code == 404

    r = api.patch(f"/api/alerts/{rule['id']}", json={"query": "Iran AND IRGC"}, headers=auth)
    assert r.status_code == 200 and r.json()["rule"]["query"] == "Iran AND IRGC"
    assert r.json()["rule"]["created"] == rule["created"]
    assert api.post(f"/api/alerts/{rule['id']}/pause", headers=auth).json()["rule"]["paused"]
    assert not api.post(f"/api/alerts/{rule['id']}/resume",
                        headers=auth).json()["rule"]["paused"]

    article = json.loads(Article(
        id="x", url="https://x.org/1", text=seed_story,
        conflicts=(ConflictTag(id="us-iran-proxy", name="x", score=1.0),)).model_dump_json())
    r = api.post("/api/alerts/test", json={"article": article, "rule_id": rule["id"]},
                 headers=auth)
    assert r.status_code == 200 and r.json()["match"] is True
    r = api.post("/api/alerts/test", headers=auth, json={
        "article": article, "rule": {"name": "t", "query": "Sudan"}})
    assert r.json()["match"] is False

    bad = api.post("/api/alerts", json={**body, "query": "strike~2"}, headers=auth)
    assert bad.status_code == 400 and "fuzzy" in bad.json()["detail"]

    # a secret value inline is refused before anything is written, and never echoed
    inline = {**body, "name": "inline", "channels": [
        {"type": "webhook", "url": "http://127.0.0.1:9/h", "secret": "inline-secret-value"},
        {"type": "slack", "url": "https://hooks.example/services/inline-slack-token"}]}
    r = api.post("/api/alerts", json=inline, headers=auth)
    assert r.status_code == 400 and "NEWSWIRE_ALERTS__SECRETS__" in r.json()["detail"]
    assert "inline-secret-value" not in r.text and "inline-slack-token" not in r.text
    assert [x["name"] for x in api.get("/api/alerts").json()["rules"]] == ["iran"]

    assert api.delete(f"/api/alerts/{rule['id']}", headers=auth).status_code == 204
    assert api.get(f"/api/alerts/{rule['id']}").status_code == 404


def test_api_list_with_latest_alerts_per_rule(api: httpx.Client,
                                              kafka_settings: Settings) -> None:
    """``GET /api/alerts?alerts=N``: every rule with its newest N alerts (the web page's list),
    read in one pass; a rule with none gets an empty list, other rules' alerts stay out."""
    from datetime import UTC, datetime, timedelta

    from kafka import KafkaProducer

    from processors.alerts.models import Alert, ArticleRef, StoryAlerts

    auth = {"Authorization": f"Bearer {TOKEN}"}
    ids = []
    for name in ("one", "two"):
        r = api.post("/api/alerts", json={"name": name, "query": "Kharkiv"}, headers=auth)
        assert r.status_code == 201, r.text
        ids.append(r.json()["rule"]["id"])
    first, second = ids
    t0 = datetime(2026, 11, 20, tzinfo=UTC)

    def alert(rule: str, story: str, minutes: int) -> Alert:
        at = t0 + timedelta(minutes=minutes)
        ref = ArticleRef(id=story, url=f"https://x.org/{story}", title=f"t {story}",
                         source="x.org", ingested=at)
        return Alert(id=f"{rule}-{story}", rule_id=rule, story_id=story, status="sent",
                     first=ref, first_seen=at, also_reported_by=(
                         ref.model_copy(update={"id": story + "b", "source": "y.org"}),))

    producer = KafkaProducer(**kafka_settings.kafka.client_config(), acks="all")
    topic = kafka_settings.topic("alerts")
    for minutes in range(3):
        story = f"s{minutes}"
        producer.send(topic, key=story.encode(), value=StoryAlerts(
            story_id=story, alerts={first: alert(first, story, minutes)}).to_bytes())
    producer.send(topic, key=b"other", value=StoryAlerts(
        story_id="other", alerts={"gone-rule": alert("gone-rule", "other", 9)}).to_bytes())
    producer.flush(10)
    producer.close()

    plain = api.get("/api/alerts").json()
    assert "alerts" not in plain and len(plain["rules"]) == 2  # unchanged without ?alerts
    body = api.get("/api/alerts", params={"alerts": 2}).json()
    assert set(body["alerts"]) == {first, second}  # a deleted rule's alerts are not listed
    assert [a["story_id"] for a in body["alerts"][first]] == ["s2", "s1"]  # newest first, N
    assert body["alerts"][first][0]["also_reported_by"][0]["source"] == "y.org"
    assert body["alerts"][second] == []
    assert api.get("/api/alerts", params={"alerts": 99}).status_code == 422
