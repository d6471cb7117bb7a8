"""TLS and authentication to Kafka and Elasticsearch, from settings, against real servers.

noida-db speaks plain Kafka and plain HTTP, so tests/secureproxy.py puts real loopback
front-ends before it: HTTPS + API key / basic auth for the ES API, TLS (+ SASL/PLAIN) for
Kafka. The clients are built only from ``Settings`` the way the services build them:
``ElasticStore.from_settings``, ``KafkaSettings.client_config()`` (kafka-python) and
``faust_credentials()`` (Faust/aiokafka, in a child worker).
"""

from __future__ import annotations

import itertools
import json
import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import faust
import pytest
from faust.transport.drivers.aiokafka import credentials_to_aiokafka_auth
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer
from kafka.admin import NewTopic
from kafka.errors import KafkaError
from pydantic import SecretStr

from indexer.elastic import ElasticStore
from indexer.store import SearchRequest, StoreError, StoreUnavailable
from newswire.broker import EmbeddedServer
from newswire.cli import setup_logging
from newswire.records import Article
from newswire.settings import KafkaSettings, Settings, child_env, load_settings
from processors.faust_auth import faust_credentials
from tests.secureproxy import (
    ElasticAuthProxy,
    KafkaTlsProxy,
    TlsFiles,
    make_certs,
    make_client_cert,
)

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[1]
API_KEY = "VnVhQ2ZHY0JDZGJrUW0tZTVhT3g6dWkybHAyYXhUTm1zeWFrdzl0dk5udw=="
ES_USER, ES_PASSWORD = "newswire_writer", "es-Pa55-w0rd-never-logged"
KAFKA_USER, KAFKA_PASSWORD = "newswire", "kafka-Pa55-w0rd-never-logged"
SECRETS = (API_KEY, ES_PASSWORD, KAFKA_PASSWORD)
NOISY = ("kafka", "aiokafka", "faust", "mode", "elastic_transport", "httpx")
_ids = itertools.count()


def unique(stem: str) -> str:
    return f"{stem}{os.getpid()}x{next(_ids)}"


def assert_no_secret(*texts: str) -> None:
    for text in texts:
        for secret in SECRETS:
            assert secret not in text, f"a secret leaked: ...{text[-300:]}"


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> TlsFiles:
    return make_certs(tmp_path_factory.mktemp("tls"))


@pytest.fixture(scope="module")
def es_proxy(noida: EmbeddedServer, tls: TlsFiles) -> Iterator[ElasticAuthProxy]:
    assert noida.elasticsearch_url
    with ElasticAuthProxy(noida.elasticsearch_url, tls, api_key=API_KEY, username=ES_USER,
                          password=ES_PASSWORD) as proxy:
        yield proxy


@pytest.fixture(scope="module")
def kafka_tls(noida: EmbeddedServer, tls: TlsFiles) -> Iterator[KafkaTlsProxy]:
    with KafkaTlsProxy(noida.bootstrap, tls) as proxy:
        yield proxy


@pytest.fixture(scope="module")
def kafka_sasl(noida: EmbeddedServer, tls: TlsFiles) -> Iterator[KafkaTlsProxy]:
    with KafkaTlsProxy(noida.bootstrap, tls, sasl_users={KAFKA_USER: KAFKA_PASSWORD}) as proxy:
        yield proxy


@pytest.fixture
def pipeline_logging(caplog: pytest.LogCaptureFixture) -> Iterator[pytest.LogCaptureFixture]:
    """Logs captured as the services log at their most verbose (NEWSWIRE_LOG_LEVEL=DEBUG).

    Not raw DEBUG everywhere: kafka-python 3.0 logs SaslAuthenticate requests, PLAIN password
    included, at DEBUG; ``setup_logging`` keeps the Kafka clients at WARNING, and these tests
    fail if it stops doing so."""
    names = ("", *NOISY)
    levels = {name: logging.getLogger(name).level for name in names}
    caplog.set_level(logging.DEBUG)
    setup_logging("DEBUG")
    try:
        yield caplog
    finally:
        for name, level in levels.items():
            logging.getLogger(name).setLevel(level)


@pytest.fixture(scope="module")
def client_cert(tls: TlsFiles) -> tuple[Path, Path]:
    return make_client_cert(tls, tls.ca.parent)


@pytest.fixture(scope="module")
def kafka_mtls(noida: EmbeddedServer, tls: TlsFiles,
               client_cert: tuple[Path, Path]) -> Iterator[KafkaTlsProxy]:
    with KafkaTlsProxy(noida.bootstrap, tls, require_client_cert=True) as proxy:
        yield proxy


# -- Elasticsearch


