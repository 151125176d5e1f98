"""The plain client secrets of the sandbox's own OAuth clients, encrypted at rest.

django-oauth-toolkit keeps only a hash of each client secret. The sandbox hands the plain
secret to the demo services it seeds, so it keeps it here (AES-GCM, bound to this row) and
`ensure_sandbox_apps` can return the same secret on every run instead of resetting it.
"""

from __future__ import annotations

from django.db import models

from traysvc.models import TimestampedModel


class SandboxClientSecret(TimestampedModel):
    """One sandbox OAuth client's plain secret (ciphertext) and the hash DOT stored for it."""

    # The Application's client_id (not a foreign key: DOT's Application is a swappable model).
    client_id = models.CharField(max_length=255, unique=True)
    secret = models.TextField()  # encrypted: traysvc.crypto, aad = secret_aad
    # The Application.client_secret hash the plain secret was saved as: if someone resets the
    # secret elsewhere (admin), the hashes differ and a new secret is generated.
    secret_hash = models.CharField(max_length=255)

    def __str__(self) -> str:
        return f"secret of {self.client_id}"

    @property
    def secret_aad(self) -> str:
        return f"sandbox.SandboxClientSecret:{self.public_id}:secret"

    def get_secret(self) -> str:
        from traysvc import crypto

        return crypto.decrypt(self.secret, aad=self.secret_aad).decode()

    def set_secret(self, plain: str) -> None:
        from traysvc import crypto

        self.secret = crypto.encrypt(plain, aad=self.secret_aad)
