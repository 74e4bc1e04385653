"""Sources post the way their systems can: JSON, form-urlencoded (HTML forms, legacy
affiliate systems) or XML, with the same fields, validation, idempotency and error
codes; anything else is 415."""

from __future__ import annotations

from urllib.parse import urlencode

import pytest

from leadflood.core.uow import single_statements, unit_of_work
from tests.factories import make_world
from tests.sql import run

FIELDS = {
    "first_name": "Ana",
    "last_name": "Lopez",
    "email": "ana.lopez@example.com",
    "phone": "(602) 253-1234",
    "postal_code": "85001",
}
FORM = {"content-type": "application/x-www-form-urlencoded"}
XML = {"content-type": "application/xml"}


@pytest.fixture
async def world(runtime):
    async with unit_of_work(runtime.db) as conn:
        return await make_world(conn)


async def stored(runtime, lead_id: str) -> dict:
    async with single_statements(runtime.db) as conn:
        row = (
            (
                await run(
                    conn,
                    "SELECT first_name, email, normalized_phone, consent, raw_payload::text AS raw "
                    "FROM leads WHERE id = :id",
                    {"id": lead_id},
                )
            )
            .mappings()
            .one()
        )
    return dict(row)


def xml(fields: dict[str, str], root: str = "lead") -> bytes:
    inner = "".join(f"<{k}>{v}</{k}>" for k, v in fields.items())
    return f'<?xml version="1.0" encoding="UTF-8"?><{root}>{inner}</{root}>'.encode()


async def test_a_form_post_is_a_lead_like_json(client, runtime, world) -> None:
    body = urlencode(
        {**FIELDS, "consent": "yes", "source_id": str(world.source_id), "utm_campaign": "spring"}
    )
    first = await client.post("/api/leads", content=body, headers=FORM)
    assert first.status_code == 201, first.text
    lead = await stored(runtime, first.json()["lead_id"])
    assert lead["first_name"] == "Ana" and lead["consent"] is True
    assert lead["normalized_phone"] == "+16022531234"
    assert '"utm_campaign": "spring"' in lead["raw"]  # custom fields kept for buyers
    # The same lead again is a replay (the derived idempotency key), not a second lead.
    again = await client.post("/api/leads", content=body, headers=FORM)
    assert again.status_code == 200 and again.json()["lead_id"] == first.json()["lead_id"]


async def test_an_xml_post_is_a_lead_like_json(client, runtime, world) -> None:
    body = xml(
        {
            **FIELDS,
            "consent": "true",
            "source_id": str(world.source_id),
            "idempotency_key": "aff-77",
        }
    )
    first = await client.post("/api/leads", content=body, headers=XML)
    assert first.status_code == 201, first.text
    assert first.json()["idempotency_key"] == "aff-77"
    lead = await stored(runtime, first.json()["lead_id"])
    assert lead["email"] == "ana.lopez@example.com" and lead["consent"] is True
    text_xml = await client.post(
        "/api/leads", content=body, headers={"content-type": "text/xml; charset=utf-8"}
    )
    assert text_xml.status_code == 200  # the same lead, by its key


@pytest.mark.parametrize(
    ("content_type", "body", "status", "code"),
    [
        ("text/plain", b'{"first_name": "Ana"}', 415, "unsupported_media_type"),
        ("multipart/form-data; boundary=x", b"--x--", 415, "unsupported_media_type"),
        ("application/xml", b"<lead><first_name>Ana</lead>", 400, "invalid_xml"),
        ("application/xml", b"", 400, "invalid_xml"),
        ("application/xml", b"<lead><a><b>deep</b></a></lead>", 400, "invalid_xml"),
        (
            "application/xml",
            b'<?xml version="1.0"?><!DOCTYPE l [<!ENTITY a "aaaaaaaaaa">'
            b'<!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">]><lead><first_name>&b;</first_name></lead>',
            400,
            "invalid_xml",
        ),
        (
            "application/xml",
            b'<?xml version="1.0"?><!DOCTYPE l [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
            b"<lead><first_name>&x;</first_name></lead>",
            400,
            "invalid_xml",
        ),
        ("application/x-www-form-urlencoded", b"first_name=Ana&first_name=Bo", 400, "invalid_body"),
        ("application/x-www-form-urlencoded", b"consent=maybe", 400, "invalid_field_type"),
        ("application/x-www-form-urlencoded", b"first_name=%FF%FE", 400, "invalid_body"),
        ("application/x-www-form-urlencoded", b"first_name=A%00na", 400, "nul_character"),
        (
            "application/x-www-form-urlencoded",
            "&".join(f"f{n}=1" for n in range(500)).encode(),
            400,
            "invalid_body",
        ),
    ],
    ids=[
        "text-plain",
        "multipart",
        "bad-xml",
        "empty-xml",
        "nested-xml",
        "billion-laughs",
        "xxe",
        "repeated-field",
        "bad-consent",
        "not-utf8",
        "nul",
        "too-many-fields",
    ],
)
async def test_odd_posts_get_a_stable_error_and_store_nothing(
    client, runtime, world, content_type, body, status, code
) -> None:
    response = await client.post("/api/leads", content=body, headers={"content-type": content_type})
    assert response.status_code == status, response.text
    assert response.json()["error"]["code"] == code
    async with single_statements(runtime.db) as conn:
        assert (await run(conn, "SELECT count(*) FROM leads", {})).scalar_one() == 0


async def test_a_form_post_is_validated_by_the_same_rules(client, world) -> None:
    body = urlencode({**FIELDS, "email": "x" * 2001, "source_id": str(world.source_id)})
    response = await client.post("/api/leads", content=body, headers=FORM)
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_field_value"
    unknown = urlencode({**FIELDS, "source_id": "no-such-source"})
    response = await client.post("/api/leads", content=unknown, headers=FORM)
    assert response.status_code in (400, 401)
