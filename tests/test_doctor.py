"""`reconcile doctor` (spec 9.4) in-process against the sandbox over real loopback HTTP: a
healthy set-up, then each fault, in text and json; and what it never does (write a file, take
a lock, send a token it should not).
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import socket
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import StartSandbox, snapshot
from inproc import campaign, write
from pg_fixtures import StateBackend
from tokens import jwt

from reconciler.cli.main import main
from reconciler.sandbox import Sandbox
from reconciler.state.file.store import FileStore

TOKEN = "doctor-T0KEN"
ROOT = Path(__file__).resolve().parent.parent
CHECKS = [
    "versions",
    "campaigns",
    "schemas",
    "state",
    "lock",
    "credentials",
    "token",
    "api",
    "list",
    "clock",
    "timezone",
]
LINE = re.compile(r"^(ok  |warn|fail)  (\S+) +(.+)$")


class Report:
    """What doctor printed: exit code, and each check's status and detail."""

    def __init__(self, code: int, stdout: str, stderr: str) -> None:
        self.code, self.stdout, self.stderr = code, stdout, stderr
        self.checks: dict[str, tuple[str, str]] = {}

    def status(self) -> dict[str, str]:
        return {name: status for name, (status, _) in self.checks.items()}

    def detail(self, check: str) -> str:
        return self.checks[check][1]


def doctor(*args: str, fmt: str = "text", **env: str) -> Report:
    """`reconcile doctor ARGS --format FMT` in-process; the checks parsed from its output."""
    with CliRunner().isolation(env={"NO_COLOR": "1", **env}) as (out, err, _):
        try:
            main(["doctor", "--format", fmt, *args])
            code = 0
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 1
    report = Report(code, out.getvalue().decode(), err.getvalue().decode())
    if fmt == "json":
        records = json.loads(report.stdout)
        assert all(set(r) == {"check", "status", "detail"} for r in records)
        report.checks = {r["check"]: (r["status"], r["detail"]) for r in records}
    else:
        *lines, summary = report.stdout.splitlines()
        for line in lines:
            match = LINE.match(line)
            assert match, line
            report.checks[match.group(2)] = (match.group(1).strip(), match.group(3))
        counts = {s: list(report.status().values()).count(s) for s in ("ok", "warn", "fail")}
        assert summary == (
            f"doctor: {len(lines)} checks, {counts['ok']} ok, {counts['warn']} warn, "
            f"{counts['fail']} fail."
        )
    assert list(report.checks) == CHECKS
    assert report.code == (1 if "fail" in report.status().values() else 0)
    assert report.stderr == ""
    return report


def healthy(**changes: str) -> dict[str, str]:
    """Every check ok, but for `changes`."""
    return {**dict.fromkeys(CHECKS, "ok"), **changes}


@pytest.fixture
def start(sandboxes: StartSandbox, workdir: Path) -> StartSandbox:
    """Loopback sandboxes that take this module's token (conftest's `sandboxes`)."""
    return partial(sandboxes, token=TOKEN)


@pytest.fixture
def project(workdir: Path) -> Path:
    write({"welcome.yaml": campaign("Welcome"), "survey/nps.yaml": campaign("NPS")})
    return workdir


def api(sandbox: Sandbox, *args: str) -> list[str]:
    return ["--api-url", sandbox.url, *args]


