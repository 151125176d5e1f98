"""Forms only validate; views hand cleaned_data to workspaces.services."""

from __future__ import annotations

from django import forms

from workspaces.models import Role


class OrganizationForm(forms.Form):
    name = forms.CharField(max_length=120, label="Organization name")
    slug = forms.SlugField(
        max_length=50,
        required=False,
        label="Address",
        help_text="Used in URLs: /o/<address>/. Leave empty to derive it from the name.",
    )


class InvitationForm(forms.Form):
    email = forms.EmailField(label="Email address")
    role = forms.ChoiceField(choices=Role.choices, initial=Role.MEMBER)


class RoleForm(forms.Form):
    role = forms.ChoiceField(choices=Role.choices)


class SharedWorkspaceForm(forms.Form):
    name = forms.CharField(max_length=120, label="Workspace name")


class WorkspaceMemberForm(forms.Form):
    membership = forms.UUIDField(label="Member")


class ServiceOwnerForm(forms.Form):
    membership = forms.UUIDField(required=False, label="Service owner account")


class ApiKeyForm(forms.Form):
    organization = forms.SlugField(label="Organization")
    name = forms.CharField(max_length=80, initial="API key", label="Name")


class WebhookForm(forms.Form):
    webhook_url = forms.URLField(
        required=False,
        assume_scheme="https",
        label="Webhook URL",
        help_text="Receives a signed JSON POST when an authentication fails or recovers.",
    )
