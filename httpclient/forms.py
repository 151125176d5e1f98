"""The request console's form: validates what the page posts and turns it into a Call.

Repeated rows (query pairs, headers, form fields) come as parallel lists
(`query_name`/`query_value`, ...), so the page works with plain HTML and any number of rows
(the optional JS only adds rows). Everything about the request itself (CR/LF in a header,
JSON that does not parse, ...) is the runner's to judge, so the console and the API agree.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.core.files.uploadedfile import UploadedFile as DjangoUpload
from django.http import QueryDict

from httpclient.models import CallSource
from httpclient.runner import BODY_TYPES, METHODS, Call, UploadedFile

MAX_FILES = 3
PAIR_LISTS = {"query": "query", "header": "headers", "form": "form fields"}
SERVICE_REQUIRED = "Pick a service."
UNKNOWN_CHOICE = "Pick one of the listed options."
FILE_TOO_LARGE = "{name} is larger than the {limit} MB upload limit."
MAX_UPLOAD_BYTES = 10 * 1024 * 1024

BODY_TYPE_LABELS = {
    "none": "No body",
    "json": "JSON",
    "form": "Form (urlencoded)",
    "multipart": "Multipart (files)",
    "raw": "Raw",
}


def pairs_from(data: QueryDict, prefix: str) -> list[tuple[str, str]]:
    """Rows `<prefix>_name` / `<prefix>_value` in order; blank names are skipped."""
    names = data.getlist(f"{prefix}_name")
    values = data.getlist(f"{prefix}_value")
    out = []
    for index, name in enumerate(names):
        value = values[index] if index < len(values) else ""
        if name.strip():
            out.append((name.strip(), value))
    return out


class ConsoleForm(forms.Form):
    service = forms.ChoiceField(error_messages={"required": SERVICE_REQUIRED})
    authentication = forms.ChoiceField(required=False)
    method = forms.ChoiceField(choices=[(m, m) for m in METHODS], initial="GET")
    path = forms.CharField(required=False, max_length=4000, initial="/", strip=False)
    body_type = forms.ChoiceField(
        choices=[(t, BODY_TYPE_LABELS[t]) for t in BODY_TYPES], initial="none"
    )
    body = forms.CharField(required=False, strip=False, widget=forms.Textarea)
    content_type = forms.CharField(required=False, max_length=200)
    timeout = forms.FloatField(required=False, min_value=0.1)
    follow_redirects = forms.BooleanField(required=False, initial=True)
    all_pages = forms.BooleanField(required=False)

    def __init__(
        self, *args: Any, services: list[Any], authentications: list[Any], **kwargs: Any
    ) -> None:
        super().__init__(*args, **kwargs)
        self.services = {str(s.public_id): s for s in services}
        self.authentications = {str(a.public_id): a for a in authentications}
        self.fields["service"].choices = [(k, s.name) for k, s in self.services.items()]
        self.fields["authentication"].choices = [("", "None")] + [
            (k, a.name) for k, a in self.authentications.items()
        ]
        for name in ("service", "authentication"):
            self.fields[name].error_messages["invalid_choice"] = UNKNOWN_CHOICE

    def pairs(self, prefix: str) -> list[tuple[str, str]]:
        return pairs_from(self.data, prefix) if self.is_bound else []

    def uploads(self, files: Any) -> list[UploadedFile]:
        """The multipart files: rows `file_field_N` + `file_N`."""
        out = []
        for index in range(MAX_FILES):
            upload: DjangoUpload | None = files.get(f"file_{index}")
            if upload is None:
                continue
            if upload.size and upload.size > MAX_UPLOAD_BYTES:
                self.add_error(
                    None,
                    FILE_TOO_LARGE.format(name=upload.name, limit=MAX_UPLOAD_BYTES // 2**20),
                )
                continue
            field = (self.data.get(f"file_field_{index}") or "").strip() or "file"
            out.append(
                UploadedFile(
                    field=field,
                    filename=upload.name or "upload",
                    content=upload.read(),
                    content_type=upload.content_type or "application/octet-stream",
                )
            )
        return out

    def to_call(self, *, membership: Any, files: Any) -> Call:
        """A Call for the runner (the service and authentication are the member's own)."""
        data = self.cleaned_data
        body_type = data["body_type"]
        body: Any = data["body"]
        if body_type in ("form", "multipart"):
            body = self.pairs("form")
        auth_key = data.get("authentication") or ""
        return Call(
            membership=membership,
            service=self.services[data["service"]],
            authentication=self.authentications.get(auth_key) if auth_key else None,
            method=data["method"],
            path=data["path"] or "",
            query=self.pairs("query"),
            headers=self.pairs("header"),
            body_type=body_type,
            body=body,
            files=self.uploads(files) if body_type == "multipart" else [],
            content_type=data["content_type"] if body_type == "raw" else "",
            timeout=data["timeout"],
            follow_redirects=bool(data["follow_redirects"]),
            all_pages=bool(data["all_pages"]),
            source=CallSource.CONSOLE,
        )
