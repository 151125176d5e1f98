"""Forms for bringing a definition in: a JSON export to import, an OpenAPI document to draft from.

They only read the upload or the pasted text; services.service_io and services.openapi_import
parse it.
"""

from __future__ import annotations

from typing import Any

from django import forms

from services.forms import FIELD_TEXT

NO_DOCUMENT = "Upload a file or paste the document."
DOCUMENT_TOO_LARGE = "The file is larger than {limit} bytes."


class DocumentForm(forms.Form):
    """Upload a file or paste text (a JSON export or an OpenAPI document)."""

    file = forms.FileField(required=False, label="Upload a file")
    text = forms.CharField(
        required=False, strip=False, label="…or paste it here",
        widget=forms.Textarea(attrs={"rows": 10, "spellcheck": "false"}),
    )  # fmt: skip
    max_bytes = 2_000_000

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        upload = data.get("file")
        if upload is not None:
            if upload.size > self.max_bytes:
                raise forms.ValidationError(DOCUMENT_TOO_LARGE.format(limit=self.max_bytes))
            upload.seek(0)
            data["document"] = upload.read()
        elif data.get("text", "").strip():
            data["document"] = data["text"]
        else:
            raise forms.ValidationError(NO_DOCUMENT)
        return data


class ImportForm(DocumentForm):
    """A JSON export, plus the secrets an export never carries (entered again, write-only)."""

    max_bytes = 1_000_000

    def __init__(self, *args: Any, secret_keys: tuple[str, ...] = (), **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for key in secret_keys:
            label, _help = FIELD_TEXT.get(key, (key.replace("_", " ").capitalize(), ""))
            self.fields[f"secret_{key}"] = forms.CharField(
                required=False, strip=False, label=label,
                help_text="Exports never contain secrets: enter it again if the service needs it.",
                widget=forms.PasswordInput(render_value=False),
            )  # fmt: skip

    def secrets(self) -> dict[str, str]:
        return {
            name.removeprefix("secret_"): value
            for name, value in self.cleaned_data.items()
            if name.startswith("secret_") and value
        }


class OpenAPIForm(DocumentForm):
    base_url = forms.CharField(
        required=False, label="Base URL (only if the document has none or a relative one)"
    )
