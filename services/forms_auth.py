"""Forms for authentications. They only parse input; services.authentications validates.

Creating one is two steps so it works without JavaScript: choose what it is for (a service or
a catalog connector), the workspace and a name; then enter the method's credential fields and
the service's extra-parameter values. Secret inputs are password inputs that never render a
value: on edit a blank secret keeps the stored one.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import replace
from typing import Any

from django import forms
from django.core.exceptions import ValidationError
from django.core.validators import RegexValidator

from services.auth_methods.base import NON_FIELD
from services.authentications import Target
from services.catalog import load_catalog
from services.models import Service
from workspaces.models import Workspace

VALUE_PREFIX = "value_"
TARGET_SERVICE = "service:"
TARGET_CONNECTOR = "connector:"

TARGET_REQUIRED = "Choose the service or connector this authentication is for."
TARGET_UNKNOWN = "Choose one of the listed services or connectors."
WORKSPACE_UNKNOWN = "Choose one of your workspaces."
SECRET_STORED = "•••• set — enter a new value to replace"  # noqa: S105 - a message
SECRET_WRITE_ONLY = "Write-only: stored encrypted and never shown again."  # noqa: S105
PATTERN_MISMATCH = "This value does not have the expected format."
PATTERN_EXAMPLE = "This value does not have the expected format, e.g. {example}."


def target_value(*, service: Service | None = None, connector: str = "") -> str:
    """The target select's value: ``service:<public id>`` or ``connector:<key>``."""
    return f"{TARGET_SERVICE}{service.public_id}" if service else f"{TARGET_CONNECTOR}{connector}"


def parse_target(value: str) -> tuple[str, str] | None:
    """("service", public id) or ("connector", key) from a target value; None if malformed."""
    for kind, prefix in (("service", TARGET_SERVICE), ("connector", TARGET_CONNECTOR)):
        if value.startswith(prefix) and value[len(prefix) :]:
            return kind, value[len(prefix) :]
    return None


def target_choices(services: Iterable[Service]) -> list[tuple[str, list[tuple[str, str]]]]:
    """Grouped choices: the organization's services, then the catalog's connectors."""
    own = [(target_value(service=s), s.name) for s in services]
    catalog = [(target_value(connector=k), c.name) for k, c in load_catalog().items()]
    groups = []
    if own:
        groups.append(("Services of this organization", own))
    groups.append(("Catalog connectors", catalog))
    return groups


class _WorkspaceChoiceMixin:
    """A workspace select limited to the member's workspaces, cleaned to the instance."""

    def _setup_workspaces(self, workspaces: list[Workspace]) -> None:
        self._workspaces = {str(w.public_id): w for w in workspaces}
        field = self.fields["workspace"]  # type: ignore[attr-defined]
        field.choices = [
            (str(w.public_id), f"{w.name} ({w.get_kind_display()})") for w in workspaces
        ]

    def clean_workspace(self) -> Workspace:
        value = self.cleaned_data.get("workspace")  # type: ignore[attr-defined]
        workspace = self._workspaces.get(value or "")
        if workspace is None:
            raise ValidationError(WORKSPACE_UNKNOWN)
        return workspace


class AuthenticationStartForm(_WorkspaceChoiceMixin, forms.Form):
    """Step one: what the authentication is for, where it lives, and its name (sent by GET)."""

    target = forms.ChoiceField(
        label="For",
        help_text="A service of this organization, or a catalog connector (usable by every "
        "service that points at it).",
    )
    workspace = forms.ChoiceField(
        label="Workspace",
        help_text="Who can use it: your personal workspace, or a shared one you belong to.",
    )
    name = forms.CharField(max_length=120, label="Name", help_text="e.g. “Production token”.")

    def __init__(
        self, *args: Any, services: Iterable[Service], workspaces: list[Workspace], **kwargs: Any
    ) -> None:
        super().__init__(*args, **kwargs)
        self.fields["target"].choices = [("", "— choose —"), *target_choices(services)]
        self.fields["target"].error_messages["required"] = TARGET_REQUIRED
        self.fields["target"].error_messages["invalid_choice"] = TARGET_UNKNOWN
        self._setup_workspaces(workspaces)


def _pattern_validator(pattern: str, example: str | None) -> RegexValidator:
    message = PATTERN_EXAMPLE.format(example=example) if example else PATTERN_MISMATCH
    # fullmatch semantics, like ExtraParam.matches
    return RegexValidator(regex=re.compile(rf"(?:{pattern})\Z"), message=message)


def _secret_input() -> forms.PasswordInput:
    return forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"})


def _text_input(placeholder: str | None) -> forms.TextInput:
    return forms.TextInput(attrs={"placeholder": placeholder} if placeholder else {})