def es_settings(proxy: ElasticAuthProxy, tmp_path: Path, **search: Any) -> Settings:
    return load_settings(data_dir=tmp_path, search={
        "elasticsearch_url": proxy.url, "index_prefix": unique("sec"), **search})


def article(key: str) -> Article:
    return Article(id=key, url=f"https://news.example/{key}", source="news.example",
                   title=f"Drone strike on Kherson port {key}",
                   text="Ukrainian officials said a drone hit the grain terminal overnight.",
                   published=datetime(2026, 3, 2, tzinfo=UTC), countries=("UA",))


@pytest.mark.parametrize("credentials", [
    {"api_key": API_KEY},
    {"username": ES_USER, "password": ES_PASSWORD},
], ids=["api_key", "basic_auth"])
def test_elastic_store_over_tls_with_credentials_from_settings(
        es_proxy: ElasticAuthProxy, tls: TlsFiles, tmp_path: Path,
        pipeline_logging: pytest.LogCaptureFixture, credentials: dict[str, str]) -> None:
    caplog = pipeline_logging
    kind = "api_key" if "api_key" in credentials else "basic"
    before = es_proxy.outcomes.copy()
    settings = es_settings(es_proxy, tmp_path, ca_certs=tls.ca, **credentials)
    store = ElasticStore.from_settings(settings.search)
    try:
        store.ensure()
        key = unique("k")
        assert store.upsert([article(key)]) == []
        store.refresh()
        found = store.search(SearchRequest(query=f"Kherson {key}", histogram=None, places=0))
    finally:
        store.close()
    assert [hit["id"] for hit in found.hits] == [key]
    assert es_proxy.outcomes[kind] > before[kind]  # it really went through the TLS proxy
    assert es_proxy.outcomes["refused"] == before["refused"]
    assert_no_secret(caplog.text, repr(settings), str(settings.model_dump()))


@pytest.mark.parametrize("credentials", [
    {"api_key": "d3Jvbmc6a2V5LW5ldmVyLWxvZ2dlZA=="},
    {"username": ES_USER, "password": "wrong-" + ES_PASSWORD},
    {},
], ids=["wrong_api_key", "wrong_password", "none"])
def test_elastic_wrong_credentials_are_a_clear_error_without_the_secret(
        es_proxy: ElasticAuthProxy, tls: TlsFiles, tmp_path: Path,
        pipeline_logging: pytest.LogCaptureFixture, credentials: dict[str, str]) -> None:
    caplog = pipeline_logging
    before = es_proxy.outcomes["refused"]
    store = ElasticStore.from_settings(
        es_settings(es_proxy, tmp_path, ca_certs=tls.ca, **credentials).search)
    try:
        with pytest.raises(StoreError) as raised:
            store.ensure()
    finally:
        store.close()
    # a refusal, not an outage: the indexer must not wait forever for it to pass
    assert not isinstance(raised.value, StoreUnavailable)
    message = str(raised.value)
    assert "AuthenticationException(401" in message
    assert es_proxy.outcomes["refused"] > before
    wrong = credentials.get("api_key") or credentials.get("password") or API_KEY
    assert wrong not in message and wrong not in caplog.text
    assert_no_secret(message, caplog.text)


@pytest.mark.filterwarnings("ignore:Connecting to 'https", "ignore:Unverified HTTPS request")
def test_elastic_tls_is_verified_unless_turned_off(
        es_proxy: ElasticAuthProxy, tmp_path: Path,
        pipeline_logging: pytest.LogCaptureFixture) -> None:
    caplog = pipeline_logging
    failed = es_proxy.outcomes["tls_failed"]
    store = ElasticStore.from_settings(es_settings(es_proxy, tmp_path, api_key=API_KEY).search)
    try:
        with pytest.raises(StoreUnavailable, match="CERTIFICATE_VERIFY_FAILED"):
            store.ensure()
    finally:
        store.close()
    assert es_proxy.outcomes["tls_failed"] > failed  # the proxy saw the handshake refused
    assert_no_secret(caplog.text)

    # the documented opt-out (verify_certs=false) connects to the same untrusted certificate
    insecure = ElasticStore.from_settings(
        es_settings(es_proxy, tmp_path, api_key=API_KEY, verify_certs=False).search)
    try:
        insecure.ensure()
    finally:
        insecure.close()


# -- Kafka


def kafka_settings_for(bootstrap: str, tmp_path: Path, **kafka: Any) -> Settings:
    return load_settings(data_dir=tmp_path, kafka={
        "bootstrap_servers": bootstrap, "topic_prefix": unique("sec"), "partitions": 1, **kafka})


