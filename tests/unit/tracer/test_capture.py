"""Payload capture: masked, bounded JSON text of events and responses; it never raises."""

from __future__ import annotations

import datetime
import json
import re
from collections.abc import Iterator, Mapping
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tracer._capture import DEFAULT_MASK, MASKED, TRUNCATED, PayloadCapture


def capture(limit: int = 8192, pattern: str | None = None) -> PayloadCapture:
    return PayloadCapture.from_pattern(pattern, limit)


def captured(value: object, limit: int = 8192, pattern: str | None = None) -> Any:
    return json.loads(capture(limit, pattern).text(value))


@pytest.mark.parametrize(
    "key",
    ["password", "Password", "passwd", "client_secret", "SessionToken", "x-api-key", "Authorization",
     "aws_credentials", "Cookie", "set-cookie", "passphrase"],
)
def test_keys_that_look_secret_are_masked(key: str) -> None:
    assert captured({key: "hunter2", "user": "ann"}) == {key: MASKED, "user": "ann"}


def test_masking_reaches_any_depth_and_hides_whole_values() -> None:
    event = {
        "Records": [{"body": {"nested": [{"apiKey": "k1", "n": 1}]}, "headers": {"Authorization": ["Bearer x"]}}],
        "credentials": {"user": "u", "pass": "p"},
    }
    assert captured(event) == {
        "Records": [{"body": {"nested": [{"apiKey": MASKED, "n": 1}]}, "headers": {"Authorization": MASKED}}],
        "credentials": MASKED,
    }


def test_a_custom_pattern_replaces_the_default() -> None:
    assert captured({"ssn": "1", "password": "2"}, pattern="ssn|card") == {"ssn": MASKED, "password": "2"}


def test_json_inside_a_string_is_masked_and_stays_a_string() -> None:
    body = json.dumps({"user": "ann", "password": "hunter2", "items": [{"token": "t"}]})
    event = {"body": body, "isBase64Encoded": False}
    out = captured(event)
    assert json.loads(out["body"]) == {"user": "ann", "password": MASKED, "items": [{"token": MASKED}]}
    plain = json.dumps({"user": "ann"}, indent=2)
    assert captured({"body": plain}) == {"body": plain}  # nothing to hide: the string is kept as it was


def test_key_value_pairs_in_strings_are_masked_by_key() -> None:
    event = {
        "rawQueryString": "page=2&access_token=abc123&q=shoes",
        "form": "user=ann&password=hunter2",
        "header": "theme=dark; session_token=zzz",
    }
    assert captured(event) == {
        "rawQueryString": f"page=2&access_token={MASKED}&q=shoes",
        "form": f"user=ann&password={MASKED}",
        "header": f"theme=dark; session_token={MASKED}",
    }


def test_truncated_to_the_limit_with_a_marker() -> None:
    text = capture(limit=200).text({"items": list(range(100_000))})
    assert len(text) == 200 and text.endswith(TRUNCATED)
    assert text.startswith('{"items":[0,1,2,')
    short = capture(limit=200).text({"a": 1})
    assert short == '{"a":1}'


def test_a_secret_cut_by_the_limit_leaves_no_part_behind() -> None:
    secret = "S" * 5000
    body = '{"note": "' + "n" * 50 + '", "password": "' + secret + '"}'
    for limit in (80, 100, 120, 200, 400):
        text = capture(limit=limit).text({"body": body})
        assert "SSS" not in text and len(text) <= limit


def test_bytes_are_text_and_json_bytes_are_masked() -> None:
    assert captured(b'{"password": "p", "a": 1}') == json.dumps({"password": MASKED, "a": 1}, separators=(",", ":"))
    assert captured(b"\xff\xfeok") == "\\xff\\xfeok"
    assert captured(bytearray(b"plain")) == "plain"


def test_cycles_and_depth_are_bounded() -> None:
    looped: dict[str, Any] = {"name": "a"}
    looped["self"] = looped
    listed: list[Any] = [1]
    listed.append(listed)
    assert captured(looped) == {"name": "a", "self": "[cycle]"}
    assert captured(listed) == [1, "[cycle]"]
    shared = [1, 2]
    assert captured({"a": shared, "b": shared}) == {"a": [1, 2], "b": [1, 2]}  # shared is not a cycle
    deep: Any = "bottom"
    for _ in range(500):
        deep = {"d": deep}
    text = capture().text(deep)
    assert "[too deep]" in text and "bottom" not in text


