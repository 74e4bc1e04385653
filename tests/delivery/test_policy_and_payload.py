"""Retry schedule, classification, payload determinism and signing (pure)."""

from __future__ import annotations

import hashlib
import hmac
import uuid
from datetime import UTC, datetime, timedelta

import orjson
import pytest

from leadflood.core.retry import RetryPolicy
from leadflood.core.retry_after import parse_retry_after
from leadflood.delivery.channels import sanitize
from leadflood.delivery.payload import build_payload, headers, serialize
from leadflood.delivery.policy import classify_status
from leadflood.delivery.repository import ClaimedAttempt
from leadflood.delivery.safety import is_public


@pytest.mark.parametrize(
    ("status", "outcome"),
    [
        (200, "success"),
        (204, "success"),
        (408, "retryable_error"),
        (425, "retryable_error"),
        (429, "retryable_error"),
        (500, "retryable_error"),
        (503, "retryable_error"),
        (400, "permanent_error"),
        (401, "permanent_error"),
        (404, "permanent_error"),
        (422, "permanent_error"),
    ],
)
def test_status_classification(status, outcome) -> None:
    assert classify_status(status) == outcome


# The default delivery schedule (Settings.delivery_retry_schedule_s).
SCHEDULE = RetryPolicy.from_seconds([30, 120, 600, 1800])


def test_retry_schedule_and_exhaustion() -> None:
    assert SCHEDULE.max_attempts == 5
    assert [SCHEDULE.delay_after(n) for n in range(1, 6)] == [
        timedelta(seconds=30),
        timedelta(minutes=2),
        timedelta(minutes=10),
        timedelta(minutes=30),
        None,
    ]


def test_retry_after_waits_the_larger_capped_at_an_hour() -> None:
    assert SCHEDULE.delay_after(1, timedelta(seconds=10)) == timedelta(seconds=30)
    assert SCHEDULE.delay_after(1, timedelta(seconds=90)) == timedelta(seconds=90)
    assert SCHEDULE.delay_after(2, timedelta(hours=5)) == timedelta(hours=1)
    assert SCHEDULE.delay_after(5, timedelta(seconds=1)) is None


def test_retry_after_parsing() -> None:
    now = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
    assert parse_retry_after("120", now) == timedelta(seconds=120)
    assert parse_retry_after("Sun, 22 Nov 2026 12:05:00 GMT", now) == timedelta(minutes=5)
    assert parse_retry_after("soon", now) is None
    assert parse_retry_after(None, now) is None


def _row(**overrides) -> ClaimedAttempt:
    row = {
        "delivery_id": uuid.UUID(int=9),
        "attempt_no": 1,
        "round_start": 0,
        "channel": "webhook",
        "lead_status": "routed",
        "buyer_id": uuid.UUID(int=4),
        "webhook_url": "https://buyer.example/leads",
        "webhook_secret": None,
        "buyer_email": None,
        "delivery_timeout_ms": 5000,
        "lead_id": uuid.UUID(int=7),
        "offer_id": uuid.UUID(int=1),
        "offer_slug": "solar",
        "offer_name": "Solar",
        "market_id": uuid.UUID(int=2),
        "market_slug": "phx",
        "market_name": "Phoenix",
        "vertical_id": uuid.UUID(int=3),
        "vertical_slug": "solar",
        "vertical_name": "Solar",
        "first_name": "Ana",
        "last_name": "Lopez",
        "email": "ana@example.com",
        "phone": "(602) 253-1234",
        "normalized_phone": "+16022531234",
        "address": None,
        "city": "Phoenix",
        "state": "AZ",
        "postal_code": "85001",
        "consent": True,
        "consent_text": "I agree",
        "consent_certificate_url": None,
        "price_cents": 4200,
        "currency": "USD",
        "received_at": datetime(2026, 11, 22, 12, 0, tzinfo=UTC),
        "routed_at": datetime(2026, 11, 22, 12, 0, 1, tzinfo=UTC),
        "raw_payload": {"first_name": "Ana", "utm_source": "fb", "z": 1, "a": {"b": 2}},
    }
    row.update(overrides)
    return ClaimedAttempt(**row)


def test_payload_is_deterministic_sorted_and_compact() -> None:
    first = serialize(build_payload(_row()))
    second = serialize(build_payload(_row(raw_payload={"a": {"b": 2}, "z": 1, "utm_source": "fb"})))
    assert first == second
    assert b" " not in first.replace(b"I agree", b"")
    doc = orjson.loads(first)
    assert list(doc) == sorted(doc)
    assert doc["idempotency_key"] == f"lead:{uuid.UUID(int=7)}"
    assert doc["contact"]["phone"] == "+16022531234"
    assert doc["custom"] == {"utm_source": "fb", "z": 1, "a": {"b": 2}}
    assert doc["received_at"] == "2026-11-22T12:00:00Z"
    assert doc["consent"] == {"given": True, "text": "I agree", "certificate_url": None}


def test_phone_falls_back_to_raw_when_not_e164() -> None:
    doc = build_payload(_row(normalized_phone="5550100", phone="555-0100"))
    assert doc["contact"]["phone"] == "555-0100"


def test_signature_header_is_hmac_sha256_of_the_body() -> None:
    body = serialize(build_payload(_row()))
    h = headers("x", body, "s3cret")
    expected = hmac.new(b"s3cret", body, hashlib.sha256).hexdigest()
    assert h["X-Leadflood-Signature"] == f"sha256={expected}"
    assert h["Idempotency-Key"] == "lead:x" and h["User-Agent"].startswith("leadflood/")
    assert "X-Leadflood-Signature" not in headers("x", body, None)


def test_sanitize_redacts_secrets_controls_and_length() -> None:
    text = sanitize("token=s3cret\x00\x1b" + "é" * 2000, "s3cret")
    assert "s3cret" not in text and "\x00" not in text
    assert len(text.encode()) <= 1024


@pytest.mark.parametrize(
    ("address", "public"),
    [
        ("127.0.0.1", False),
        ("10.1.2.3", False),
        ("172.16.0.1", False),
        ("192.168.1.1", False),
        ("169.254.169.254", False),
        ("::1", False),
        ("fd00::1", False),
        ("fe80::1", False),
        ("0.0.0.0", False),
        ("::ffff:127.0.0.1", False),
        ("100.64.0.1", False),
        ("93.184.216.34", True),
        ("2606:4700::1111", True),
    ],
)
def test_address_classification(address, public) -> None:
    assert is_public(address) is public
