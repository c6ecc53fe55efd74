from django.db import models

from apps.common import crypto


class EncryptedTextField(models.TextField):
    """Stores a Fernet token; Python code sees the plaintext.

    Decryption failures raise `cryptography.fernet.InvalidToken`; there is no fallback.
    """

    def from_db_value(self, value, expression, connection):
        if value is None or value == "":
            return value
        return crypto.decrypt(value)

    def get_prep_value(self, value):
        value = super().get_prep_value(value)
        if value is None or value == "":
            return value
        return crypto.encrypt(value)
