"""Headless Chromium driven over the DevTools protocol on a pipe: no port, no extra package."""

from __future__ import annotations

import fcntl
import json
import os
import subprocess
from pathlib import Path
from typing import Any

FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--hide-scrollbars",
    "--remote-debugging-pipe",
)
# The fds Chromium reads commands from and writes answers to under --remote-debugging-pipe.
COMMANDS_FD, ANSWERS_FD = 3, 4


def fontconfig(folder: Path, font_dirs: list[Path]) -> Path:
    """A fontconfig file that sees only `font_dirs`: the test, not the host, decides which
    fonts the "system" has."""
    lines = [f"  <dir>{directory}</dir>" for directory in font_dirs]
    conf = folder / "fonts.conf"
    conf.write_text(
        '<?xml version="1.0"?>\n<!DOCTYPE fontconfig SYSTEM "fonts.dtd">\n<fontconfig>\n'
        + "\n".join(lines)
        + f"\n  <cachedir>{folder / 'fontcache'}</cachedir>\n</fontconfig>\n",
        encoding="utf-8",
    )
    return conf


def _above_nine(fd: int) -> int:
    moved = fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 10)
    os.close(fd)
    return moved


class Browser:
    """One Chromium with one page, spoken to in DevTools commands."""

    def __init__(self, binary: str, folder: Path, font_dirs: list[Path]) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        commands_read, self._commands = os.pipe()
        self._answers, answers_write = os.pipe()
        # Chromium's ends are moved above fd 9 first, so that putting them on fds 3 and 4 in
        # the child never overwrites one with the other (dup2 then also clears close-on-exec).
        commands_read, answers_write = (
            _above_nine(commands_read),
            _above_nine(answers_write),
        )

        def wire() -> None:  # in the child, before exec
            os.dup2(commands_read, COMMANDS_FD)
            os.dup2(answers_write, ANSWERS_FD)

        self._process = subprocess.Popen(
            [binary, *FLAGS, f"--user-data-dir={folder / 'profile'}", "about:blank"],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env={
                "PATH": "/usr/bin:/bin",
                "HOME": str(folder),
                "FONTCONFIG_FILE": str(fontconfig(folder, font_dirs)),
            },
            preexec_fn=wire,
            # pass_fds would keep the parent's fds 3 and 4, not these; Python opens every
            # other fd close-on-exec (PEP 446), so nothing else reaches Chromium.
            close_fds=False,
        )
        os.close(commands_read)
        os.close(answers_write)
        self._buffer = b""
        self._next_id = 0
        self.events: list[dict[str, Any]] = []
        target = self.send("Target.createTarget", url="about:blank")["targetId"]
        attached = self.send("Target.attachToTarget", targetId=target, flatten=True)
        self._session = attached["sessionId"]
        for domain in ("Page", "DOM", "CSS", "Runtime"):
            self.send(f"{domain}.enable", page=True)

    def _message(self) -> dict[str, Any]:
        while b"\0" not in self._buffer:
            chunk = os.read(self._answers, 1 << 20)
            if not chunk:
                raise RuntimeError("Chromium closed the DevTools pipe")
            self._buffer += chunk
        raw, self._buffer = self._buffer.split(b"\0", 1)
        message: dict[str, Any] = json.loads(raw)
        return message

    def send(self, method: str, *, page: bool = False, **params: Any) -> dict[str, Any]:
        """One command, its answer; events that arrive meanwhile are kept in `events`."""
        self._next_id += 1
        command: dict[str, Any] = {"id": self._next_id, "method": method, "params": params}
        if page:
            command["sessionId"] = self._session
        os.write(self._commands, json.dumps(command).encode() + b"\0")
        while True:
            message = self._message()
            if message.get("id") == self._next_id:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                result: dict[str, Any] = message["result"]
                return result
            self.events.append(message)

    def wait_for(self, event: str) -> dict[str, Any]:
        for seen in self.events:
            if seen.get("method") == event:
                self.events.remove(seen)
                return seen
        while True:
            message = self._message()
            if message.get("method") == event:
                return message
            self.events.append(message)

    def open(self, url: str, width: int = 1280) -> None:
        """Load a page and wait until it and its fonts are ready."""
        self.send(
            "Emulation.setDeviceMetricsOverride",
            page=True,
            width=width,
            height=900,
            deviceScaleFactor=1,
            mobile=False,
        )
        self.send("Page.navigate", page=True, url=url)
        self.wait_for("Page.loadEventFired")
        self.evaluate("document.fonts.ready.then(() => true)")

    def evaluate(self, expression: str) -> Any:
        answer = self.send(
            "Runtime.evaluate",
            page=True,
            expression=expression,
            awaitPromise=True,
            returnByValue=True,
        )
        if "exceptionDetails" in answer:
            raise RuntimeError(f"{expression}: {answer['exceptionDetails']}")
        return answer["result"].get("value")

    def fonts_drawing(self, selector: str) -> list[dict[str, Any]]:
        """For each element matching `selector` that has text of its own: its text and the
        platform fonts Chromium drew that text with (CSS.getPlatformFontsForNode)."""
        root = self.send("DOM.getDocument", page=True, depth=-1)["root"]["nodeId"]
        found = self.send("DOM.querySelectorAll", page=True, nodeId=root, selector=selector)
        drawn = []
        for node in found["nodeIds"]:
            fonts = self.send("CSS.getPlatformFontsForNode", page=True, nodeId=node)["fonts"]
            if fonts:
                html = self.send("DOM.getOuterHTML", page=True, nodeId=node)["outerHTML"]
                drawn.append({"html": html, "fonts": fonts})
        return drawn

    def screenshot(self, target: Path) -> None:
        """The whole page, top to bottom, as a PNG a person can look at."""
        import base64

        size = self.send("Page.getLayoutMetrics", page=True)["cssContentSize"]
        shot = self.send(
            "Page.captureScreenshot",
            page=True,
            format="png",
            captureBeyondViewport=True,
            clip={"x": 0, "y": 0, "width": size["width"], "height": size["height"], "scale": 1},
        )
        target.write_bytes(base64.b64decode(shot["data"]))

    def close(self) -> None:
        try:
            self.send("Browser.close")
        except RuntimeError:
            pass  # it may close the pipe before answering
        finally:
            os.close(self._commands)
            os.close(self._answers)
            self._process.wait(timeout=60)

    def __enter__(self) -> Browser:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
