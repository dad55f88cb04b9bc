"""``pods/exec`` with both official clients: exit codes, stdin, stderr, tty and the real errors.

The synchronous client (``kubernetes.stream``) negotiates v5.channel.k8s.io; kubernetes_asyncio's
``WsApiClient`` speaks v4.channel.k8s.io; both read the exit code from the error channel.
"""

from __future__ import annotations

import asyncio
import json
import os

import aiohttp
import pytest
from kubelet_helpers import NS, PY, container, phase_is, pod_body, running_and_ready, wait_pod
from kubernetes.stream import stream
from kubernetes_asyncio import client
from kubernetes_asyncio.stream import WsApiClient

pytestmark = pytest.mark.kubelet("process")

SLEEPER = "import time\nwhile True: time.sleep(1)"
STDOUT, STDERR, ERROR = 1, 2, 3


def shell_pod(name: str = "shell", **container_extra) -> dict:
    main = container("main", PY, "-c", SLEEPER, workingDir="/work",
                     env=[{"name": "GREETING", "value": "hello from the container"}],
                     volumeMounts=[{"name": "work", "mountPath": "/work"}], **container_extra)  # fmt: skip
    body = pod_body("shell", main, volumes=[{"name": "work", "emptyDir": {}}])
    body["metadata"]["name"] = name
    return body


@pytest.fixture
async def shell(core):
    await core.create_namespaced_pod(NS, shell_pod())
    return await wait_pod(core, "shell", "running", running_and_ready)


@pytest.fixture
async def ws_core(k8s):
    """kubernetes_asyncio's WebSocket client on the emulator (same configuration as ``k8s``)."""
    ws = WsApiClient(configuration=k8s.configuration)
    async with ws:
        yield client.CoreV1Api(ws)


async def async_exec(ws_core, command, *, stdin: bytes | None = None, pod: str = "shell", **kwargs):
    """(stdout, stderr, error-channel Status) of ``command`` over v4.channel.k8s.io."""
    ws = await ws_core.connect_get_namespaced_pod_exec(
        pod, NS, command=command, stdin=stdin is not None, stdout=True, stderr=True,
        _preload_content=False, **kwargs,
    )  # fmt: skip
    channels: dict[int, bytes] = {STDOUT: b"", STDERR: b"", ERROR: b""}
    async with ws as socket:
        if stdin is not None:
            await socket.send_bytes(b"\x00" + stdin)
        async for message in socket:
            if message.type == aiohttp.WSMsgType.BINARY and message.data:
                channels[message.data[0]] += message.data[1:]
    return channels[STDOUT].decode(), channels[STDERR].decode(), json.loads(channels[ERROR])


def sync_exec(sync_core, command, *, stdin: str | None = None, pod: str = "shell", tty: bool = False,
              resize: dict | None = None):  # fmt: skip
    """(stdout, stderr, exit code, error channel, protocol) over the sync client's WebSocket."""
    session = stream(
        sync_core.connect_get_namespaced_pod_exec, pod, NS, command=command,
        stdin=stdin is not None, stdout=True, stderr=not tty, tty=tty, _preload_content=False,
    )  # fmt: skip
    if resize is not None:
        session.write_channel(4, json.dumps(resize))
    if stdin is not None:
        session.write_stdin(stdin)
        session.close_channel(0)  # v5: end of stdin
    session.run_forever(timeout=20)
    status = json.loads(session.peek_channel(ERROR))
    # the client's own exit code (it parses the error channel; only exit statuses have one)
    code = session.returncode if status.get("reason") in (None, "NonZeroExitCode") else None
    return session.read_stdout(), session.read_stderr(), code, status, session.subprotocol


async def test_exit_codes_and_separate_stderr_with_both_clients(shell, ws_core, sync_core):
    command = ["sh", "-c", "echo out; echo err >&2; exit 3"]
    out, err, status = await async_exec(ws_core, command)
    assert (out, err) == ("out\n", "err\n")
    assert status == {
        "metadata": {}, "status": "Failure", "reason": "NonZeroExitCode",
        "message": "command terminated with non-zero exit code: error executing command "
                   "[sh -c echo out; echo err >&2; exit 3], exit code 3",
        "details": {"causes": [{"reason": "ExitCode", "message": "3"}]},
    }  # fmt: skip
    assert WsApiClient.parse_error_data(json.dumps(status)) == 3

    out, err, code, status, protocol = await asyncio.to_thread(sync_exec, sync_core, command)
    assert (out, err, code, protocol) == ("out\n", "err\n", 3, "v5.channel.k8s.io")
    assert (
        status["code"] == 500 and status["reason"] == "NonZeroExitCode"
    )  # the v5 translator's Status

    out, _, status = await async_exec(ws_core, ["true"])
    assert status == {"metadata": {}, "status": "Success"}
    _, _, code, status, _ = await asyncio.to_thread(sync_exec, sync_core, ["true"])
    assert code == 0 and status == {"metadata": {}, "status": "Success"}