def create_topics(settings: Settings, *names: str) -> None:
    admin = KafkaAdminClient(client_id="sec-admin", **settings.kafka.client_config())
    try:
        admin.create_topics([NewTopic(settings.topic(n), 1, 1) for n in names])
    finally:
        admin.close()


def produce(settings: Settings, topic: str, *values: bytes) -> None:
    producer = KafkaProducer(acks="all", **settings.kafka.client_config())
    try:
        for i, value in enumerate(values):
            producer.send(settings.topic(topic), key=f"k{i}".encode(), value=value)
        producer.flush(15)
    finally:
        producer.close()


def consume(settings: Settings, topic: str, count: int, timeout: float = 40.0) -> list[bytes]:
    """Values read through a consumer group (so also via the group coordinator)."""
    consumer = KafkaConsumer(settings.topic(topic), group_id=unique("g"),
                             auto_offset_reset="earliest", consumer_timeout_ms=500,
                             **settings.kafka.client_config())
    got: list[bytes] = []
    deadline = time.monotonic() + timeout
    try:
        while len(got) < count and time.monotonic() < deadline:
            got += [m.value for m in consumer]
    finally:
        consumer.close()
    return got


def test_kafka_python_over_tls_from_settings(
        kafka_tls: KafkaTlsProxy, tls: TlsFiles, tmp_path: Path) -> None:
    settings = kafka_settings_for(kafka_tls.bootstrap, tmp_path, security_protocol="SSL",
                                  ssl_cafile=tls.ca)
    rewrites = kafka_tls.outcomes["rewrites"]
    create_topics(settings, "tls")
    produce(settings, "tls", b"one", b"two")
    assert sorted(consume(settings, "tls", 2)) == [b"one", b"two"]
    # the clients were told the proxy's port, not noida's plain one
    assert kafka_tls.outcomes["rewrites"] > rewrites


def test_kafka_mutual_tls_with_client_certificate_from_settings(
        kafka_mtls: KafkaTlsProxy, tls: TlsFiles, client_cert: tuple[Path, Path],
        tmp_path: Path) -> None:
    cert, key = client_cert
    settings = kafka_settings_for(kafka_mtls.bootstrap, tmp_path, security_protocol="SSL",
                                  ssl_cafile=tls.ca, ssl_certfile=cert, ssl_keyfile=key)
    create_topics(settings, "mtls")
    produce(settings, "mtls", b"with a client certificate")
    assert consume(settings, "mtls", 1) == [b"with a client certificate"]
    # the same settings without the client certificate: the proxy refuses the handshake
    anonymous = settings.kafka.model_copy(update={"ssl_certfile": None, "ssl_keyfile": None})
    with pytest.raises(KafkaError):
        KafkaProducer(bootstrap_timeout_ms=3000, **anonymous.client_config())


def test_kafka_tls_without_the_ca_refuses_the_broker(
        kafka_tls: KafkaTlsProxy, tmp_path: Path,
        pipeline_logging: pytest.LogCaptureFixture) -> None:
    settings = kafka_settings_for(kafka_tls.bootstrap, tmp_path, security_protocol="SSL")
    with pytest.raises(KafkaError):
        KafkaProducer(bootstrap_timeout_ms=3000, **settings.kafka.client_config())
    # refused for the certificate (the system CAs do not know the test CA), said in the log
    assert "CERTIFICATE_VERIFY_FAILED" in pipeline_logging.text


def test_kafka_python_sasl_plain_over_tls(
        kafka_sasl: KafkaTlsProxy, tls: TlsFiles, tmp_path: Path,
        pipeline_logging: pytest.LogCaptureFixture) -> None:
    caplog = pipeline_logging
    settings = kafka_settings_for(kafka_sasl.bootstrap, tmp_path, security_protocol="SASL_SSL",
                                  sasl_mechanism="PLAIN", sasl_username=KAFKA_USER,
                                  sasl_password=KAFKA_PASSWORD, ssl_cafile=tls.ca)
    ok = kafka_sasl.outcomes["sasl_ok"]
    create_topics(settings, "sasl")
    produce(settings, "sasl", b"authenticated")
    assert consume(settings, "sasl", 1) == [b"authenticated"]
    assert kafka_sasl.outcomes["sasl_ok"] > ok

    failed = kafka_sasl.outcomes["sasl_failed"]
    wrong = settings.kafka.model_copy(
        update={"sasl_password": SecretStr("wrong-" + KAFKA_PASSWORD)})
    with pytest.raises(KafkaError) as raised:
        KafkaProducer(bootstrap_timeout_ms=3000, **wrong.client_config())
    assert kafka_sasl.outcomes["sasl_failed"] > failed
    assert "wrong-" + KAFKA_PASSWORD not in str(raised.value) + caplog.text
    assert_no_secret(str(raised.value), caplog.text, repr(settings))


