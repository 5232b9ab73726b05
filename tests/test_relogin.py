"""reconciler.apply.relogin: one new login per run, shared by the threads that meet a 401."""

from __future__ import annotations

import threading

from reconciler.apply.relogin import Relogin
from reconciler.errors import AuthError


def test_without_a_login_a_401_is_final() -> None:
    said: list[str] = []
    relogin = Relogin(None, said.append)
    assert relogin.after_401(0) is False
    assert "set TWIN24_TOKEN or --token-file, or use a login" in relogin.remedy()
    assert said == []


def test_the_first_401_logs_in_once_and_every_old_request_is_sent_again() -> None:
    logins: list[int] = []
    said: list[str] = []
    relogin = Relogin(lambda: logins.append(1), said.append)
    sent_with = relogin.generation
    results: list[bool] = []
    threads = [
        threading.Thread(target=lambda: results.append(relogin.after_401(sent_with)))
        for _ in range(2)  # two creates sent with the old token, both answered 401
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results == [True, True] and logins == [1] and relogin.generation == 1
    assert said == ["warning: the API answered 401: logged in again; going on"]
    assert relogin.after_401(1) is False  # a 401 with the new token: no second login
    assert logins == [1] and "also after logging in again" in relogin.remedy()


def test_a_failed_new_login_is_final_and_said() -> None:
    def refused() -> None:
        raise AuthError("the login at https://iam.test/auth/login was refused (HTTP 503)")

    relogin = Relogin(refused, lambda line: None)
    assert relogin.after_401(0) is False and relogin.after_401(0) is False
    assert relogin.remedy() == (
        "the token expired and logging in again failed; stopping: the login at "
        "https://iam.test/auth/login was refused (HTTP 503)"
    )
