import pytest
from django.urls import reverse

from apps.accounts.models import User
from tests.apps.accounts.conftest import audit_events
from tests.conftest import PASSWORD

pytestmark = pytest.mark.django_db
SIGNUP = reverse("accounts:signup")


def _signup(client, email, password=PASSWORD, password2=None, display_name="Ada"):
    return client.post(
        SIGNUP,
        {
            "email": email,
            "display_name": display_name,
            "password1": password,
            "password2": password if password2 is None else password2,
        },
    )


def test_the_signup_page_renders(client):
    response = client.get(SIGNUP)
    assert response.status_code == 200
    assert b'name="password1"' in response.content


def test_signup_creates_the_user_audits_it_and_logs_them_in(client):
    response = _signup(client, "  Ada@Example.COM ")

    assert response.status_code == 302
    assert response["Location"] == reverse("dashboard:home")
    user = User.objects.get()
    assert user.email == "ada@example.com"
    assert user.display_name == "Ada"
    assert user.check_password(PASSWORD)
    assert client.session["_auth_user_id"] == str(user.pk)
    [event] = audit_events("user.signed_up")
    assert event.actor_id == user.pk
    assert event.owner_id == user.pk
    assert PASSWORD not in str(event.data)
    assert client.get(reverse("accounts:profile")).status_code == 200


def test_a_duplicate_email_in_another_case_is_refused_and_writes_nothing(client, alice):
    response = _signup(client, "ALICE@example.com")

    assert response.status_code == 200
    assert "An account with this email already exists." in response.content.decode()
    assert User.objects.filter(email__iexact="alice@example.com").count() == 1
    assert not audit_events("user.signed_up").exists()
    assert "_auth_user_id" not in client.session


@pytest.mark.parametrize(
    ("password", "message"),
    [("password", "This password is too common."), ("8265", "This password is too short.")],
)
def test_a_weak_password_is_refused_with_the_validator_message(client, password, message):
    response = _signup(client, "bob@example.com", password=password)

    assert response.status_code == 200
    assert message in response.content.decode()
    assert not User.objects.exists()
    assert not audit_events("user.signed_up").exists()


def test_a_password_too_similar_to_the_email_is_refused(client):
    response = _signup(client, "margaret.hamilton@example.com", password="margaret.hamilton")

    assert "too similar to the email" in response.content.decode()
    assert not User.objects.exists()


def test_mismatched_passwords_are_refused(client):
    response = _signup(client, "bob@example.com", password2=PASSWORD + "x")

    assert "The two passwords do not match." in response.content.decode()
    assert not User.objects.exists()