@pytest.mark.parametrize("fmt", ["text", "json"])
def test_a_healthy_set_up_is_all_ok_and_nothing_is_written(
    start: StartSandbox, project: Path, fmt: str
) -> None:
    sandbox = start()
    write_state = doctor(*api(sandbox), TWIN24_TOKEN=TOKEN)  # no state yet
    assert write_state.detail("state") == (
        "file reconcile.state.json: no state yet (the first apply makes it)"
    )
    from inproc import apply

    assert apply(sandbox.url, TWIN24_TOKEN=TOKEN).code == 0
    cache = Path(os.environ["RECONCILE_CACHE_DIR"])
    before, cached = snapshot(project), snapshot(cache)
    requests = sandbox.requests

    report = doctor(*api(sandbox), fmt=fmt, TWIN24_TOKEN=TOKEN)

    assert report.status() == healthy()
    assert report.detail("versions").startswith("reconcile ")
    assert "Python 3." in report.detail("versions") and "httpx " in report.detail("versions")
    assert report.detail("campaigns") == "2 campaign(s) valid in campaigns"
    assert re.fullmatch(
        r"file reconcile\.state\.json: lineage [0-9a-f-]{36}, serial 1, 2 entries, for "
        + re.escape(sandbox.url),
        report.detail("state"),
    )
    assert report.detail("lock") == "free"
    assert report.detail("credentials") == (
        "a token: TWIN24_TOKEN (a login does not expire: set TWIN24_LOGIN and TWIN24_PASSWORD "
        "instead)"
    )
    assert report.detail("token") == (
        "not a JWT: its expiry cannot be read (the API answers 401 once it has)"
    )
    assert re.fullmatch(
        re.escape(sandbox.url) + r" answered the task list in \d+\.\d\d s: 2 task\(s\) on the "
        "platform",
        report.detail("api"),
    )
    assert report.detail("list") == (
        'the list answer has a shape this version reads: {"count": N, "items": [...]}'
    )
    assert report.detail("clock") == "the API's Date header agrees with this machine's clock"
    assert report.detail("timezone").startswith("startMoment is read as Europe/Moscow time (UTC+03")
    assert sandbox.requests == requests + 1  # one page, limit=1
    assert snapshot(project) == before and snapshot(cache) == cached


def test_the_embedded_sandbox_with_a_login_makes_no_folder(project: Path) -> None:
    login = {"TWIN24_LOGIN": "me@example.com", "TWIN24_PASSWORD": "sandbox"}
    report = doctor("--sandbox", **login)
    assert report.status() == healthy()
    assert report.detail("state") == (
        "file .reconcile/sandbox.state.json: no state yet (the first apply makes it)"
    )
    assert report.detail("credentials").startswith(
        "a login: TWIN24_LOGIN and TWIN24_PASSWORD, at http://127.0.0.1:"
    )
    assert re.fullmatch(
        r"the login's token is good until \d{4}-\d\d-\d\d \d\d:\d\d UTC \(in 60 min\); each run "
        "logs in",
        report.detail("token"),
    )
    assert report.detail("api").startswith("the embedded sandbox answered the task list in ")
    assert not Path(".reconcile").exists()
    plain = doctor("--sandbox")
    assert plain.detail("credentials") == "no credentials needed: the embedded sandbox's token"


def test_no_credentials_fail_and_nothing_is_sent(start: StartSandbox, project: Path) -> None:
    sandbox = start()
    report = doctor(*api(sandbox))
    assert report.status() == healthy(
        credentials="fail", token="warn", api="warn", list="warn", clock="warn"
    )
    assert report.detail("credentials").startswith("no Twin24 token: set TWIN24_TOKEN or pass")
    assert report.detail("api") == (
        "not checked: no usable credentials: nothing is sent without them"
    )
    assert sandbox.requests == 0
    assert sorted(p.name for p in project.iterdir()) == ["campaigns"]  # no lock file made


@pytest.mark.parametrize("fmt", ["text", "json"])
def test_an_expired_token_fails_and_is_never_sent(
    start: StartSandbox, project: Path, fmt: str
) -> None:
    expired = jwt(datetime.now(UTC) - timedelta(days=5))
    sandbox = start(token=expired)
    report = doctor(*api(sandbox), fmt=fmt, TWIN24_TOKEN=expired)
    assert report.status() == healthy(token="fail", api="warn", list="warn", clock="warn")
    assert re.fullmatch(
        r"expired at \d{4}-\d\d-\d\d \d\d:\d\d UTC \(5 days ago\): nothing is sent with it; a "
        "login does not expire: set TWIN24_LOGIN and TWIN24_PASSWORD instead",
        report.detail("token"),
    )
    assert sandbox.requests == 0 and expired not in report.stdout


def test_a_token_expiring_tomorrow_warns(start: StartSandbox, project: Path) -> None:
    soon = jwt(datetime.now(UTC) + timedelta(hours=20))
    sandbox = start(token=soon)
    report = doctor(*api(sandbox), TWIN24_TOKEN=soon)
    assert report.status() == healthy(token="warn")
    assert "UTC (in 20 h): renew it before then" in report.detail("token")


def test_a_refused_token_fails_the_api_check(start: StartSandbox, project: Path) -> None:
    sandbox = start()
    report = doctor(*api(sandbox), TWIN24_TOKEN="wrong-token")
    assert report.status() == healthy(api="fail", list="warn", clock="warn")
    assert report.detail("api").startswith(
        "the Twin24 API refused the token (HTTP 401: Token is expired.): check TWIN24_TOKEN"
    )


