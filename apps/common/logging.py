"""Redaction of secrets from every log record (CCXT-4).

Two layers: any secret the process has encrypted or decrypted is registered and replaced
wherever it appears, and known credential shapes (ccxt's X-MBX-APIKEY header, signatures,
apiKey/secret fields) are masked by pattern even when the value was never registered.
"""

import logging
import re
import threading

REDACTED = "[REDACTED]"
_MIN_SECRET_LENGTH = 6
_lock = threading.Lock()
_secrets: set[str] = set()

_PATTERNS = [
    re.compile(
        r"(?i)(x-mbx-apikey|x-bapi-api-key|ok-access-key|api[-_]?key|apikey)([\"']?\s*[:=]\s*[\"']?)([^\s\"'&,}]+)"
    ),
    re.compile(
        r"(?i)(signature|secret|passphrase|password|x-bapi-sign|ok-access-sign)([\"']?\s*[:=]\s*[\"']?)([^\s\"'&,}]+)"
    ),
]


def register_secret(value: str | None) -> None:
    if value and len(value) >= _MIN_SECRET_LENGTH:
        with _lock:
            _secrets.add(value)


def redact(text: str) -> str:
    with _lock:
        secrets = sorted(_secrets, key=len, reverse=True)
    for secret in secrets:
        if secret in text:
            text = text.replace(secret, REDACTED)
    for pattern in _PATTERNS:
        text = pattern.sub(lambda m: f"{m.group(1)}{m.group(2)}{REDACTED}", text)
    return text


class RedactSecretsFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = redact(message)
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        if cleaned != message or record.args:
            record.msg, record.args = cleaned, None
        return True


def _redact_record(record: logging.LogRecord) -> None:
    try:
        message = record.getMessage()
    except Exception:  # a bad format string is the handler's to report
        return
    cleaned = redact(message)
    if cleaned != message or record.args:
        record.msg, record.args = cleaned, None
    if record.exc_info and not record.exc_text:
        record.exc_text = logging.Formatter().formatException(record.exc_info)
    if record.exc_text:
        record.exc_text = redact(record.exc_text)


def _redacting_factory(base_factory):
    def factory(*args, **kwargs) -> logging.LogRecord:
        record = base_factory(*args, **kwargs)
        _redact_record(record)
        return record

    factory.redacts_secrets = True  # type: ignore[attr-defined]
    return factory


def install_redaction() -> None:
    """Redact secrets from every log record, whichever handler ends up writing it (CCXT-4).

    Two nets: the LogRecord factory cleans each record as it is created, which covers
    handlers added after startup (Celery's, daphne's, a test's capture handler); and the
    filter on every handler configured now covers records built by hand and sent straight
    to a handler. Idempotent.
    """
    base_factory = logging.getLogRecordFactory()
    if not getattr(base_factory, "redacts_secrets", False):
        logging.setLogRecordFactory(_redacting_factory(base_factory))
    loggers = [logging.getLogger()]
    loggers += [
        logger
        for logger in logging.Logger.manager.loggerDict.values()
        if isinstance(logger, logging.Logger)
    ]
    for logger in loggers:
        for handler in logger.handlers:
            if not any(isinstance(f, RedactSecretsFilter) for f in handler.filters):
                handler.addFilter(RedactSecretsFilter())
