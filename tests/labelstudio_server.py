"""A real Label Studio server for the tests, run from its own virtual environment (``bin/labelstudio-setup``
creates ``.venv-labelstudio``; its pinned dependencies differ from ours).

``with LabelStudioServer() as server:`` starts ``label-studio start`` on a free port with a fresh data directory
and a known admin token (``LABEL_STUDIO_USER_TOKEN`` with legacy tokens enabled), waits for ``/health`` and stops
the server afterwards. ``server.annotator_token(email)`` signs a person up through Label Studio's own sign-up form
and returns their personal API token; ``server.annotate(email, task_id, label)`` annotates with it, as that
annotator would in Label Studio's interface.
"""

import os
import secrets
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import httpx
from label_studio_sdk import LabelStudio

ROOT = Path(__file__).resolve().parents[1]
LABEL_STUDIO = ROOT / ".venv-labelstudio" / "bin" / "label-studio"
ADMIN_EMAIL = "admin@policyhub.test"
STARTUP_SECONDS = 300  # a cold start takes about two minutes on a busy 2-CPU machine


class LabelStudioMissing(RuntimeError):
    pass


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class LabelStudioServer:
    def __init__(self):
        if not LABEL_STUDIO.exists():
            raise LabelStudioMissing(
                f"Label Studio is not installed for the tests ({LABEL_STUDIO} is missing): run bin/labelstudio-setup "
                "(bin/test runs it)."
            )
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.token = secrets.token_hex(20)
        self._tokens: dict[str, str] = {}
        self._dir = tempfile.TemporaryDirectory(prefix="labelstudio-")
        self.log_path = Path(self._dir.name) / "server.log"
        self.process: subprocess.Popen | None = None

    def __enter__(self) -> "LabelStudioServer":
        data = Path(self._dir.name)
        env = {
            "PATH": f"{LABEL_STUDIO.parent}:{os.environ.get('PATH', '/usr/bin:/bin')}",
            "HOME": str(data),
            "LANG": "C.UTF-8",
            "LABEL_STUDIO_BASE_DATA_DIR": str(data / "data"),
            "LABEL_STUDIO_USERNAME": ADMIN_EMAIL,
            "LABEL_STUDIO_PASSWORD": secrets.token_urlsafe(16),
            "LABEL_STUDIO_USER_TOKEN": self.token,
            "LABEL_STUDIO_ENABLE_LEGACY_API_TOKEN": "true",
        }  # a clean environment: none of PolicyHub's DJANGO_SETTINGS_MODULE, DATABASE_URL …
        with open(self.log_path, "wb") as log:
            self.process = subprocess.Popen(
                [str(LABEL_STUDIO), "start", "--no-browser", "--internal-host", "127.0.0.1", "--port", str(self.port)],
                env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True,
            )  # fmt: skip
        try:
            self._wait_healthy()
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def _wait_healthy(self) -> None:
        deadline = time.monotonic() + STARTUP_SECONDS
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"Label Studio exited with {self.process.returncode}:\n{self.log_tail()}")
            try:
                if httpx.get(f"{self.url}/health", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(1)
        raise RuntimeError(f"Label Studio did not answer /health within {STARTUP_SECONDS} s:\n{self.log_tail()}")

    def log_tail(self, lines: int = 40) -> str:
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def __exit__(self, *exc) -> None:
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)  # its own session: the server and anything it started
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        self._dir.cleanup()

    def annotator_token(self, email: str) -> str:
        """Sign ``email`` up in Label Studio (once) as a person would, and return their own API token."""
        if email not in self._tokens:
            with httpx.Client(base_url=self.url, follow_redirects=True, timeout=30) as browser:
                browser.get("/user/signup/")
                form = {"csrfmiddlewaretoken": browser.cookies["csrftoken"], "email": email,
                        "password": secrets.token_urlsafe(12)}  # fmt: skip
                signed_up = browser.post("/user/signup/", data=form, headers={"Referer": f"{self.url}/user/signup/"})
                signed_up.raise_for_status()
                answer = browser.get("/api/current-user/token")
                answer.raise_for_status()
                self._tokens[email] = answer.json()["token"]
        return self._tokens[email]

    def user_id(self, email: str) -> int:
        """``email``'s user id in Label Studio (signing them up first)."""
        return self.client(self.annotator_token(email)).users.whoami().id

    def client(self, token: str | None = None) -> LabelStudio:
        """An SDK client as the admin, or as whoever ``token`` belongs to."""
        return LabelStudio(base_url=self.url, api_key=token or self.token)

    def tasks(self, project_id: int) -> list:
        return list(self.client().tasks.list(project=project_id, fields="all"))

    def task_id(self, project_id: int, candidate_id: int) -> int:
        return next(task.id for task in self.tasks(project_id) if task.data["candidate_id"] == candidate_id)

    def annotate(self, email: str, task_id: int, label: str, note: str = "") -> int:
        """Annotate a task with ``email``'s own token (signing them up first): choose ``label``, write ``note``."""
        result = [{"from_name": "label", "to_name": "member", "type": "choices", "value": {"choices": [label]}}]
        if note:
            result.append({"from_name": "note", "to_name": "member", "type": "textarea", "value": {"text": [note]}})
        return self.client(self.annotator_token(email)).annotations.create(id=task_id, result=result).id
