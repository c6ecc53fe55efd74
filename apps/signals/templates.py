"""Ready-to-paste TradingView alert messages and the curl line that imitates one."""

from __future__ import annotations

import json

PASSPHRASE_PLACEHOLDER = "YOUR-PASSPHRASE"  # noqa: S105 (a placeholder in the template)


def message_templates(passphrase: str = "") -> list[dict[str, str]]:
    secret = passphrase or PASSPHRASE_PLACEHOLDER

    def dump(body: dict[str, str]) -> str:
        return json.dumps({"passphrase": secret, **body}, indent=2)

    templates = [
        {
            "title": "Strategy alert (order fills of a Pine strategy)",
            "text": dump(
                {
                    "ticker": "{{ticker}}",
                    "action": "{{strategy.order.action}}",
                    "contracts": "{{strategy.order.contracts}}",
                    "position": "{{strategy.market_position}}",
                    "price": "{{close}}",
                    "time": "{{timenow}}",
                }
            ),
        },
        {
            "title": "Indicator alert: buy with the bot's default size",
            "text": dump(
                {
                    "ticker": "{{ticker}}",
                    "action": "buy",
                    "price": "{{close}}",
                    "time": "{{timenow}}",
                }
            ),
        },
        {
            "title": "Indicator alert: close the position",
            "text": dump(
                {
                    "ticker": "{{ticker}}",
                    "action": "close",
                    "price": "{{close}}",
                    "time": "{{timenow}}",
                }
            ),
        },
        {
            "title": "Plain text (key=value lines)",
            "text": f"passphrase={secret}\nticker={{{{ticker}}}}\naction=buy\n"
            "quote_amount=50\nprice={{close}}\ntime={{timenow}}",
        },
    ]
    for index, template in enumerate(templates, 1):
        template["id"] = f"template-{index}"
    return templates


def curl_example(url: str, passphrase: str = "", symbol: str = "BTC/USDT") -> str:
    ticker = "BINANCE:" + symbol.replace("/", "")
    body = (
        f'{{"passphrase": "{passphrase or PASSPHRASE_PLACEHOLDER}", "ticker": "{ticker}", '
        '"action": "buy", "quote_amount": "50", "time": "\'"$(date -u +%Y-%m-%dT%H:%M:%SZ)"\'"}'
    )
    return f"curl -sS -X POST '{url}' -H 'Content-Type: application/json' -d '{body}'"
