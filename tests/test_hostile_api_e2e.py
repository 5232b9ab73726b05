"""End to end against hostile answers (the second attack round on spec 9.2 and 9.6): the
project's sandbox behind a raw loopback server that rewrites what the sandbox cannot (reason
phrases, `Date` headers, list bodies); `reconcile` runs in-process. Every case counts the
tasks on the server: no finding may end in a second task with one name.

Findings: F1 the token in a reason phrase; F2 listed tasks without a text name; F3 the hint to
skip the check with a lost state; F5 a `count` of the page's items; F6 a platform that folds
or trims names; F8 undated tasks called "the newest"; F9 a `Date` header far ahead; F11 flags
next to a saved plan; F12 passwords in URLs.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path
from typing import Any

import pytest
from conftest import PROXIES
from hostile_api import HostileApi
from inproc import STATE, TOKEN, apply, campaign, run, seed_task, state, write

NPS = "NPS survey Q3 2030"
KEYS = ["onboarding-welcome", "survey/csat-callback", "survey/nps-q3"]


@pytest.fixture
def api(monkeypatch: pytest.MonkeyPatch) -> Iterator[HostileApi]:
    for name in PROXIES:
        monkeypatch.delenv(name, raising=False)
    with HostileApi(TOKEN) as server:
        yield server


@pytest.fixture
def project(workdir: Path) -> Path:
    write(
        {
            "onboarding-welcome.yaml": campaign("Welcome"),
            "survey/csat-callback.yaml": campaign("CSAT callback"),
            "survey/nps-q3.yaml": campaign(NPS),
        }
    )
    return workdir


def applied_then_lost(api: HostileApi) -> None:
    """Every campaign applied, then the state file lost (an uncommitted state)."""
    first = apply(api.url)
    assert first.code == 0, first.output
    STATE.unlink()
    Path(f"{STATE}.backup").unlink(missing_ok=True)


def every_item(change: Callable[[dict[str, Any]], dict[str, Any]]) -> Callable[[Any], Any]:
    """A list rewrite that changes each task object of the sandbox's `{count, items}`."""
    return lambda body: {**body, "items": [change(dict(item)) for item in body["items"]]}


def files_text(folder: Path) -> str:
    return "".join(
        p.read_text(encoding="utf-8", errors="replace") for p in folder.rglob("*") if p.is_file()
    )


# --- F1: the token comes back in a reason phrase ---------------------------------------------


@pytest.mark.parametrize(
    ("where", "status"),
    [("list", 500), ("list", 401), ("create", 500), ("create", 422), ("create", 401)],
)
def test_the_token_in_a_reason_phrase_is_never_shown(
    api: HostileApi, project: Path, where: str, status: int
) -> None:
    api.reason = f"token={TOKEN} Bearer {TOKEN}"
    if where == "list":
        api.fail_list = (status, b"")
    else:
        api.fail_create.append((status, b""))

    result = apply(api.url, "--target", "survey/nps-q3")

    assert result.code == 1, result.output
    assert TOKEN not in result.output and TOKEN not in files_text(project)
    assert f"HTTP {status}: token=*** Bearer ***" in result.stderr  # said, scrubbed


# --- F2: a listed task without a text name ---------------------------------------------------


@pytest.mark.parametrize(
    ("change", "said"),
    [
        (
            lambda t: {**{k: v for k, v in t.items() if k != "name"}, "title": t["name"]},
            "a task object without a `name` (it has `title`) (item [0])",
        ),
        (
            lambda t: {**t, "name": {"value": t["name"]}},
            "a task object whose `name` is an object, not text (item [0])",
        ),
        (lambda t: {**t, "name": None}, "a task object without a `name` (item [0])"),
    ],
    ids=["title", "object", "null"],
)
def test_a_listed_task_without_a_text_name_stops_apply_after_a_lost_state(
    api: HostileApi, project: Path, change: Callable[[dict[str, Any]], dict[str, Any]], said: str
) -> None:
    applied_then_lost(api)
    api.rewrite_list = every_item(change)

    result = apply(api.url)

    assert result.code == 1, result.output
    assert said in result.stderr and "Nothing was created" in result.stderr
    assert api.names() == sorted(["Welcome", "CSAT callback", NPS])  # never a second task
    assert not STATE.exists()


# --- F3: a lost state and a failing list endpoint --------------------------------------------