async def test_stdin_reaches_the_command_with_both_clients(shell, ws_core, sync_core):
    # v4 has no half-close: the command reads one line; v5 closes stdin and `cat` sees EOF
    out, _, status = await async_exec(ws_core, ["head", "-n", "1"], stdin=b"first line\nsecond\n")
    assert out == "first line\n" and status["status"] == "Success"
    out, _, code, _, _ = await asyncio.to_thread(
        sync_exec, sync_core, ["sh", "-c", "cat; echo done"], stdin="all of stdin\n"
    )
    assert (out, code) == ("all of stdin\ndone\n", 0)


async def test_the_command_runs_in_the_containers_environment(devcluster, shell, ws_core):
    out, _, _ = await async_exec(ws_core, ["sh", "-c", 'echo "$GREETING"; pwd; id -u; hostname'])
    greeting, cwd, uid, hostname = out.splitlines()
    assert greeting == "hello from the container"
    assert cwd.startswith(str(devcluster.state_dir)) and cwd.endswith(
        "/volumes/work"
    )  # workingDir /work
    assert hostname == (
        "shell" if devcluster.kubelet.ctx.isolation is not None else os.uname().nodename
    )
    assert int(uid) == (0 if devcluster.kubelet.ctx.isolation is not None else os.getuid())


async def test_a_terminal_with_its_size(shell, sync_core):
    out, _, code, _, _ = await asyncio.to_thread(
        sync_exec, sync_core, ["sh", "-c", "read line; stty size; test -t 1 && echo terminal"],
        stdin="\n", tty=True, resize={"Width": 100, "Height": 30},
    )  # fmt: skip
    assert code == 0 and "30 100" in out and "terminal" in out


async def test_a_missing_program_is_an_internal_error_on_the_stream(shell, ws_core):
    _, _, status = await async_exec(ws_core, ["no-such-program"])
    assert status["reason"] == "InternalError" and status["code"] == 500
    assert 'exec: "no-such-program": executable file not found in $PATH' in status["message"]


async def test_a_missing_container_is_refused_with_400(shell, ws_core, sync_core):
    with pytest.raises(aiohttp.WSServerHandshakeError) as info:
        await async_exec(ws_core, ["true"], container="nope")
    assert info.value.status == 400
    with pytest.raises(Exception) as sync_info:
        await asyncio.to_thread(sync_exec_in, sync_core, "nope")
    assert "400" in str(sync_info.value) and "container nope is not valid for pod shell" in str(
        sync_info.value
    )


def sync_exec_in(sync_core, container_name: str):
    return stream(sync_core.connect_get_namespaced_pod_exec, "shell", NS, command=["true"],
                  container=container_name, stdout=True, stderr=True, stdin=False, tty=False)  # fmt: skip


async def test_a_container_that_is_not_running_fails_as_the_real_server_does(
    core, ws_core, sync_core
):
    await core.create_namespaced_pod(
        NS, pod_body("done", container("main", "true"), restart="Never")
    )
    await wait_pod(core, "done", "finished", phase_is("Succeeded"))
    # v4: the API server relays the kubelet's refusal of the upgrade
    with pytest.raises(aiohttp.WSServerHandshakeError) as info:
        await async_exec(ws_core, ["true"], pod="done")
    assert info.value.status == 500
    # v5: the stream translator accepts the WebSocket and reports on the error channel
    _, _, _, status, protocol = await asyncio.to_thread(sync_exec, sync_core, ["true"], pod="done")
    assert protocol == "v5.channel.k8s.io" and status["reason"] == "InternalError"
    assert (
        status["message"]
        == 'Internal error occurred: unable to upgrade connection: container not found ("main")'
    )
