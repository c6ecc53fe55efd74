"""Writes for signal bots: create one (a `Bot` with kind="signal", its running `BotRun` and
its `SignalSource`), rotate its secrets, change its delivery rules.

A signal bot is a bot: `bot_create(kind="signal")` checks it like any other (its name, a
paper account of the owner, the symbols and their one quote, the risk profile, the
per-user bot ceiling) and `bot_run_start` starts it (the kill switches, its resolved
limits). Secrets are returned once, to be shown once; only their hashes are stored.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from django.db import IntegrityError, transaction
from django.utils import timezone

from apps.accounts.models import User
from apps.audit.services import audit_record
from apps.bots.models import Bot, RiskProfileName
from apps.bots.services.create import LIMIT_FIELDS, bot_create
from apps.bots.services.lifecycle import bot_run_start
from apps.common.errors import ApplicationError, InputInvalid
from apps.signals import secrets
from apps.signals.models import SignalSource, SizeMode
from apps.signals.parsing import PayloadInvalid, ticker_symbol

# bot_create's field names as the signal bot's form and API call them.
FIELD_NAMES = {"account_id": "account"}


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


@transaction.atomic
def signal_bot_create(*, owner: User, data: SignalBotInput) -> tuple[Bot, Secrets]:
    """The bot (bot_create), its source and its running run (bot_run_start), or nothing:
    InputInvalid lists every problem of the bot's and the source's settings at once;
    BotQuotaExceeded at the owner's bot ceiling."""
    problems: list[tuple[str, str]] = []
    symbols = _symbols(data.symbols, problems)
    _check_size(data.size_mode, data.size_value, problems)
    passphrase = data.passphrase.strip() or secrets.passphrase_new()
    if len(passphrase) < secrets.MIN_PASSPHRASE_LENGTH:
        problems.append(
            (
                "passphrase",
                f"Use at least {secrets.MIN_PASSPHRASE_LENGTH} characters, or leave it empty.",
            )
        )
    overrides = dict(data.risk_overrides or {})
    # A signal bot's API takes every risk value as an override; a bot keeps these two
    # in fields of their own.
    launch = {name: overrides.pop(name) for name in LIMIT_FIELDS if name in overrides}
    try:
        bot = bot_create(
            owner=owner,
            name=data.name,
            kind=Bot.Kind.SIGNAL,
            strategy_version_id=None,
            account_id=data.account_id,
            symbols=symbols,
            timeframe="1m",
            risk_profile=data.risk_profile,
            risk_overrides=overrides,
            **launch,
        )
    except InputInvalid as error:
        problems += _renamed(error.problems, reported={_base(path) for path, _ in problems})
    except IntegrityError:  # a concurrent create of the same name
        problems.append(("name", "You already have a bot with this name."))
    if problems:
        raise InputInvalid(problems)  # rolls back the bot, if bot_create made it
    try:
        run = bot_run_start(bot=bot, acting_user=owner)
    except ApplicationError as error:
        raise InputInvalid([(FIELD_NAMES.get(error.field or "", ""), error.message)]) from None
    token = secrets.token_new()
    salt = secrets.salt_new()
    SignalSource.objects.create(
        bot=bot,
        token_hash=secrets.token_hash(token),
        token_rotated_at=timezone.now(),
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
            "name": bot.name,
            "account": bot.account_id,
            "symbols": bot.symbols,
            "risk_profile": bot.risk_profile,
            "risk_overrides": bot.risk_overrides,
            "run": run.pk,
            "ip_allowlist": list(data.ip_allowlist),
        },
    )
    return bot, Secrets(token, passphrase)


def _base(path: str) -> str:
    """The form field a problem path belongs to: symbols[2] and symbols -> symbols."""
    return path.split("[")[0].split(".")[0]


def _renamed(problems: list[tuple[str, str]], *, reported: set[str]) -> list[tuple[str, str]]:
    """bot_create's problems in the signal form's names, without a second message for a
    field this service already refused (unparsable tickers leave bot_create no symbols)."""
    renamed = [(FIELD_NAMES.get(path, path), message) for path, message in problems]
    return [(path, message) for path, message in renamed if _base(path) not in reported]


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
    return symbols  # bot_create refuses none, too many, or more than one quote


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