def test_values_json_has_no_type_for() -> None:
    class Broken:
        def __str__(self) -> str:
            raise RuntimeError("no")

    class Point:
        def __str__(self) -> str:
            return "Point(token=abc)"

    value = {
        "price": Decimal("12.50"),
        "nan": Decimal("NaN"),
        "when": datetime.datetime(2026, 11, 26, 12, 0, tzinfo=datetime.timezone.utc),
        "day": datetime.date(2026, 11, 26),
        "inf": float("inf"),
        "tags": {"x"},
        "pair": (1, 2),
        3: "int key",
        "broken": Broken(),
        "point": Point(),
    }
    assert captured(value) == {
        "price": 12.5,
        "nan": "NaN",
        "when": "2026-11-26T12:00:00+00:00",
        "day": "2026-11-26",
        "inf": "inf",
        "tags": ["x"],
        "pair": [1, 2],
        "3": "int key",
        "broken": "<unprintable Broken>",
        "point": f"Point(token={MASKED}",
    }


def test_a_mapping_that_fails_while_read_gives_a_marker_not_an_error() -> None:
    class Failing(Mapping[str, int]):
        def __getitem__(self, key: str) -> int:
            raise KeyError(key)

        def __len__(self) -> int:
            return 1

        def __iter__(self) -> Iterator[str]:
            raise RuntimeError("changed size during iteration")

    assert capture().text({"ok": Failing()}) == "[not captured: RuntimeError]"
    assert capture(limit=5).text(Failing()) == "[not "


def test_the_default_pattern_is_the_documented_one() -> None:
    from tracer import config

    (var,) = [var for var in config.VARS if var.name == config.AFTERGLOW_CAPTURE_MASK]
    words = DEFAULT_MASK.split("|")
    assert all(word in var.doc for word in words), (words, var.doc)
    assert re.compile(DEFAULT_MASK)


# --- properties --------------------------------------------------------------------------------

SAFE = "abdfghijlmnoquvxz"  # no letter of e, k, y, s, t, c, p, r, w: no mask word can be spelled
SAFE_TEXT = st.text(alphabet=SAFE + "=&;:,{}[]\" \\\n0123456789é€", max_size=30)
SAFE_JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**63) | st.floats(allow_nan=False, allow_infinity=False)
    | SAFE_TEXT,
    lambda children: st.lists(children, max_size=5) | st.dictionaries(st.text(SAFE, max_size=8), children, max_size=5),
    max_leaves=30,
)


@settings(max_examples=300, deadline=None)
@given(SAFE_JSON)
def test_with_nothing_to_hide_the_text_is_the_json_of_the_value(value: Any) -> None:
    assert json.loads(capture(limit=1_000_000).text(value)) == value


SECRET = "S3CR3T"
MASK_KEYS = st.sampled_from(["password", "PassWord", "api_key", "Token", "x-secret", "cookie", "authorization"])
ANY_VALUE = st.recursive(
    st.none() | st.integers() | st.text(max_size=20) | st.just(SECRET) | st.binary(max_size=10),
    lambda children: st.lists(children, max_size=4)
    | st.dictionaries(st.text(max_size=8) | MASK_KEYS, children, max_size=4),
    max_leaves=25,
)


def _plant(value: Any) -> Any:
    """Secrets only under secret-looking keys: elsewhere the sentinel is removed."""
    if isinstance(value, dict):
        return {key: SECRET if re.search(DEFAULT_MASK, key, re.IGNORECASE) else _plant(item)
                for key, item in value.items()}
    if isinstance(value, list):
        return [_plant(item) for item in value]
    if isinstance(value, str):
        return value.replace(SECRET, "")
    if isinstance(value, bytes):
        return value.replace(SECRET.encode(), b"")
    return value


@settings(max_examples=300, deadline=None)
@given(ANY_VALUE, st.integers(min_value=0, max_value=400))
def test_any_value_any_limit_never_raises_never_exceeds_never_leaks(value: Any, limit: int) -> None:
    text = capture(limit=limit).text(_plant(value))
    assert isinstance(text, str) and len(text) <= limit
    assert SECRET not in text and "S3CR" not in text.replace(MASKED, "")
