import email
import socket
from dataclasses import dataclass, field
from email.message import Message
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller
from django.template import TemplateDoesNotExist
from django.template.loader import get_template
from django.test import Client

from apps.audit.models import AuditEvent

FALLBACK_TEMPLATES = Path(__file__).parent / "fallback_templates"


@pytest.fixture(autouse=True)
def _base_template(settings):
    # _base.html belongs to the UI work; until it exists, pages extend a bare stand-in.
    try:
        get_template("_base.html")
    except TemplateDoesNotExist:
        settings.TEMPLATES = [
            {**settings.TEMPLATES[0], "DIRS": [*settings.TEMPLATES[0]["DIRS"], FALLBACK_TEMPLATES]}
        ]


@dataclass
class Inbox:
    messages: list[Message] = field(default_factory=list)

    async def handle_DATA(self, server, session, envelope):
        self.messages.append(email.message_from_bytes(envelope.content))
        return "250 Message accepted for delivery"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def smtp_inbox(settings):
    """A real SMTP server on 127.0.0.1; Django's SMTP backend sends to it."""
    inbox = Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=_free_port())
    controller.start()
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST = "127.0.0.1"
    settings.EMAIL_PORT = controller.port
    settings.EMAIL_USE_TLS = False
    settings.EMAIL_HOST_USER = ""
    settings.EMAIL_HOST_PASSWORD = ""
    yield inbox
    controller.stop()


@pytest.fixture
def anonymous_client() -> Client:
    return Client()


def audit_events(event_type: str):
    return AuditEvent.objects.filter(event_type=event_type).order_by("seq")
