"""The role names the components before the app is installed (its preflight checks the inventory's
choice, its unit cleanup globs them): that list must be the app's own (``sealmail.components.ALL``),
or a new component would be refused by the role, or an old unit left running."""

from __future__ import annotations

import yaml

from sealmail import components

from deploykit import ROOT


def test_the_roles_component_list_is_the_apps() -> None:
    role_vars = yaml.safe_load((ROOT / "roles/sealmail/vars/main.yml").read_text())
    assert role_vars["__sealmail_all_components"] == list(components.ALL)
