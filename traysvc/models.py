"""Abstract bases shared by every app."""

from __future__ import annotations

import uuid

from django.db import models


class TimestampedModel(models.Model):
    """created_at / updated_at on every row, and a public UUID that URLs use instead of the pk."""

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        abstract = True
