"""Alert bodies: field names and aliases, ticker mapping, and malformed input -> 400
naming the field, never 500 (hypothesis, through the endpoint)."""

import json
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from apps.signals.parsing import PayloadInvalid, parse_alert, parse_time, ticker_symbol
from tests.apps.signals.conftest import post_alert


@pytest.mark.parametrize(
    ("ticker", "symbol"),
    [
        ("BINANCE:BTCUSDT", "BTC/USDT"),
        ("BTCUSDT", "BTC/USDT"),
        ("binance:ethbtc", "ETH/BTC"),
        ("BYBIT:SOLUSDT.P", "SOL/USDT"),
        ("COINBASE:BTCUSD", "BTC/USD"),
        ("BTC/USDC", "BTC/USDC"),
        ("BINANCE:1000PEPEUSDT", "1000PEPE/USDT"),
        ("BINANCE:BNBFDUSD", "BNB/FDUSD"),
    ],
)
def test_tickers_map_to_ccxt_symbols(ticker, symbol):
    assert ticker_symbol(ticker) == symbol


@pytest.mark.parametrize("ticker", ["USDT", "NASDAQ:AAPL", "BTC-USDT", "", "BTC/"])
def test_unknown_tickers_name_the_field(ticker):
    with pytest.raises(PayloadInvalid) as error:
        ticker_symbol(ticker)
    assert error.value.field == "ticker"


def body(**fields) -> bytes:
    base = {"passphrase": "p", "ticker": "BTCUSDT", "action": "buy"}
    return json.dumps({**base, **fields}).encode()


def test_strategy_exit_to_flat_is_a_close():
    parsed = parse_alert(body(action="sell", position="flat"))
    assert parsed.action == "close"
    assert parse_alert(body(action="sell", position="long")).action == "sell"
    assert parse_alert(body(action="FLAT")).action == "close"


def test_sizes_and_aliases():
    assert (parse_alert(body(contracts="0.25")).size_mode, parse_alert(body(qty=1)).size) == (
        "contracts",
        Decimal(1),
    )
    assert parse_alert(body(quote_amount="50")).size_mode == "quote"
    assert parse_alert(body(equity_pct=5)).size == Decimal(5)


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"action": "hold"}, "action"),
        ({"action": None}, "action"),
        ({"contracts": "-1"}, "contracts"),
        ({"contracts": "NaN"}, "contracts"),
        ({"contracts": "1", "quote_amount": "2"}, "quote_amount"),
        ({"equity_pct": "150"}, "equity_pct"),
        ({"price": "abc"}, "price"),
        ({"time": "yesterday"}, "time"),
        ({"ticker": {"nested": 1}}, "ticker"),
        ({"passphrase": ""}, "passphrase"),
        ({"action": "close", "contracts": "1"}, "contracts"),
        ({"symbol": "ETHUSDT"}, "symbol"),
    ],
)
def test_bad_fields_are_named(fields, field):
    data = json.loads(body())
    data.update(fields)
    with pytest.raises(PayloadInvalid) as error:
        parse_alert(json.dumps(data).encode())
    assert error.value.field == field


def test_times_in_iso_seconds_and_milliseconds_agree():
    iso = parse_time("2024-05-01T12:00:00Z")
    assert parse_time("1714564800") == iso == parse_time("1714564800000")


def test_canonical_body_ignores_key_order_and_the_passphrase():
    one = parse_alert(b'{"passphrase": "a", "ticker": "BTCUSDT", "action": "buy"}')
    two = parse_alert(b'{"action": "buy", "ticker": "BTCUSDT", "passphrase": "b"}')
    assert one.key(1) == two.key(1) != one.key(2)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=3)
    ),
    max_leaves=8,
)
field_names = st.sampled_from(
    [
        "passphrase",
        "ticker",
        "action",
        "contracts",
        "quote_amount",
        "equity_pct",
        "price",
        "time",
        "id",
        "position",
    ]
) | st.text(max_size=10)
bodies = st.one_of(
    st.binary(max_size=200),
    st.text(max_size=200).map(str.encode),
    st.dictionaries(field_names, json_values, max_size=8).map(lambda d: json.dumps(d).encode()),
    st.dictionaries(field_names, st.text(max_size=15), max_size=8).map(
        lambda d: "\n".join(f"{k}={v}" for k, v in d.items()).encode()
    ),
)


@pytest.mark.django_db
@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@example(raw=b'{"\\u0000":null}', content_type="application/json")  # NUL in a key
@given(
    raw=bodies,
    content_type=st.sampled_from(
        ["application/json", "text/plain", "application/x-www-form-urlencoded", "image/png"]
    ),
)
def test_malformed_bodies_get_400_naming_a_field_never_500(client, signal_bot, raw, content_type):
    _bot, secrets = signal_bot
    response = post_alert(client, secrets.token, raw, content_type)
    assert response.status_code in (400, 401, 409), response.content
    assert response.json()["field"]
