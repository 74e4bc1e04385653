"""Hostile input on every web form: a multipart body carrying a file where the forms
take text fields is refused with a 4xx, never a 500 (it was: an UploadFile reached code
that expected text)."""

from __future__ import annotations

import re
import uuid

from tests.routes import api_routes
from tests.web.test_pages import ORIGIN, browser


async def test_every_web_form_refuses_a_file_upload(runtime) -> None:
    web = await browser(runtime, "admin")
    try:
        app = web._transport.app  # type: ignore[attr-defined]
        posts = sorted(
            {
                path
                for path, route in api_routes(app)
                if "POST" in (route.methods or set())
                and not path.startswith(("/api", "/v1", "/u/"))
            }
        )
        assert len(posts) > 15
        some_id = str(uuid.uuid4())
        for path in posts:
            url = re.sub(
                r"\{[^}]*\}", lambda m: "markets" if m.group(0) == "{name}" else some_id, path
            )
            response = await web.post(
                url,
                files={"name": ("x.txt", b"hello"), "body": ("b.bin", b"\x00\xff")},
                data={"email": "a@example.com"},
                headers=ORIGIN,
            )
            assert response.status_code < 500, (path, response.status_code)
    finally:
        await web.aclose()


async def test_a_file_is_refused_even_when_the_body_was_parsed_before() -> None:
    """Middleware (an error reporter, say) may parse the form first, files allowed: the
    pages' reader still refuses the file rather than hand a handler an upload."""
    import pytest
    from starlette.requests import Request

    from leadflood.core.errors import BadRequest
    from leadflood.web.session import text_form

    body = (
        b'--b\r\nContent-Disposition: form-data; name="name"; filename="x.txt"\r\n'
        b"Content-Type: text/plain\r\n\r\nhello\r\n--b--\r\n"
    )
    sent = False

    async def receive() -> dict:
        nonlocal sent
        if sent:
            return {"type": "http.disconnect"}
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    scope = {
        "type": "http",
        "method": "POST",
        "path": "/x",
        "query_string": b"",
        "headers": [(b"content-type", b"multipart/form-data; boundary=b")],
    }
    request = Request(scope, receive)
    await request.form()  # someone else read it first, with its file
    with pytest.raises(BadRequest) as refused:
        await text_form(request)
    assert refused.value.code == "file_not_accepted"
