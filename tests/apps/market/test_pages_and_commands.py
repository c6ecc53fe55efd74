"""The market data page, the upload form, the CLI commands and the admin."""

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import CommandError, call_command
from django.urls import reverse

from apps.audit.models import AuditEvent
from apps.market.models import Candle, CandleSeries
from tests.apps.market.conftest import DATA

URL = "/market/"


def test_anonymous_users_are_sent_to_login(client, db):
    response = client.get(URL)
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("accounts:login"))
    assert client.post(URL).status_code == 302


def test_the_page_shows_coverage_and_gaps(alice_client, btc_1h):
    assert reverse("market:coverage") == URL
    page = alice_client.get(URL).content.decode()
    assert "BTC/USDT" in page and "binance" in page
    assert "2017-08-17 05:00" in page and "2021-06-09 23:00" in page
    assert "33411" in page and "of 33427" in page
    assert "8 gaps, 16 missing" in page
    assert "2017-09-22 20:00 → 2017-09-22 23:00 (4 missing)" in page


def test_an_empty_store_says_how_to_fill_it(alice_client):
    page = alice_client.get(URL).content.decode()
    assert "No candles stored yet" in page


def upload(client, content: bytes, **fields):
    data = {"exchange": "binance", "symbol": "BNB/USDT", "timeframe": "1h", **fields}
    data["file"] = SimpleUploadedFile("bnb.csv", content, content_type="text/csv")
    return client.post(URL, data)


def test_upload_imports_and_reports_counts(alice_client, alice):
    response = upload(alice_client, (DATA / "BNB-USDT_1h.csv").read_bytes())
    assert response.status_code == 302
    page = alice_client.get(URL).content.decode()
    assert "binance BNB/USDT 1h: 7477 candles read, 7477 inserted, 0 already present" in page
    assert "7 gaps, 12 missing" in page
    assert AuditEvent.objects.get(event_type="market.candles_imported").actor_id == alice.pk


def test_upload_form_errors_name_the_problem(alice_client):
    lines = (DATA / "BNB-USDT_1h.csv").read_text().splitlines()[:100]
    lines[57] = lines[57].replace(",", ",abc", 1)
    response = upload(alice_client, ("\n".join(lines) + "\n").encode())
    assert response.status_code == 400
    page = response.content.decode()
    assert "bnb.csv: row 57 (line 58), column &#x27;open&#x27;" in page
    assert "Nothing was imported." in page
    response = upload(alice_client, (DATA / "BNB-USDT_1h.csv").read_bytes(), symbol="BNBUSDT")
    assert response.status_code == 400
    assert "is not in ccxt form BASE/QUOTE" in response.content.decode()
    response = upload(alice_client, (DATA / "BNB-USDT_1h.csv").read_bytes(), timeframe="7h")
    assert "Select a valid choice" in response.content.decode()
    assert not Candle.objects.exists() and not CandleSeries.objects.exists()


def test_import_candles_cli_prints_counts(db, capsys):
    args = [
        str(DATA / "ETH-USDT_1d.csv"),
        "--exchange",
        "binance",
        "--symbol",
        "ETH/USDT",
        "--timeframe",
        "1d",
    ]
    call_command("import_candles", *args)
    assert (
        capsys.readouterr().out.strip()
        == "binance ETH/USDT 1d: 1231 candles read, 1231 inserted, 0 already present"
    )
    call_command("import_candles", *args)
    assert "0 inserted, 1231 already present" in capsys.readouterr().out
    assert AuditEvent.objects.filter(actor_label="manage.py import_candles").count() == 2


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--timeframe", "1w"], "ETH-USDT_1d.csv: row 1: 2017-08-17T00:00:00Z is not the open"),
        (["--timeframe", "5 minutes"], "--timeframe: '5 minutes' is not a timeframe"),
        (["--symbol", "ETHUSDT"], "--symbol: symbol 'ETHUSDT' is not in ccxt form"),
    ],
)
def test_import_candles_cli_errors_are_clear(db, args, message):
    base = {"--exchange": "binance", "--symbol": "ETH/USDT", "--timeframe": "1d"}
    base.update(dict(zip(args[::2], args[1::2], strict=True)))
    flat = [item for pair in base.items() for item in pair]
    with pytest.raises(CommandError, match="nothing was imported") as caught:
        call_command("import_candles", str(DATA / "ETH-USDT_1d.csv"), *flat)
    assert message in str(caught.value)
    with pytest.raises(CommandError, match="no such file"):
        call_command("import_candles", "missing.csv", *flat)
    assert not Candle.objects.exists()


def test_load_demo_candles_loads_once_then_skips(db, capsys):
    call_command("load_demo_candles")
    first = capsys.readouterr().out
    assert "BTC-USDT_1h.csv: binance BTC/USDT 1h: 33411 candles read, 33411 inserted" in first
    assert {str(s) for s in CandleSeries.objects.all()} == {
        "binance BTC/USDT 1h",
        "binance ETH/USDT 1d",
        "binance BNB/USDT 1h",
        "binance BTC/USDT 5m",
    }
    count = Candle.objects.count()
    assert count == 33_411 + 1_231 + 7_477 + 10_999
    call_command("load_demo_candles")
    assert capsys.readouterr().out.count("already loaded") == 4
    assert Candle.objects.count() == count
    assert AuditEvent.objects.filter(event_type="market.candles_imported").count() == 4


def test_admin_lists_candles_read_only_without_counting_everything(btc_1h, admin_client):
    response = admin_client.get("/admin/market/candlerow/?series__timeframe=1h")
    assert response.status_code == 200
    page = response.content.decode()
    assert "June 9, 2021, 11 p.m." in page  # newest first, by the primary-key index
    assert "Aug. 17, 2017" not in page  # only the first page of 100 rows
    assert "Add candle" not in page
    assert admin_client.get("/admin/market/candleseries/").status_code == 200