def value_fields(target: Target, *, stored: set[str] | None = None) -> dict[str, forms.Field]:
    """Form fields for the method's credential fields and the target's extra parameters.

    ``stored`` names the secrets already stored (edit): those are optional and say so.
    """
    stored = stored or set()
    fields: dict[str, forms.Field] = {}
    for spec in target.method.credential_fields:
        kept = spec.secret and spec.key in stored
        if kept:
            help_text = SECRET_STORED
        else:
            help_text = spec.help or (SECRET_WRITE_ONLY if spec.secret else "")
        fields[VALUE_PREFIX + spec.key] = forms.CharField(
            label=spec.label,
            help_text=help_text,
            required=spec.required and not kept,
            strip=spec.strip,
            widget=_secret_input() if spec.secret else forms.TextInput(),
        )
    for param in target.extra_params:
        kept = param.secret and param.key in stored
        parts = [param.help] if param.help else []
        if param.example:
            parts.append(f"Example: {param.example}")
        if kept:
            parts.insert(0, SECRET_STORED)
        fields[VALUE_PREFIX + param.key] = forms.CharField(
            label=param.label,
            help_text=" ".join(parts),
            required=param.required and param.default is None and not kept,
            initial=param.default,
            validators=[_pattern_validator(param.pattern, param.example)] if param.pattern else [],
            widget=_secret_input() if param.secret else _text_input(param.example),
        )
    return fields


class AuthenticationValuesForm(forms.Form):
    """Step two (and edit): name plus the credential and extra-parameter values.

    ``values()`` is the dict the authentications service takes; blank secrets are left out so
    an update keeps them.
    """

    name = forms.CharField(max_length=120, label="Name")

    def __init__(
        self, *args: Any, target: Target, stored: set[str] | None = None, **kwargs: Any
    ) -> None:
        super().__init__(*args, **kwargs)
        self.target = target
        self.fields.update(value_fields(target, stored=stored))

    @property
    def has_values(self) -> bool:
        return any(name.startswith(VALUE_PREFIX) for name in self.fields)

    @property
    def value_field_names(self) -> list[str]:
        return [name for name in self.fields if name.startswith(VALUE_PREFIX)]

    def values(self) -> dict[str, str]:
        data = self.cleaned_data
        return {
            name.removeprefix(VALUE_PREFIX): data[name]
            for name in self.value_field_names
            if data.get(name) not in (None, "")
        }

    def apply_errors(self, exc: ValidationError) -> None:
        """Attach a service's ValidationError: value keys to their inputs, the rest on top."""
        if not hasattr(exc, "error_dict"):
            for message in exc.messages:
                self.add_error(None, message)
            return
        for key, errors in exc.error_dict.items():
            if VALUE_PREFIX + key in self.fields:
                target: str | None = VALUE_PREFIX + key
            elif key in self.fields and key != NON_FIELD:
                target = key
            else:
                target = None
            for error in errors:
                for message in error.messages:
                    self.add_error(target, message)


class AuthenticationCreateForm(_WorkspaceChoiceMixin, AuthenticationValuesForm):
    """Step two of creating: the chosen target travels as a hidden field."""

    target = forms.CharField(widget=forms.HiddenInput())
    workspace = forms.ChoiceField(label="Workspace")

    def __init__(
        self, *args: Any, target: Target, workspaces: list[Workspace], **kwargs: Any
    ) -> None:
        super().__init__(*args, target=target, **kwargs)
        self._setup_workspaces(workspaces)
        self.order_fields(["target", "workspace", "name"])


class OAuthConnectForm(_WorkspaceChoiceMixin, forms.Form):
    """Connect (or reconnect) an OAuth2 target: start the grant at the provider.

    With a target, the form also asks for its non-secret extra parameters (a Zendesk
    subdomain, a Microsoft tenant): they fill the OAuth URLs before "Connect". Secret ones are
    entered on the authentication afterwards.
    """

    target = forms.CharField(widget=forms.HiddenInput())
    workspace = forms.ChoiceField(label="Workspace")
    name = forms.CharField(max_length=120, label="Name")

    def __init__(
        self, *args: Any, workspaces: list[Workspace], target: Target | None = None, **kwargs: Any
    ) -> None:
        super().__init__(*args, **kwargs)
        self._setup_workspaces(workspaces)
        if target is not None:
            public = replace(target, extra_params=[p for p in target.extra_params if not p.secret])
            self.fields.update(value_fields(public))

    def values(self) -> dict[str, str]:
        """The extra parameter values entered, for oauth_flow_start / client credentials."""
        data = self.cleaned_data
        return {
            name.removeprefix(VALUE_PREFIX): data[name]
            for name in self.fields
            if name.startswith(VALUE_PREFIX) and data.get(name) not in (None, "")
        }

    def clean_target(self) -> tuple[str, str]:
        parsed = parse_target(self.cleaned_data.get("target") or "")
        if parsed is None:
            raise ValidationError(TARGET_UNKNOWN)
        return parsed
