"""Property-based tests for normalizers, canonicalizers and the derived key."""

from __future__ import annotations

import string

import phonenumbers
from hypothesis import given
from hypothesis import strategies as st

from leadflood.ingestion.canonical import (
    canonical_host,
    canonical_path,
    canonical_source_key,
    prefix_matches,
)
from leadflood.ingestion.idempotency import derive_key
from leadflood.ingestion.normalize import normalize_email, normalize_phone

ws = st.text(alphabet=" \t\n", max_size=3)
segment = st.text(alphabet=string.ascii_letters + string.digits + "-_", min_size=1, max_size=8)


@given(st.text(max_size=60), ws, ws)
def test_email_normalization_is_lower_trimmed_and_idempotent(email, left, right) -> None:
    out = normalize_email(left + email + right)
    if out is None:
        assert (left + email + right).strip() == ""
        return
    assert out == out.strip() and out == out.lower()
    assert normalize_email(out) == out


@given(
    st.integers(min_value=2000000, max_value=9999999),
    st.sampled_from(["602", "480", "212", "415", "312"]),
    st.sampled_from(
        ["({a}) {b}-{c}", "{a}.{b}.{c}", "+1 {a} {b} {c}", "1-{a}-{b}-{c}", "{a}{b}{c}"]
    ),
)
def test_formatting_variants_of_a_valid_number_share_one_e164(local, area, fmt) -> None:
    digits = f"{local:07d}"
    raw = fmt.format(a=area, b=digits[:3], c=digits[3:])
    parsed = phonenumbers.parse(f"+1{area}{digits}", "US")
    out = normalize_phone(raw, "US")
    if phonenumbers.is_valid_number(parsed):
        assert out == f"+1{area}{digits}"
    else:
        assert out is not None and out.isdigit() and out.endswith(area + digits)


@given(st.text(max_size=30))
def test_phone_is_e164_or_digits_of_at_least_seven_or_none(raw) -> None:
    out = normalize_phone(raw, "US")
    if out is None:
        return
    if out.startswith("+"):
        assert phonenumbers.is_valid_number(phonenumbers.parse(out))
        assert out[1:].isdigit()
    else:
        assert out.isdigit() and len(out) >= 7


@given(st.text(alphabet=string.digits + " -()", max_size=12))
def test_fewer_than_seven_digits_is_none(raw) -> None:
    if sum(c.isdigit() for c in raw) < 7:
        assert normalize_phone(raw, "US") is None


def test_phone_uses_the_market_country() -> None:
    assert normalize_phone("020 7946 0958", "GB") == "+442079460958"
    assert normalize_phone("(602) 253-1234", "US") == "+16022531234"
    assert normalize_phone("+1 602 253 1234", "GB") == "+16022531234"
    assert normalize_phone("12-34", "US") is None


@given(st.lists(segment, max_size=5), st.booleans(), st.integers(1, 3))
def test_canonical_path_collapses_slashes_and_trailing(segments, trailing, dup) -> None:
    raw = ("/" * dup) + ("/" * dup).join(segments) + ("/" if trailing else "")
    out = canonical_path(raw)
    assert "//" not in out
    assert out == "/" or not out.endswith("/")
    assert out == out.lower()
    assert canonical_path(out) == out
    assert out == ("/" + "/".join(s.lower() for s in segments) if segments else "/")


@given(
    st.lists(segment, min_size=1, max_size=3), st.sampled_from(["", ":8080", ":443"]), st.booleans()
)
def test_canonical_host_drops_port_trailing_dot_and_case(labels, port, dot) -> None:
    host = ".".join(labels)
    raw = host.upper() + ("." if dot else "") + port
    out = canonical_host(raw)
    assert out == host.lower().rstrip(".")
    assert canonical_host(out) == out


@given(st.lists(segment, min_size=1, max_size=4), segment, segment)
def test_prefix_matches_only_on_segment_boundaries(segments, extra, tail) -> None:
    prefix = canonical_path("/" + "/".join(segments))
    assert prefix_matches(prefix, prefix)
    assert prefix_matches(prefix, canonical_path(prefix + "/" + extra))
    assert not prefix_matches(prefix, canonical_path(prefix + tail.lower()))
    assert prefix_matches("/", canonical_path(prefix + "/" + extra))


@given(st.text(max_size=20), ws)
def test_source_key_canonical_form(key, pad) -> None:
    out = canonical_source_key(pad + key + pad)
    assert out == key.strip().lower()
    assert canonical_source_key(out) == out
    assert canonical_source_key(pad + "SunQuotes" + pad) == "sunquotes"


@given(st.text(max_size=20), st.text(max_size=20), ws)
def test_derived_key_ignores_name_case_and_padding(first, last, pad) -> None:
    common = {
        "source_id": "s",
        "normalized_email": "a@b.co",
        "normalized_phone": None,
        "postal_code": "85001",
    }
    a = derive_key(first_name=pad + first.upper() + pad, last_name=last.lower(), **common)
    b = derive_key(first_name=first.lower(), last_name=pad + last.upper(), **common)
    if first.upper().lower() == first.lower().lower() and last.upper().lower() == last.lower():
        assert a == b
    assert a.startswith("d1:") and len(a) == 3 + 64
