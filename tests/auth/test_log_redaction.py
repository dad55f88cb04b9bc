"""Issue 10 item 9: failed OAuth callbacks never put authorization codes or states in the hub log."""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest

from jupyterhub_platform.auth.log_redaction import redact


@pytest.mark.parametrize(
    ("line", "secret"),
    [
        ("403 GET /hub/oauth_callback?code=c0de-1&state=eyJzdGF0ZSI6MX0 (127.0.0.1): no", "c0de-1"),
        (
            "403 GET /hub/oauth_callback?state=eyJzdGF0ZSI6MX0&code=c0de-2 (::1) 3ms",
            "eyJzdGF0ZSI6MX0",
        ),
        ("HTTPServerRequest(uri='/hub/oauth_callback?code=c0de-3', host='h')", "c0de-3"),
        ("Failed to b64-decode state: b'not-base64-st4te'", "not-base64-st4te"),
        ("OAuth state mismatch: id-0ne != id-tw0", "id-tw0"),
    ],
)
def test_codes_and_states_are_redacted(line, secret):
    assert secret not in redact(line)
    assert "[redacted]" in redact(line)


def test_lookalike_parameters_are_left_alone():
    line = "GET /hub/api/users?barcode=1&unicode=2&state_filter=3"
    assert redact(line) == line


async def test_refused_and_forged_callbacks_leave_no_code_or_state_in_the_log(
    provider, hub_factory
):
    hub = await hub_factory(provider)
    async with hub.browser() as carol:
        callback = await hub.start_login(carol, "carol")
        status, _ = await hub.finish_login(carol, callback)
        assert status == 403  # carol is in no allowed group
    raw = dict(part.split("=", 1) for part in urlsplit(callback).query.split("&"))
    code, state = raw["code"], raw["state"]  # as they appear in a logged URL

    async with hub.browser() as stranger:  # a forged callback: no state cookie
        status, _ = await hub.finish_login(
            stranger, f"{hub.url}/hub/oauth_callback?code=forged-code-123&state=forged-state-456"
        )
        assert status == 400

    log = hub.log()
    assert "GET /hub/oauth_callback?code=[redacted]&state=[redacted]" in log
    for secret in (code, state, "forged-code-123", "forged-state-456"):
        assert secret not in log