class EchoWorker:
    """tests/faust_echo.py as a child process, stopped by its PID."""

    def __init__(self, settings: Settings, log: Path) -> None:
        env = {**os.environ, **child_env(settings)}
        self.log = log
        with log.open("ab") as out:
            self.proc = subprocess.Popen([sys.executable, "-m", "tests.faust_echo"], cwd=REPO,
                                         env=env, stdout=out, stderr=subprocess.STDOUT,
                                         start_new_session=True)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


@pytest.mark.parametrize("mode", ["SSL", "SASL_SSL", "mutual_TLS"])
def test_faust_worker_over_tls_with_faust_credentials(
        kafka_tls: KafkaTlsProxy, kafka_sasl: KafkaTlsProxy, kafka_mtls: KafkaTlsProxy,
        client_cert: tuple[Path, Path], tls: TlsFiles, tmp_path: Path, mode: str) -> None:
    proxy = {"SSL": kafka_tls, "SASL_SSL": kafka_sasl, "mutual_TLS": kafka_mtls}[mode]
    extra: dict[str, Any] = {
        "SSL": {},
        "SASL_SSL": {"security_protocol": "SASL_SSL", "sasl_mechanism": "PLAIN",
                     "sasl_username": KAFKA_USER, "sasl_password": KAFKA_PASSWORD},
        "mutual_TLS": {"ssl_certfile": client_cert[0], "ssl_keyfile": client_cert[1]},
    }[mode]
    sasl = mode == "SASL_SSL"
    settings = kafka_settings_for(proxy.bootstrap, tmp_path, **{
        "security_protocol": "SSL", "ssl_cafile": tls.ca, **extra})
    create_topics(settings, "echo-in", "echo-out")
    produce(settings, "echo-in", b"first", b"second")
    connections, sasl_ok = proxy.outcomes["connections"], proxy.outcomes["sasl_ok"]
    worker = EchoWorker(settings, tmp_path / "echo.log")
    try:
        got = consume(settings, "echo-out", 2, timeout=45)
    finally:
        worker.stop()
    log = worker.log.read_text(errors="replace")
    assert sorted(got) == [b"echo:first", b"echo:second"], log[-3000:]
    assert "echoed key=b'k0'" in log and "echoed key=b'k1'" in log  # by Faust, not by us
    assert proxy.outcomes["connections"] > connections
    if sasl:  # the worker authenticated too (our consumer adds one login of its own)
        assert proxy.outcomes["sasl_ok"] >= sasl_ok + 2
    assert_no_secret(log)  # the worker logged at DEBUG


# -- the client parameters the settings give (SCRAM needs a broker we cannot run here)


def test_sasl_ssl_scram_client_parameters(tls: TlsFiles) -> None:
    kafka = KafkaSettings(bootstrap_servers="k1:9093,k2:9093", security_protocol="SASL_SSL",
                          sasl_mechanism="SCRAM-SHA-512", sasl_username=KAFKA_USER,
                          sasl_password=KAFKA_PASSWORD, ssl_cafile=tls.ca)
    assert kafka.client_config() == {
        "bootstrap_servers": ["k1:9093", "k2:9093"], "security_protocol": "SASL_SSL",
        "sasl_mechanism": "SCRAM-SHA-512", "sasl_plain_username": KAFKA_USER,
        "sasl_plain_password": KAFKA_PASSWORD, "ssl_cafile": str(tls.ca)}
    credentials = faust_credentials(kafka)
    assert isinstance(credentials, faust.SASLCredentials)
    auth = credentials_to_aiokafka_auth(credentials)  # what Faust hands to aiokafka
    assert auth["security_protocol"] == "SASL_SSL"
    assert auth["sasl_mechanism"] == "SCRAM-SHA-512"
    assert (auth["sasl_plain_username"], auth["sasl_plain_password"]) == (KAFKA_USER,
                                                                          KAFKA_PASSWORD)
    assert auth["ssl_context"].verify_mode.name == "CERT_REQUIRED"
    assert KAFKA_PASSWORD not in repr(credentials) + repr(kafka)


