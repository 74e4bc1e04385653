"""The inbound corpus: one test per message in tests/fixtures/inbound, each shaped like
mail real servers and clients send (Gmail, Outlook/Exchange, Apple Mail, Postfix, Exim,
qmail, Yahoo, sendmail transcripts, Boxbe). The file name says what it is:
reply_ (a person), optout_ (a person asking to be removed), auto_ (never a reply),
bounce_ (hard), soft_ (soft bounce), delayed_ and delivered_ (DSN reports)."""

from __future__ import annotations

from pathlib import Path

import pytest

from leadflood.inbox.classify import parse

CORPUS = Path(__file__).parents[1] / "fixtures" / "inbound"
MESSAGES = sorted(CORPUS.glob("*.eml"))
EXPECTED_KIND = {
    "reply": "reply",
    "optout": "opt_out",
    "auto": "auto_reply",
    "bounce": "bounce",
    "soft": "bounce",
    "delayed": "delayed",
    "delivered": "delivered",
}
QUOTED = "Would Acme like to see"


def test_the_corpus_covers_every_category() -> None:
    assert len(MESSAGES) >= 40
    assert {p.name.split("_")[0] for p in MESSAGES} == set(EXPECTED_KIND)


@pytest.mark.parametrize("path", MESSAGES, ids=lambda p: p.stem)
def test_each_message_is_read_as_what_it_is(path: Path) -> None:
    category = path.name.split("_")[0]
    read = parse(path.read_bytes())
    assert read.kind == EXPECTED_KIND[category], read.reason
    if category in ("reply", "optout"):
        assert read.from_address == "bob@lead.example"
        assert "<orig-1@sales.example>" in read.in_reply_to or not read.in_reply_to
        # The stored body is the person's own words; the quoted history stays in full_body.
        assert QUOTED not in read.body and "wrote:" not in read.body
        if QUOTED in path.read_text(encoding="utf-8"):
            assert QUOTED in read.full_body
        if category == "reply":
            assert read.body.strip()
    if category in ("bounce", "soft", "delayed", "delivered"):
        # The bounce names the mail it returns, so the lead is found even without an address.
        assert read.original_message_id == "<orig-1@sales.example>"
        assert read.bounced in (["bob@lead.example"], [])
    if category == "bounce":
        assert read.bounce_type == "hard", read.reason
    if category == "soft":
        assert read.bounce_type == "soft", read.reason


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b"\x00" * 64,
        b"From: \x00\r\n\r\nbody\x00",
        b"Subject: =?utf-8?b?////?=\nFrom: =?bogus?q?x?= <a@b>\n\nhi",
        b"Content-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: base64\n\nAAAA",
        b"Content-Type: multipart/report; report-type=delivery-status; boundary=x\n\n--x\n"
        b"Content-Type: message/delivery-status\n\nAction: failed\n--x--",
        b"From: a@b.c\n"
        + b"".join(
            f'Content-Type: multipart/mixed; boundary="b{i}"\n\n--b{i}\n'.encode()
            for i in range(3000)
        ),
        b"Content-Type: text/html\n\n" + b"<div>" * 50_000,
        b"Subject: x\n\n" + b"a\n>" * 100_000,
    ],
    ids=[
        "empty",
        "nul",
        "nul-header",
        "bad-encoded-words",
        "nul-in-base64",
        "dsn-no-recipient",
        "nested-3000",
        "html-50k-divs",
        "quoted-100k",
    ],
)
def test_odd_mail_is_read_without_an_error_and_without_nul(raw: bytes) -> None:
    read = parse(raw)
    assert read.kind in set(EXPECTED_KIND.values())
    for text in (read.body, read.subject, read.full_body, read.from_address):
        assert "\x00" not in text