@pytest.mark.parametrize("fmt", ["text", "json"])
def test_an_api_that_is_down_fails(project: Path, fmt: str) -> None:
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    report = doctor("--api-url", f"http://127.0.0.1:{port}/api/v1", fmt=fmt, TWIN24_TOKEN=TOKEN)
    assert report.status() == healthy(api="fail", list="warn", clock="warn")
    assert report.detail("api").startswith("the Twin24 list endpoint is unavailable (ConnectError")
    assert report.detail("list") == "not checked: the API did not answer"


@pytest.mark.parametrize(
    ("shape", "said"),
    [
        ("no-items", "a JSON object without `items`"),
        ("html", "an HTML page"),
        ("bare", None),
    ],
)
def test_a_list_answer_in_an_unknown_shape_fails(
    start: StartSandbox, project: Path, shape: str, said: str | None
) -> None:
    sandbox = start(list_shape=shape)
    report = doctor(*api(sandbox), TWIN24_TOKEN=TOKEN)
    if said is None:  # a bare list is a shape this version reads
        assert report.status() == healthy()
        assert report.detail("list").endswith("a bare list of tasks")
        return
    assert report.status() == healthy(list="fail")
    assert report.detail("list").startswith(f"the Twin24 list endpoint answered with {said}")
    assert report.detail("api").startswith(f"{sandbox.url} answered the task list in ")


@pytest.mark.parametrize(("skew", "side"), [(120, "ahead of"), (-90, "behind")])
def test_clock_skew_over_a_minute_warns(
    start: StartSandbox, project: Path, skew: float, side: str
) -> None:
    sandbox = start(clock_skew=skew)
    report = doctor(*api(sandbox), TWIN24_TOKEN=TOKEN)
    assert report.status() == healthy(clock="warn")
    seconds = abs(skew)
    assert re.fullmatch(
        rf"the API's clock is ({seconds - 1}|{seconds}|{seconds + 1}) s {side} this machine's "
        r"\(more than 60 "
        r"s\): set this machine's clock \(NTP\); token expiry and start times are judged by it",
        report.detail("clock"),
    )


def test_a_small_skew_is_ok(start: StartSandbox, project: Path) -> None:
    sandbox = start(clock_skew=30)
    report = doctor(*api(sandbox), TWIN24_TOKEN=TOKEN)
    assert report.status() == healthy()
    assert re.fullmatch(
        r"the API's clock is (29|30|31) s ahead of this machine's \(within 60 s\)",
        report.detail("clock"),
    )


def test_a_held_lock_warns_naming_the_holder_and_is_not_taken(
    start: StartSandbox, project: Path, state_backend: StateBackend
) -> None:
    sandbox = start()
    env = {"TWIN24_TOKEN": TOKEN, **state_backend.env()}
    with state_backend.store().lock("reconcile apply") as held:
        report = doctor(*api(sandbox), **env)
        assert report.status() == healthy(lock="warn")
        assert report.detail("lock") == (
            f"held by {held.describe()}: apply and the state commands fail until it ends (or "
            f"wait with --lock-timeout); if that run is dead: reconcile state unlock {held.id}"
        )
    assert doctor(*api(sandbox), **env).detail("lock") == "free"


def test_a_lock_file_left_by_a_killed_run_is_free(start: StartSandbox, project: Path) -> None:
    sandbox = start()
    holder = {"id": "dead-1", "pid": 2**22 + 7, "host": socket.gethostname(), "since": "x"}
    Path("reconcile.state.json.lock").write_text(json.dumps({**holder, "command": "apply"}))
    report = doctor(*api(sandbox), TWIN24_TOKEN=TOKEN)
    assert report.status() == healthy()
    assert report.detail("lock").startswith("free (the lock file still names pid 4194311 on ")
    assert FileStore(Path("reconcile.state.json")).lock_state().held is False


def test_an_unreadable_state_fails(start: StartSandbox, project: Path) -> None:
    sandbox = start()
    Path("reconcile.state.json").write_text("{not json", encoding="utf-8")
    before = snapshot(project)
    report = doctor(*api(sandbox), TWIN24_TOKEN=TOKEN)
    assert report.status() == healthy(state="fail")
    assert report.detail("state").startswith("reconcile.state.json: ")
    assert snapshot(project) == before


