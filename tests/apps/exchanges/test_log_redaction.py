"""CCXT-4 plumbing: every handler, including ones added after startup, gets clean records."""

import io
import logging
import secrets

from apps.common.logging import REDACTED, RedactSecretsFilter, register_secret


def _secret() -> str:
    value = f"log-secret-{secrets.token_hex(8)}"
    register_secret(value)
    return value


def test_every_handler_configured_at_startup_carries_the_filter():
    loggers = [logging.getLogger()] + [
        logger
        for logger in logging.Logger.manager.loggerDict.values()
        if isinstance(logger, logging.Logger)
    ]
    handlers = [handler for logger in loggers for handler in logger.handlers]

    assert handlers
    for handler in handlers:
        if type(handler).__module__.startswith("_pytest"):
            continue  # pytest's capture handlers come and go per test
        if isinstance(handler, logging.NullHandler):
            continue  # libraries add these later; they write nothing anywhere
        assert any(isinstance(f, RedactSecretsFilter) for f in handler.filters), handler


def test_a_handler_added_later_receives_redacted_messages_and_tracebacks():
    secret = _secret()
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    logger = logging.getLogger("tests.redaction.late")
    logger.addHandler(handler)
    logger.propagate = False
    try:
        logger.warning("connecting with %s", secret)
        try:
            raise ValueError(f"bad key {secret}")
        except ValueError:
            logger.exception("failed")
    finally:
        logger.removeHandler(handler)

    output = stream.getvalue()
    assert secret not in output
    assert output.count(REDACTED) >= 2
    assert "ValueError: bad key" in output


def test_unregistered_credentials_in_ccxt_headers_are_masked_by_shape():
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    logger = logging.getLogger("tests.redaction.shape")
    logger.addHandler(handler)
    logger.propagate = False
    try:
        logger.warning("Request: %s", {"X-MBX-APIKEY": "never-registered-key-9f8e"})
    finally:
        logger.removeHandler(handler)

    assert "never-registered-key-9f8e" not in stream.getvalue()
