"""Secured connections and endpoints: a worker over TLS (verified against a test CA)
scores events end to end; SASL credentials reach the broker and never the log; the
customer and model endpoints need the token when one is set; no secret is exported; a
customer is forgotten on request."""

from __future__ import annotations

import asyncio
import secrets
import ssl
from pathlib import Path

import pytest
import trustme
from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaConnectionError

from stream.broker import EmbeddedBroker, free_port
from stream.producer import send_forget
from stream.settings import Settings
from stream.workerproc import WorkerProcess, worker_env
from tests.kafka import collect, latest_by_customer, send
from tests.test_stream.test_worker import (
    assert_scores_match,
    expected_state,
    make_events,
    scores_caught_up,
    wire,
)
from tests.tls_front import TlsFront

pytestmark = pytest.mark.broker

TOKEN = "tok-" + secrets.token_hex(12)
PASSWORD = "pw-" + secrets.token_hex(12)


def tls_front(tmp_path: Path, broker_port: int) -> tuple[TlsFront, Path]:
    ca = trustme.CA()
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(server)
    ca_file = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    return TlsFront(server, broker_port), ca_file


async def connects(settings: Settings) -> bool:
    producer = AIOKafkaProducer(**settings.kafka_client_options(), request_timeout_ms=3000)
    try:
        await asyncio.wait_for(producer.start(), 15)
        return True
    except (KafkaConnectionError, ssl.SSLError, TimeoutError):
        return False
    finally:
        await producer.stop()


def test_a_worker_over_tls_scores_events_and_guards_customer_data(tmp_path: Path) -> None:
    broker_port = free_port()
    front, ca_file = tls_front(tmp_path, broker_port)
    with (
        front,
        EmbeddedBroker(
            port=broker_port, advertised_port=front.port, log_path=tmp_path / "broker.log"
        ),
    ):
        bootstrap = f"127.0.0.1:{front.port}"
        settings = Settings(
            kafka_bootstrap=bootstrap, kafka_security_protocol="SSL", kafka_ssl_cafile=ca_file
        )
        # The front really is TLS, and verified: plain text and an unknown CA both fail.
        other_ca = tmp_path / "other-ca.pem"
        trustme.CA().cert_pem.write_to_path(str(other_ca))
        assert not asyncio.run(connects(Settings(kafka_bootstrap=bootstrap)))
        assert not asyncio.run(connects(settings.model_copy(update={"kafka_ssl_cafile": other_ca})))
        before = front.handshakes
        worker = WorkerProcess(
            worker_env(
                bootstrap,
                tmp_path / "w1",
                CRM_KAFKA_SECURITY_PROTOCOL="SSL",
                CRM_KAFKA_SSL_CAFILE=str(ca_file),
                CRM_WEB_TOKEN=TOKEN,
            ),
            tmp_path / "w1.log",
        )
        try:
            worker.wait_ready()
            events = make_events(seed=31, customers=20, per_customer=5, prefix="tls")
            send(settings, wire(settings, events))
            expected = expected_state(events)
            scores = collect(settings, "scores", scores_caught_up(expected), timeout_s=120)
            assert_scores_match(latest_by_customer(scores), expected)
            assert front.handshakes - before >= 2  # the worker's own connections are TLS

            customer = next(iter(expected))
            bearer = {"Authorization": f"Bearer {TOKEN}"}
            assert worker.get(f"/customers/{customer}")[0] == 401
            assert (
                worker.get(f"/customers/{customer}", headers={"Authorization": "Bearer x"})[0]
                == 401
            )
            assert worker.get("/models")[0] == 401
            assert worker.get(f"/customers/{customer}", headers=bearer)[0] == 200
            assert worker.get("/models", headers=bearer)[0] == 200
            assert worker.get("/ready")[0] == 200
            status, exported = worker.get("/metrics")
            assert status == 200 and TOKEN.encode() not in exported

            known = worker.wait_metric("crm_customers", lambda v: v == len(expected), 10)
            assert known == len(expected)
            # Forgetting: a tombstone keyed by the customer removes state and score.
            assert asyncio.run(send_forget(settings, [customer])) == 1
            gone = {"customer_id": customer, "forgotten": True}
            collect(settings, "scores", lambda records: gone in records, timeout_s=60)
            assert worker.get(f"/customers/{customer}", headers=bearer)[0] == 404
            other = next(c for c in expected if c != customer)
            assert worker.get(f"/customers/{other}", headers=bearer)[0] == 200
            assert worker.metric("crm_customers_forgotten_total") == 1
            left = worker.wait_metric("crm_customers", lambda v: v == len(expected) - 1, 10)
            assert left == len(expected) - 1
        finally:
            assert worker.stop() == 0
        assert TOKEN not in worker.log_path.read_text(errors="replace")


def test_sasl_credentials_reach_the_broker_and_never_the_log(tmp_path: Path) -> None:
    """Tansu 0.6.0 asks for SCRAM but creates users only over an authenticated
    connection, and keeps them in memory only: no user can exist, so the handshake
    must be refused. What is checked: the worker speaks SCRAM to the broker with the
    configured mechanism, stops with an error saying so, and never prints the password."""
    with EmbeddedBroker(log_path=tmp_path / "broker.log", extra_args=("--authentication",)) as b:
        worker = WorkerProcess(
            worker_env(
                b.bootstrap,
                tmp_path / "w1",
                CRM_KAFKA_SECURITY_PROTOCOL="SASL_PLAINTEXT",
                CRM_KAFKA_SASL_MECHANISM="SCRAM-SHA-256",
                CRM_KAFKA_SASL_USERNAME="crm-scorer",
                CRM_KAFKA_SASL_PASSWORD=PASSWORD,
                CRM_LOG_LEVEL="debug",
            ),
            tmp_path / "w1.log",
        )
        code = worker.proc.wait(timeout=120)
        worker.stop()
    log = worker.log_path.read_text(errors="replace")
    assert code == 2, log[-2000:]
    assert PASSWORD not in log
    assert "SASL_PLAINTEXT, SASL SCRAM-SHA-256 as 'crm-scorer'" in log, log[-2000:]


def test_secrets_stay_out_of_settings_reprs() -> None:
    settings = Settings(
        kafka_security_protocol="SASL_SSL",
        kafka_sasl_username="crm",
        kafka_sasl_password=PASSWORD,
        web_token=TOKEN,
    )
    for text in (repr(settings), str(settings), str(settings.model_dump())):
        assert PASSWORD not in text and TOKEN not in text
    options = settings.kafka_client_options()
    assert options["sasl_plain_password"] == PASSWORD  # only where the client needs it
    assert options["security_protocol"] == "SASL_SSL" and options["ssl_context"] is not None
    with pytest.raises(ValueError, match="needs CRM_KAFKA_SASL_USERNAME"):
        Settings(kafka_security_protocol="SASL_PLAINTEXT")
