"""`validate PATH...` and `fmt PATH...` find a named file however it and `--campaigns` are
spelled (reconciler/config/selection.py): relative or absolute, from a sibling folder, through a
symbolic link above the campaigns folder; a file named twice is checked and counted once; a
path through a symbolic link inside the campaigns folder is still refused, naming the link.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from conftest import VALID_CAMPAIGN, edit
from inproc import run

BAD = edit("name: Spring promo", "name: Bad") + "cpss: 3\n"  # an error at line 19
UNSORTED = "cps: 1.03\n" + VALID_CAMPAIGN.replace("cps: 1.03\n", "")


@pytest.fixture
def repo(workdir: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """`repo/campaigns/` with a valid `ok.yaml`, a broken `bad.yaml` and an unsorted
    `messy.yaml`; the working folder is the sibling `sub/`."""
    root = workdir / "repo" / "campaigns"
    root.mkdir(parents=True)
    (root / "ok.yaml").write_text(VALID_CAMPAIGN, "utf-8")
    (root / "bad.yaml").write_text(BAD, "utf-8")
    (root / "messy.yaml").write_text(UNSORTED.replace("Spring promo", "Messy"), "utf-8")
    (workdir / "sub").mkdir()
    monkeypatch.chdir(workdir / "sub")
    return root


def spellings(root: Path) -> list[tuple[str, str]]:
    """(--campaigns, the folder as a PATH names it), spelled differently each time."""
    (root.parent.parent / "link").symlink_to(root.parent)  # a symbolic link above the folder
    return [
        (str(root), "../repo/campaigns"),
        ("../repo/campaigns", str(root)),
        ("../repo/campaigns", "../repo/./campaigns/../campaigns"),
        ("../link/campaigns", "../repo/campaigns"),
        ("../repo/campaigns", str(root.parent.parent / "link" / "campaigns")),
    ]


def test_a_named_file_is_checked_however_it_is_spelled(repo: Path) -> None:
    for campaigns, folder in spellings(repo):
        ok = run("validate", "--campaigns", campaigns, f"{folder}/ok.yaml")
        assert (ok.code, ok.stdout, ok.stderr) == (
            0,
            "1 file(s) checked: 1 campaign(s) valid.\n",
            "",
        ), (campaigns, folder)
        bad = run("validate", "--campaigns", campaigns, f"{folder}/bad.yaml")
        assert bad.code == 1, (campaigns, folder)
        shown = os.path.normpath(f"{campaigns}/bad.yaml")  # as every other problem names it
        assert bad.stderr.splitlines() == [
            f"{shown}:19:1: error: cpss: unknown field cpss (did you mean cps?); unknown fields "
            "are never dropped silently",
            "error: 1 problem(s) in 1 file(s).",
        ], (campaigns, folder)
        check = run("fmt", "--check", "--campaigns", campaigns, f"{folder}/ok.yaml")
        assert (check.code, check.stdout, check.stderr) == (
            0,
            "1 file(s) already canonical.\n",
            "",
        ), (campaigns, folder)


def test_a_file_named_twice_is_checked_and_counted_once(repo: Path) -> None:
    twice = ("../repo/campaigns/ok.yaml", str(repo / "ok.yaml"), "../repo/campaigns/ok.yaml")
    ok = run("validate", "--campaigns", "../repo/campaigns", *twice)
    assert (ok.code, ok.stdout) == (0, "1 file(s) checked: 1 campaign(s) valid.\n")
    bad = run(
        "validate", "--campaigns", str(repo), "../repo/campaigns/bad.yaml", str(repo / "bad.yaml")
    )
    assert bad.code == 1
    assert bad.stderr.endswith("\nerror: 1 problem(s) in 1 file(s).\n")
    assert len(bad.stderr.splitlines()) == 2
    missing = run(
        "validate", "--campaigns", str(repo), "../repo/campaigns/no.yaml", str(repo / "no.yaml")
    )
    assert missing.stderr.splitlines() == [
        f"{repo}/no.yaml:1:1: error: no such file",
        "error: 1 problem(s) in 1 file(s).",
    ]
    messy = ("../repo/campaigns/messy.yaml", str(repo / "messy.yaml"))
    formatted = run("fmt", "--campaigns", "../repo/campaigns", *messy)
    assert (formatted.code, formatted.stdout) == (0, "reformatted ../repo/campaigns/messy.yaml\n")
    assert (repo / "messy.yaml").read_text("utf-8").startswith("name: Messy\n")


def test_a_path_through_a_symbolic_link_inside_the_campaigns_folder_is_refused(
    repo: Path,
) -> None:
    """Below the campaigns folder nothing is resolved: a link there is never followed, even
    to a file that is read under its own name."""
    (repo / "team").mkdir()
    (repo / "team" / "one.yaml").write_text(edit("name: Spring promo", "name: One"), "utf-8")
    (repo / "inner").symlink_to("team")  # to a folder inside
    outside = repo.parent / "other"
    outside.mkdir()
    (outside / "x.yaml").write_text(edit("name: Spring promo", "name: X"), "utf-8")
    (repo / "away").symlink_to("../other")  # to a folder outside
    (repo / "_drafts").mkdir()
    (repo / "_drafts" / "ok.yaml").symlink_to("../ok.yaml")  # a file link in a skipped folder
    named = ("../repo/campaigns/inner/one.yaml", f"{repo}/away/x.yaml", "_drafts/ok.yaml")
    link = (
        "which is not a folder but a symbolic link; only regular files and folders are read "
        "below the campaigns folder, and it is never followed: replace it with a regular "
        "folder or remove it"
    )
    expected = [
        "../repo/campaigns/_drafts/ok.yaml:1:1: error: not a regular file but a symbolic link; "
        "only regular files are read below the campaigns folder, and this one is never "
        "followed or opened: replace it with a regular file or remove it",
        f"../repo/campaigns/away/x.yaml:1:1: error: below ../repo/campaigns/away, {link}",
        f"../repo/campaigns/inner/one.yaml:1:1: error: below ../repo/campaigns/inner, {link}",
    ]
    paths = [p if p.startswith(("/", "..")) else f"../repo/campaigns/{p}" for p in named]
    result = run("validate", "--campaigns", "../repo/campaigns", *paths)
    assert (result.code, result.stdout) == (1, "")
    assert result.stderr.splitlines() == [*expected, "error: 3 problem(s) in 3 file(s)."]
    formatted = run("fmt", "--campaigns", "../repo/campaigns", *paths)
    assert (formatted.code, formatted.stdout) == (1, "")
    assert formatted.stderr.splitlines() == expected