def test_plaintext_sasl_and_plain_tls_credentials() -> None:
    sasl = KafkaSettings(bootstrap_servers="k:9092", security_protocol="SASL_PLAINTEXT",
                         sasl_mechanism="SCRAM-SHA-256", sasl_username="u", sasl_password="p")
    auth = credentials_to_aiokafka_auth(faust_credentials(sasl))
    assert auth["security_protocol"] == "SASL_PLAINTEXT" and auth["ssl_context"] is None
    assert auth["sasl_mechanism"] == "SCRAM-SHA-256"
    assert faust_credentials(KafkaSettings(bootstrap_servers="k:9092")) is None
    tls = credentials_to_aiokafka_auth(faust_credentials(
        KafkaSettings(bootstrap_servers="k:9093", security_protocol="SSL")))
    assert tls["security_protocol"] == "SSL" and tls["ssl_context"] is not None


@pytest.mark.parametrize(("kafka", "names"), [
    ({"security_protocol": "SASL_SSL", "sasl_password": KAFKA_PASSWORD},
     "needs kafka.sasl_mechanism, kafka.sasl_username"),
    ({"security_protocol": "SASL_SSL", "sasl_mechanism": "PLAIN", "sasl_username": "u",
      "sasl_password": ""}, "needs kafka.sasl_password"),
    ({"security_protocol": "SSL", "sasl_mechanism": "PLAIN", "sasl_username": "u",
      "sasl_password": KAFKA_PASSWORD}, "security_protocol=SSL: use SASL_SSL"),
    ({"sasl_username": "u", "sasl_password": KAFKA_PASSWORD},
     "security_protocol=PLAINTEXT: use SASL_SSL"),
], ids=["sasl_without_mechanism", "empty_password", "ssl_with_sasl", "plaintext_with_sasl"])
def test_half_set_sasl_is_refused_naming_the_settings(kafka: dict[str, str], names: str) -> None:
    # Faust and kafka-python would each do something else with these (SASL, plain TLS or
    # nothing), so neither gets the chance; the error never shows the password
    with pytest.raises(ValueError, match=names) as raised:
        load_settings(kafka={"bootstrap_servers": "k:9093", **kafka})
    assert_no_secret(str(raised.value))
    with pytest.raises(ValueError, match=names) as raised:
        KafkaSettings(bootstrap_servers="k:9093", **kafka)  # type: ignore[arg-type]
    assert_no_secret(str(raised.value))


# -- newswire config


def test_newswire_config_hides_every_secret(tls: TlsFiles, tmp_path: Path) -> None:
    env = {**os.environ, "NEWSWIRE_DATA_DIR": str(tmp_path),
           "NEWSWIRE_KAFKA__BOOTSTRAP_SERVERS": "k1:9093",
           "NEWSWIRE_KAFKA__SECURITY_PROTOCOL": "SASL_SSL",
           "NEWSWIRE_KAFKA__SASL_MECHANISM": "SCRAM-SHA-512",
           "NEWSWIRE_KAFKA__SASL_USERNAME": KAFKA_USER,
           "NEWSWIRE_KAFKA__SASL_PASSWORD": KAFKA_PASSWORD,
           "NEWSWIRE_KAFKA__SSL_CAFILE": str(tls.ca),
           "NEWSWIRE_SEARCH__ELASTICSEARCH_URL": "https://es:9200",
           "NEWSWIRE_SEARCH__API_KEY": API_KEY,
           "NEWSWIRE_SEARCH__USERNAME": ES_USER,
           "NEWSWIRE_SEARCH__PASSWORD": ES_PASSWORD}
    done = subprocess.run([sys.executable, "-m", "newswire", "config"], check=False,
                          env=env, cwd=REPO,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert_no_secret(done.stdout, done.stderr)
    shown = json.loads(done.stdout)
    assert shown["kafka"]["sasl_password"] == "**********"
    assert shown["search"]["api_key"] == "**********"
    assert shown["search"]["password"] == "**********"
    assert shown["kafka"]["sasl_username"] == KAFKA_USER  # the rest is shown as set

    env.pop("NEWSWIRE_KAFKA__SASL_MECHANISM")  # a settings error says what, not the values
    refused = subprocess.run([sys.executable, "-m", "newswire", "config"], check=False,
                             env=env, cwd=REPO, capture_output=True, text=True, timeout=60)
    assert refused.returncode != 0
    assert "needs kafka.sasl_mechanism" in refused.stderr
    assert_no_secret(refused.stdout, refused.stderr)


def test_credentials_in_the_elasticsearch_url_are_refused_without_echoing_them() -> None:
    from pydantic import ValidationError

    from newswire.settings import load_settings

    with pytest.raises(ValidationError) as caught:
        load_settings(search={"elasticsearch_url": "https://elastic:s3cret-pw@es:9200"})
    message = str(caught.value)
    assert "search.api_key" in message and "s3cret-pw" not in message
    assert load_settings(search={"elasticsearch_url": "https://es:9200"}).search.uses_elasticsearch