def test_with_a_lost_state_a_failing_list_never_leads_to_skipping_the_check(
    api: HostileApi, project: Path
) -> None:
    applied_then_lost(api)
    api.fail_list = (503, b'{"error": "Service Unavailable"}')

    hinted = apply(api.url)
    forced = apply(api.url, "--no-remote-check")

    assert hinted.code == forced.code == 1
    assert "--no-remote-check" not in hinted.stderr
    assert "recover it with `reconcile import --all` once the list endpoint answers" in (
        hinted.stderr
    )
    assert forced.stderr.startswith("error: --no-remote-check is refused: the state has no ")
    assert api.names() == sorted(["Welcome", "CSAT callback", NPS]) and not STATE.exists()


# --- F5: `count` is the number of items on the page ------------------------------------------


def test_a_count_of_the_page_s_items_never_hides_the_second_page(
    api: HostileApi, project: Path
) -> None:
    for i in range(1000):
        seed_task(api.sandbox, f"Old task {i}")  # type: ignore[arg-type]
    applied_then_lost(api)  # the campaigns' tasks are on the second page
    api.rewrite_list = lambda body: {"count": len(body["items"]), "items": body["items"]}

    result = apply(api.url)

    assert result.code == 1, result.output
    assert "its count changed between pages (1000 -> 3)" in result.stderr
    assert len(api.sandbox.tasks) == 1003 and not STATE.exists()


# --- F6: a platform that trims and folds names -----------------------------------------------


def test_a_lost_state_on_a_platform_that_folds_names_re_creates_nothing(
    api: HostileApi, project: Path
) -> None:
    applied_then_lost(api)
    api.rewrite_list = every_item(lambda t: {**t, "name": f" {str(t['name']).upper()}\u00a0"})

    result = apply(api.url)
    remote = run("check-remote", "--api-url", api.url)

    assert result.code == 1, result.output
    assert "Apply: 0 created, 0 adopted, 0 moved, 3 refused, 0 in doubt." in result.stdout
    assert (
        f"error: a task named {NPS!r} (spelled ' {NPS.upper()}\\xa0' there: the same name "
        "once case and spaces are ignored) already exists on the platform"
    ) in result.stderr
    assert api.names() == sorted(["Welcome", "CSAT callback", NPS])
    assert remote.code == 2 and remote.stdout.count("\n+ ") + remote.stdout.startswith("+ ") == 3


def test_import_all_reports_a_differently_spelled_task_with_the_import_that_adopts_it(
    api: HostileApi, project: Path
) -> None:
    applied_then_lost(api)
    nps = next(i for i, t in api.sandbox.tasks.items() if t["name"] == NPS)
    api.rewrite_list = every_item(lambda t: {**t, "name": NPS.lower()} if t["name"] == NPS else t)

    recovered = run("import", "--all", "--api-url", api.url)
    adopted = run("import", "survey/nps-q3", nps, "--api-url", api.url)

    assert recovered.code == 1, recovered.output  # two adopted, one for the user to confirm
    assert (
        f"error: survey/nps-q3: the platform has {nps} named like {NPS!r} (spelled "
        f"{NPS.lower()!r} there: the same name once case and spaces are ignored); --all adopts "
        f"exact names only. If it is this campaign's, run `reconcile import --api-url {api.url} "
        f"survey/nps-q3 {nps}`"
    ) in recovered.stderr
    assert adopted.code == 0, adopted.output  # the command printed works as printed
    assert sorted(state().campaigns) == KEYS
    assert state().campaigns["survey/nps-q3"].identity == nps


def test_a_rename_that_changes_only_the_case_of_the_name_trips_the_name_guard(
    api: HostileApi, project: Path
) -> None:
    first = apply(api.url)
    assert first.code == 0, first.output
    Path("campaigns/survey/nps-q3.yaml").unlink()
    write({"survey/nps-q3-new.yaml": campaign('"NPS Survey  Q3 2030 "')})

    result = apply(api.url)

    assert result.code == 1, result.output
    assert (
        "survey/nps-q3-new has the name 'NPS Survey  Q3 2030 ', which once case and spaces are "
        f"ignored is the name {NPS!r} of survey/nps-q3 in the state (a probable rename)"
    ) in result.stderr
    assert api.names() == sorted(["Welcome", "CSAT callback", NPS])


# --- F8: tasks without a creation time -------------------------------------------------------


def test_undated_tasks_are_listed_without_claiming_which_is_newest(
    api: HostileApi, project: Path
) -> None:
    first, second = seed_task(api.sandbox, NPS), seed_task(api.sandbox, NPS)  # type: ignore[arg-type]
    api.rewrite_list = every_item(lambda t: {k: v for k, v in t.items() if k != "createdAt"})

    result = run("import", "--all", "--api-url", api.url)

    assert result.code == 1, result.output
    ids = ", ".join(sorted([first, second]))
    assert (
        f"run `reconcile import --api-url {api.url} survey/nps-q3 ID` with the one that is this "
        f"campaign's: {ids} "
        "(the platform gives no creation time for some, so this tool cannot tell which is "
        "current)"
    ) in result.stderr
    assert "newest" not in result.output