def test_a_state_file_with_workspace_fails_state_and_lock(
    start: StartSandbox, project: Path
) -> None:
    sandbox = start()
    report = doctor(*api(sandbox), "--workspace", "other", TWIN24_TOKEN=TOKEN)
    assert report.status() == healthy(state="fail", lock="warn")
    assert report.detail("lock") == "not checked: no usable state"


def test_bad_campaigns_stale_schemas_and_an_unknown_zone(
    start: StartSandbox, project: Path
) -> None:
    sandbox = start()
    write({"broken.yaml": campaign("Broken") + "cpss: 3\n"})
    shutil.copytree(ROOT / "schemas", project / "schemas")
    (project / "schemas" / "policy.schema.json").write_text("{}\n", encoding="utf-8")
    report = doctor(*api(sandbox), "--timezone", "Mars/Olympus", TWIN24_TOKEN=TOKEN)
    assert report.status() == healthy(campaigns="fail", schemas="warn", timezone="fail")
    assert report.detail("campaigns").startswith(
        "1 error(s) in 1 file(s), the first: campaigns/broken.yaml:"
    )
    assert report.detail("schemas").startswith("policy.schema.json in schemas/ differ from what")
    assert report.detail("timezone") == (
        "unknown time zone 'Mars/Olympus' (--timezone, env TWIN24_TIMEZONE)"
    )
    (project / "schemas" / "policy.schema.json").unlink()
    shutil.copy(ROOT / "schemas" / "policy.schema.json", project / "schemas")
    current = doctor(*api(sandbox), TWIN24_TOKEN=TOKEN).detail("schemas")
    assert current.startswith("schemas/ holds what reconcile ")
    assert "(campaign.schema.json, campaign-file.schema.json, policy.schema.json)" in (current)


def test_a_failed_login_fails_credentials(start: StartSandbox, project: Path) -> None:
    sandbox = start(login_status=503)
    env = {"TWIN24_LOGIN": "ops@example.com", "TWIN24_PASSWORD": "sandbox"}
    report = doctor(*api(sandbox), "--iam-url", sandbox.url, **env)
    assert report.status() == healthy(
        credentials="fail", token="warn", api="warn", list="warn", clock="warn"
    )
    assert report.detail("credentials").startswith(f"the login at {sandbox.url}/auth/login was")
    assert sandbox.requests == 1  # the login alone


def test_values_are_escaped_in_text_and_json(start: StartSandbox, project: Path) -> None:
    sandbox = start()
    folder = "camp\x1b[31m\n::error::x"
    text = doctor(*api(sandbox), "--campaigns", folder, TWIN24_TOKEN=TOKEN)
    assert "the first: camp\\u001b[31m\\n::error::x:1:1: (folder)" in text.detail("campaigns")
    assert "\x1b" not in text.stdout and "\n::" not in text.stdout
    records = doctor(*api(sandbox), "--campaigns", folder, fmt="json", TWIN24_TOKEN=TOKEN)
    assert "\x1b" not in records.stdout and "\n::" not in records.stdout
    assert records.detail("campaigns") == text.detail("campaigns")


def test_readmes_example_shows_every_check_in_order() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    start = readme.index("\n```\nok    versions") + len("\n```\n")
    *lines, summary = readme[start : readme.index("\n```", start)].splitlines()
    matches = [LINE.match(line) for line in lines]
    assert [m.group(2) for m in matches if m] == CHECKS and all(matches)
    assert summary == "doctor: 11 checks, 11 ok, 0 warn, 0 fail."


@pytest.mark.parametrize(
    ("args", "path"),
    [
        (["--sandbox"], ".reconcile/sandbox.state.json"),
        (["--state", "my state.json"], None),
    ],
)
def test_the_unlock_hint_acts_on_the_same_state(
    start: StartSandbox, project: Path, args: list[str], path: str | None
) -> None:
    sandbox = start()
    state_file = Path(path or args[-1])
    state_file.parent.mkdir(exist_ok=True)
    with FileStore(state_file).lock("reconcile apply") as held:
        report = doctor(*api(sandbox), *args, TWIN24_TOKEN=TOKEN)
        hint = report.detail("lock").rpartition("if that run is dead: ")[2]
        context = "--state 'my state.json'" if path is None else "--sandbox"
        assert hint == f"reconcile state unlock {context} {held.id}"  # the one hint helper
        with CliRunner().isolation() as (_, err, _):
            with pytest.raises(SystemExit):
                main(shlex.split(hint)[1:])
            said = err.getvalue().decode()
        assert f"{state_file}: state is locked by {held.describe()}, and that process" in said
