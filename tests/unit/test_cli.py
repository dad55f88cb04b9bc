"""``jupyterhub-platform <command>``: a subcommand whose extra is missing says what to install."""

from __future__ import annotations

from importlib import metadata

import pytest

from jupyterhub_platform import cli

REQUIRES = [
    "jupyterhub>=5.2",
    'aiohttp>=3.9; extra == "dev"',
    'kubernetes-validate>=1.30; extra == "dev"',
    "oidc-provider-mock>=0.3.4 ; extra == 'dev'",
    'ruff; extra == "lint"',
]


def importer_missing(module: str):
    def import_module(path: str):
        raise ModuleNotFoundError(f"No module named {module!r}", name=module)

    return import_module


def test_extra_modules_are_the_requirements_of_that_extra():
    assert cli.extra_modules(REQUIRES, "dev") == {
        "aiohttp",
        "kubernetes_validate",
        "oidc_provider_mock",
    }


def test_dev_without_the_dev_extra_says_what_to_install(capsys, monkeypatch):
    monkeypatch.setattr(cli, "_requires", lambda: REQUIRES)
    assert cli.main(["dev"], import_module=importer_missing("aiohttp.web")) == 1
    err = capsys.readouterr().err
    assert "jupyterhub-platform dev: needs the 'dev' extra" in err
    assert "no module 'aiohttp.web'" in err and "pip install 'jupyterhub-platform[dev]'" in err
    assert "Traceback" not in err


def test_the_installed_package_declares_the_dev_extra():
    modules = cli.extra_modules(metadata.requires(cli.DISTRIBUTION), "dev")
    assert {"aiohttp", "oidc_provider_mock"} <= modules
    assert cli.missing_extra("devcluster", "aiohttp", metadata.requires(cli.DISTRIBUTION))


def test_other_missing_modules_still_raise(monkeypatch):
    monkeypatch.setattr(cli, "_requires", lambda: REQUIRES)
    with pytest.raises(ModuleNotFoundError):
        cli.main(["dev"], import_module=importer_missing("no_such_module"))
    with pytest.raises(ModuleNotFoundError):  # policy has no extra
        cli.main(["policy"], import_module=importer_missing("aiohttp"))
