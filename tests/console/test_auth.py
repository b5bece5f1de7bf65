"""Users, roles, sessions, CSRF and masking, against a real console process."""

from __future__ import annotations

import json
import os
import socket
import stat
import subprocess
from contextlib import closing
from pathlib import Path

import httpx
import pytest

from .conftest import PASSWORDS, login
from .console_process import console_process, run_cli

# one worker runs the whole module: its tests share one console over one store
pytestmark = pytest.mark.xdist_group("console-auth")


def test_the_users_file_holds_argon2_hashes_readable_by_its_owner_only(users_file: Path) -> None:
    text = users_file.read_text()
    users = json.loads(text)["users"]
    assert {name: u["role"] for name, u in users.items()} == {"ada": "admin", "vic": "viewer"}
    assert all(u["password_hash"].startswith("$argon2id$") for u in users.values())
    assert not any(password in text for password in PASSWORDS.values())
    assert stat.S_IMODE(os.stat(users_file).st_mode) == 0o600
    listed = run_cli(["console", "users", "--file", str(users_file), "list"])
    assert listed.stdout.split("\n")[:2] == ["ada  admin", "vic  viewer"]


def test_users_command_refuses_bad_input(users_file: Path) -> None:
    short = run_cli(
        [
            "console",
            "users",
            "--file",
            str(users_file),
            "set",
            "eve",
            "--role",
            "admin",
            "--password-stdin",
        ],
        stdin="short\n",
    )
    assert short.returncode == 1 and "a password has 8 to" in short.stderr
    bad_name = run_cli(
        [
            "console",
            "users",
            "--file",
            str(users_file),
            "set",
            "e ve",
            "--role",
            "viewer",
            "--password-stdin",
        ],
        stdin="long-enough-password\n",
    )
    assert bad_name.returncode == 1 and "invalid user name" in bad_name.stderr


def test_nothing_is_served_before_logging_in(secured_url: str) -> None:
    with httpx.Client(base_url=secured_url, timeout=10) as anonymous:
        assert anonymous.get("/api/streams").status_code == 401
        assert anonymous.get("/openapi.json").status_code == 401
        page = anonymous.get("/streams?category=account")
        assert page.status_code == 303
        assert page.headers["location"] == "/login?next=%2Fstreams%3Fcategory%3Daccount"
        login_page = anonymous.get("/login")
        assert login_page.status_code == 200 and 'name="password"' in login_page.text
        wrong = anonymous.post("/api/login", json={"name": "ada", "password": "guess-again"})
        assert wrong.status_code == 401 and "wrong password" in wrong.json()["error"]
        nobody = anonymous.post("/api/login", json={"name": "zed", "password": "guess-again"})
        assert nobody.status_code == 401


def test_session_cookie_is_http_only_and_same_site_strict(secured_url: str) -> None:
    with httpx.Client(base_url=secured_url, timeout=10) as client:
        response = client.post("/api/login", json={"name": "vic", "password": PASSWORDS["vic"]})
    cookie = response.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=strict" in cookie and "path=/" in cookie


def test_viewers_see_no_values_when_masked_admins_do(secured_url: str) -> None:
    viewer, _ = login(secured_url, "vic")
    admin, _ = login(secured_url, "ada")
    with closing(viewer), closing(admin):
        seen = viewer.get("/api/stream", params={"name": "account-tt"}).json()["events"]
        assert all(e["data"] is None and e["masked"] for e in seen)
        assert seen[0]["type"] == "Withdrawn"  # what happened is visible, not the values
        log = viewer.get("/api/log", params={"limit": 5}).json()["events"]
        assert all(e["data"] is None for e in log)
        travel = viewer.get("/api/time-travel", params={"name": "account-tt"}).json()
        assert travel["aggregate"]["state"] == {}
        page = viewer.get("/stream", params={"name": "account-tt"}).text
        assert "values are masked" in page and '"amount": 30' not in page
        full = admin.get("/api/stream", params={"name": "account-tt"}).json()["events"]
        assert full[0]["data"] == {"amount": 30}


def test_state_changes_need_the_csrf_token(secured_url: str) -> None:
    session, csrf = login(secured_url, "ada")
    with closing(session):
        missing = session.post("/api/logout")
        assert missing.status_code == 403 and "X-CSRF-Token" in missing.json()["error"]
        wrong = session.post("/api/logout", headers={"X-CSRF-Token": "forged"})
        assert wrong.status_code == 403
        other_site = session.post(
            "/api/logout", headers={"X-CSRF-Token": csrf, "Origin": "https://evil.example"}
        )
        assert other_site.status_code == 403 and "cross-origin" in other_site.json()["error"]
        assert session.get("/api/session").json()["name"] == "ada"  # still logged in
        done = session.post("/api/logout", headers={"X-CSRF-Token": csrf})
        assert done.status_code == 200
        assert session.get("/api/session").status_code == 401


def test_over_https_the_session_cookie_is_secure(
    demo_store: str, users_file: Path, tmp_path: Path
) -> None:
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=localhost",
            "-keyout",
            str(key),
            "-out",
            str(cert),
        ],
        check=True,
        capture_output=True,
        timeout=60,
    )
    with console_process(
        [
            "--store",
            demo_store,
            "--auth",
            str(users_file),
            "--certfile",
            str(cert),
            "--keyfile",
            str(key),
        ]
    ) as url:
        assert url.startswith("https://")
        with httpx.Client(base_url=url, timeout=10, verify=False) as client:
            response = client.post("/api/login", json={"name": "vic", "password": PASSWORDS["vic"]})
            assert response.status_code == 200
            assert "secure" in response.headers["set-cookie"].lower()
            assert client.get("/api/streams").status_code == 200


def test_a_public_address_is_served_with_auth(demo_store: str, users_file: Path) -> None:
    with console_process(
        ["--store", demo_store, "--auth", str(users_file), "--host", "0.0.0.0"]
    ) as url:
        port = url.rsplit(":", 1)[1]
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as client:
            assert client.get("/api/streams").status_code == 401


def test_prometheus_scrapes_a_console_with_auth_on_its_metrics_port(
    demo_store: str, users_file: Path
) -> None:
    """/metrics on the console's own port wants a login; --metrics-port serves Prometheus."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        metrics_port = probe.getsockname()[1]
    args = ["--store", demo_store, "--auth", str(users_file), "--metrics-port", str(metrics_port)]
    with console_process(args) as url:
        scraped = httpx.get(f"http://127.0.0.1:{metrics_port}/metrics", timeout=10)
        behind_login = httpx.get(f"{url}/metrics", timeout=10)
        client, _csrf = login(url, "vic")
        with closing(client):
            logged_in = client.get("/metrics")
    assert scraped.status_code == 200
    assert "streamsource_store_appends_total" in scraped.text
    assert behind_login.status_code == 303 and "/login" in behind_login.headers["location"]
    assert logged_in.status_code == 200