# --- F9: a Date header far ahead -------------------------------------------------------------


@pytest.mark.parametrize(
    ("date", "said"),
    [
        ("Wed, 01 Jan 3000 00:00:00 GMT", "sends no believable Date header"),
        ("Fri, 31 Dec 9999 23:59:59 GMT", "sends no believable Date header"),
        (None, "but the platform lists ones the state does not know"),  # an hour ahead
    ],
    ids=["year-3000", "year-9999", "an-hour-ahead"],
)
@pytest.mark.parametrize("retry", [False, True], ids=["plain", "retry-pending"])
def test_a_date_header_far_ahead_never_leads_to_a_second_create(
    api: HostileApi, project: Path, date: str | None, said: str, retry: bool
) -> None:
    api.sandbox.drop_next(1)
    first = apply(api.url, "--target", "survey/nps-q3")
    assert first.code == 1 and "outcome unknown" in first.stderr, first.output
    api.date = (lambda: date) if date is not None else an_hour_ahead
    extra = ["--retry-pending", "survey/nps-q3", "--target", "survey/nps-q3"] if retry else []

    result = apply(api.url, *extra, RECONCILE_PENDING_GRACE="0")

    assert result.code == 1, result.output
    assert said in result.stderr
    assert "--retry-pending" not in result.stderr and "re-creating" not in result.output
    assert api.names().count(NPS) == 1
    assert state().campaigns["survey/nps-q3"].status == "pending"
    if date is not None:
        assert "warning: the API's Date header" in result.stderr


def an_hour_ahead() -> str:
    return format_datetime(datetime.now(UTC) + timedelta(hours=1), usegmt=True)


# --- F11: flags next to a saved plan ---------------------------------------------------------


@pytest.mark.parametrize(
    "flags",
    [["--target", "survey/nps-q3"], ["--replace", "survey/nps-q3"], ["--max-creates", "3"]],
    ids=["target", "replace", "max-creates"],
)
def test_flags_that_a_saved_plan_carries_are_refused_next_to_it(
    api: HostileApi, project: Path, flags: list[str]
) -> None:
    saved = run("plan", "--api-url", api.url, "--out", "plan.json")
    assert saved.code == 0, saved.output

    result = apply(api.url, "plan.json", *flags)

    assert result.code == 1
    assert result.stderr == (
        f"error: {flags[0]} cannot be given with a saved plan (plan.json): the plan carries its "
        "own targets, replaces and --max-creates, as reviewed. Nothing was sent: give the flags "
        "to `reconcile plan` when saving the plan, or apply without a plan file\n"
    )
    assert api.creates == 0 and not STATE.exists()


# --- F12: passwords in URLs ------------------------------------------------------------------

SECRET = "Pa55-w0rd-XYZ"


@pytest.mark.parametrize(
    "url",
    [
        f"http://user:{SECRET}@127.0.0.1:9/api/v1",
        f"ftp://u:{SECRET}@x/",
        f"http://127.0.0.1:9/api/v1?token={SECRET}",
        f"http://u:{SECRET}@127.0.0.1:99999/",
    ],
    ids=["userinfo", "ftp", "query", "bad-port"],
)
@pytest.mark.parametrize(
    "args",
    [
        ["plan", "--out", "plan.json"],  # the saved plan would hold it
        ["apply", "--auto-approve"],
        ["import", "--all"],
        ["check-remote"],
    ],
    ids=["plan", "apply", "import", "check-remote"],
)
def test_an_api_url_with_a_secret_is_refused_without_being_shown(
    project: Path, url: str, args: list[str]
) -> None:
    result = run(*args, "--api-url", url)

    assert result.code == 1
    assert SECRET not in result.output and result.stderr.startswith(
        "error: the Twin24 API URL (--api-url or TWIN24_API_URL) "
    )
    assert sorted(p.name for p in project.iterdir()) == ["campaigns"]  # no state, no plan


@pytest.mark.parametrize(
    "value",
    [
        f"jdbc:postgresql://db.example/reconcile?user=u&password={SECRET}",
        f"postgresql://u@db.example/reconcile#password={SECRET}",
    ],
    ids=["jdbc", "fragment"],
)
def test_a_state_url_with_a_secret_is_refused_without_being_shown(
    project: Path, value: str
) -> None:
    for args in (["plan"], ["state", "list"]):
        result = run(*args, "--state", value)
        assert result.code == 1
        assert SECRET not in result.output and "it is not shown here" in result.stderr
    assert sorted(p.name for p in project.iterdir()) == ["campaigns"]  # no file made of it
