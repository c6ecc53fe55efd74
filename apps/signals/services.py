"""Writes for signal bots: create one (a `Bot` with kind="signal", its running `BotRun` and
its `SignalSource`), rotate its secrets, change its delivery rules.

The lead folds `signal_bot_create` into botui's `bot_create(kind="signal", ...)` once both
are on main; until then this is the minimal version. Secrets are returned once, to be
shown once; only their hashes are stored.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from django.db import IntegrityError, transaction
from django.utils import timezone

from apps.accounts.models import User
from apps.audit.services import audit_record
from apps.bots.models import Bot, BotRun, RiskProfileName
from apps.common.errors import InputInvalid
from apps.engine.risk import RiskConfigError, risk_profile
from apps.exchanges.models import ExchangeAccount
from apps.signals import secrets
from apps.signals.models import SignalSource, SizeMode
from apps.signals.parsing import PayloadInvalid, ticker_symbol

MAX_SYMBOLS = 50


@dataclass(frozen=True)
class SignalBotInput:
    name: str
    account_id: int
    symbols: list[str]
    risk_profile: str = RiskProfileName.CONSERVATIVE
    risk_overrides: dict | None = None
    size_mode: str = SizeMode.QUOTE
    size_value: Decimal | None = Decimal(100)
    passphrase: str = ""
    ip_allowlist: tuple[str, ...] = ()


@dataclass(frozen=True)
class Secrets:
    """Shown once, right after creation or rotation."""

    token: str
    passphrase: str


def signal_bot_create(*, owner: User, data: SignalBotInput) -> tuple[Bot, Secrets]:
    name = data.name.strip()
    problems: list[tuple[str, str]] = []
    if not name:
        problems.append(("name", "Give the bot a name."))
    account = ExchangeAccount.objects.filter(pk=data.account_id, owner=owner).first()
    if account is None:
        problems.append(("account", "Choose one of your exchange accounts."))
    elif account.mode != ExchangeAccount.Mode.PAPER:
        problems.append(("account", "Signal bots trade paper accounts until live trading lands."))
    symbols = _symbols(data.symbols, problems)
    overrides = data.risk_overrides or {}
    try:
        risk_profile(data.risk_profile, **overrides)
    except RiskConfigError as error:
        problems.append(
            (
                f"risk_overrides.{error.field}" if error.field in overrides else "risk_profile",
                str(error),
            )
        )
    _check_size(data.size_mode, data.size_value, problems)
    passphrase = data.passphrase.strip() or secrets.passphrase_new()
    if len(passphrase) < secrets.MIN_PASSPHRASE_LENGTH:
        problems.append(
            (
                "passphrase",
                f"Use at least {secrets.MIN_PASSPHRASE_LENGTH} characters, or leave it empty.",
            )
        )
    if problems:
        raise InputInvalid(problems)
    assert account is not None
    token = secrets.token_new()
    salt = secrets.salt_new()
    now = timezone.now()
    try:
        with transaction.atomic():
            bot = Bot.objects.create(
                owner=owner,
                name=name,
                kind=Bot.Kind.SIGNAL,
                account=account,
                symbols=symbols,
                timeframe="1m",
                risk_profile=data.risk_profile,
                risk_overrides=overrides,
            )
            run = BotRun.objects.create(bot=bot, status=BotRun.Status.RUNNING, started_at=now)
            SignalSource.objects.create(
                bot=bot,
                token_hash=secrets.token_hash(token),
                token_rotated_at=now,
                passphrase_salt=salt,
                passphrase_hash=secrets.passphrase_hash(passphrase, salt),
                ip_allowlist=list(data.ip_allowlist),
                size_mode=data.size_mode,
                size_value=data.size_value if data.size_mode != SizeMode.PROFILE else None,
            )
            audit_record(
                event_type="signals.bot.created",
                actor=owner,
                owner=owner,
                target=bot,
                data={
                    "name": name,
                    "account": account.pk,
                    "symbols": symbols,
                    "risk_profile": data.risk_profile,
                    "risk_overrides": overrides,
                    "run": run.pk,
                    "ip_allowlist": list(data.ip_allowlist),
                },
            )
    except IntegrityError:
        raise InputInvalid([("name", "You already have a bot with this name.")]) from None
    return bot, Secrets(token, passphrase)


def _symbols(raw: list[str], problems: list[tuple[str, str]]) -> list[str]:
    symbols: list[str] = []
    for index, text in enumerate(raw):
        try:
            symbol = ticker_symbol(str(text))
        except PayloadInvalid:
            problems.append(
                (f"symbols[{index}]", f"{str(text)[:40]!r} is not a market like BTC/USDT.")
            )
            continue
        if symbol not in symbols:
            symbols.append(symbol)
    if not symbols and not problems:
        problems.append(("symbols", "Whitelist at least one symbol, e.g. BTC/USDT."))
    if len(symbols) > MAX_SYMBOLS:
        problems.append(("symbols", f"At most {MAX_SYMBOLS} symbols."))
    return symbols


def _check_size(mode: str, value: Decimal | None, problems: list[tuple[str, str]]) -> None:
    if mode not in SizeMode.values:
        problems.append(("size_mode", f"Choose one of {', '.join(SizeMode.values)}."))
    elif mode == SizeMode.PROFILE:
        return
    elif value is None or value <= 0:
        problems.append(("size_value", "Give a positive default size."))
    elif mode == SizeMode.EQUITY_PCT and value > 100:
        problems.append(("size_value", "A share of equity is at most 100 %."))


@transaction.atomic
def signal_source_rotate(*, source: SignalSource, actor: User, passphrase: bool = False) -> Secrets:
    """New URL token (the old one stops working at once); optionally a new passphrase."""
    source = SignalSource.objects.select_for_update().get(pk=source.pk)
    token = secrets.token_new()
    source.token_hash = secrets.token_hash(token)
    source.token_rotated_at = timezone.now()
    new_passphrase = ""
    if passphrase:
        new_passphrase = secrets.passphrase_new()
        source.passphrase_salt = secrets.salt_new()
        source.passphrase_hash = secrets.passphrase_hash(new_passphrase, source.passphrase_salt)
    source.save()
    audit_record(
        event_type="signals.secrets.rotated",
        actor=actor,
        owner=source.bot.owner,
        target=source.bot,
        data={"token": True, "passphrase": passphrase},
    )
    return Secrets(token, new_passphrase)
