"""Make the desktop app's screenshots in docs/screenshots/ on a private X display.

    PYTHONPATH=. python scripts/screenshots/make_screenshots.py [--out docs/screenshots]

Starts Xvfb, a private session D-Bus, dunst (the notification server) and trayer (an
XEmbed tray), runs the real Deskbell tray icon and windows in ``app_scene.py`` on that
display, sends a real toast through the app's DesktopNotifierToaster, and writes:

- ``tray.png``: the top-right corner of the screen with trayer's panel and the badged
  icon, zoomed 4x without smoothing (every pixel as the agent sees it);
- ``toast.png``: dunst's pop-up for a chat message, cropped from the screen;
- ``escalation-toast.png``: an escalation (urgent, with Accept) as dunst shows it;
- ``notifications.png``, ``conversation.png``, ``waiting.png``: the windows as they
  paint (``waiting.png``: the Waiting view, one wait escalated, one taken).

The data and the clock are fixed (``scenes.py``), so a rerun gives the same pictures.
Needs the Debian packages xvfb, dbus-daemon, dunst, trayer, xdotool, imagemagick and
the DejaVu fonts (fonts-dejavu-core).
"""

from __future__ import annotations

import argparse
import asyncio
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from scripts.screenshots import scenes
from tests.support.desktop_session import DesktopSession, missing_binaries

REPO_ROOT = Path(__file__).resolve().parents[2]
SCENE = Path(__file__).with_name("app_scene.py")
TIMEOUT = 30.0
ZOOM = 4
SCENE_WM_CLASS = "deskbell"  # app_scene.APP_NAME: the WM_CLASS of its tray icon window
SCREEN_WIDTH = 1280  # DesktopSession's Xvfb screen is 1280x800
PANEL_TINT = "0x2e3440"
PANEL_HEIGHT = 28

DUNSTRC = """[global]
    font = DejaVu Sans 10
    markup = full
    format = "<b>%s</b>\\n%b"
    origin = top-right
    offset = 10x{offset}
    width = 380
    height = 160
    padding = 10
    horizontal_padding = 12
    frame_width = 1
    frame_color = "#2e3440"
    corner_radius = 0
    icon_position = left
    min_icon_size = 40
    max_icon_size = 40
    show_indicators = no
    word_wrap = yes
    ellipsize = end

[urgency_normal]
    background = "#ffffff"
    foreground = "#1f2328"
    timeout = 0

[urgency_critical]
    background = "#fff7ed"
    foreground = "#431407"
    frame_color = "#c2410c"
    timeout = 0
"""


@dataclass(frozen=True)
class Geometry:
    """A window's place on the screen, in pixels."""

    x: int
    y: int
    width: int
    height: int

    def crop(self, margin: int = 0) -> str:
        """The ImageMagick ``-crop`` argument for this area grown by ``margin``."""
        return (
            f"{self.width + 2 * margin}x{self.height + 2 * margin}"
            f"+{max(0, self.x - margin)}+{max(0, self.y - margin)}"
        )


class Screen:
    """X clients run against the private display."""

    def __init__(self, session: DesktopSession) -> None:
        self.session = session

    def run(self, *argv: str) -> str:
        """Run an X client; its stdout (raises on failure or after TIMEOUT)."""
        result = subprocess.run(
            argv, env=self.session.env, capture_output=True, timeout=TIMEOUT, check=True
        )
        return result.stdout.decode(errors="replace")

    def find_visible(self, classname: str) -> str:
        """Wait (xdotool --sync) for a mapped window of this class; return its id."""
        return self.run(
            "xdotool", "search", "--sync", "--onlyvisible", "--classname", classname
        ).split()[0]

    def geometry(self, window: str) -> Geometry:
        """Where ``window`` is on the screen."""
        values: dict[str, int] = {}
        for line in self.run("xdotool", "getwindowgeometry", "--shell", window).splitlines():
            key, _, value = line.partition("=")
            if key in ("X", "Y", "WIDTH", "HEIGHT"):
                values[key] = int(value)
        return Geometry(values["X"], values["Y"], values["WIDTH"], values["HEIGHT"])

    def red_pixels(self, window: str) -> int:
        """How many clearly red pixels ``window`` shows on screen now (the badge)."""
        ppm = subprocess.run(
            ["import", "-window", window, "ppm:-"],
            env=self.session.env,
            capture_output=True,
            timeout=TIMEOUT,
            check=True,
        ).stdout
        # Binary PPM: "P6", width, height, maxval, each followed by one whitespace byte.
        fields = ppm.split(maxsplit=4)
        width, height = int(fields[1]), int(fields[2])
        pixels = ppm[len(ppm) - width * height * 3 :]
        return sum(
            1
            for i in range(0, len(pixels), 3)
            if pixels[i] > 170 and pixels[i + 1] < 90 and pixels[i + 2] < 90
        )

    def children_with_class(self, window: str, classname: str) -> list[str]:
        """Ids of windows under ``window`` whose WM_CLASS name is ``classname``."""
        tree = self.run("xwininfo", "-tree", "-id", window)
        return [line.split()[0] for line in tree.splitlines() if f'("{classname}" ' in line]


def wait_for(condition: Callable[[], bool], what: str) -> None:
    """Poll ``condition()`` until true, for X states nothing announces (a docked icon)."""
    deadline = time.monotonic() + TIMEOUT
    while not condition():
        if time.monotonic() > deadline:
            raise RuntimeError(f"gave up waiting for {what} after {TIMEOUT} s")
        time.sleep(0.02)


@contextmanager
def background(
    session: DesktopSession, name: str, argv: list[str], log_dir: Path
) -> Iterator[subprocess.Popen[bytes]]:
    """Run a helper program for the length of the block; stop it afterwards."""
    with (log_dir / f"{name}.log").open("wb") as log:
        process = subprocess.Popen(
            argv, env=session.env, stdout=log, stderr=log, stdin=subprocess.DEVNULL
        )
    try:
        yield process
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


class SceneProcess:
    """The running ``app_scene.py``."""

    def __init__(self, session: DesktopSession, out_dir: Path, icon_path: Path, log: Path):
        env = dict(session.env, QT_QPA_PLATFORM="xcb", PYTHONPATH=str(REPO_ROOT))
        with log.open("wb") as stderr:
            self.process = subprocess.Popen(
                [sys.executable, str(SCENE), str(out_dir), str(icon_path)],
                env=env,
                cwd=REPO_ROOT,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=stderr,
            )
        self.log = log

    def expect(self, prefix: str) -> str:
        """The next line the scene prints that starts with ``prefix``."""
        assert self.process.stdout is not None
        while True:
            raw = self.process.stdout.readline()
            if not raw:
                raise RuntimeError(
                    f"app_scene.py exited before {prefix!r}:\n{self.log.read_text()[-3000:]}"
                )
            line = raw.decode().strip()
            if line.startswith(prefix):
                return line

    def send(self, command: str) -> None:
        """Send one command line."""
        assert self.process.stdin is not None
        self.process.stdin.write(command.encode() + b"\n")
        self.process.stdin.flush()

    def stop(self) -> None:
        """Ask the scene to quit, and reap it."""
        if self.process.poll() is None:
            self.send("quit")
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


async def send_toast(icon_path: Path, *, escalation: bool = False) -> None:
    """Show the chat toast through the app's own toaster (escaping included); with
    ``escalation``, the urgent one of a visitor waiting past the first step."""
    from desktop_agent.platform.toasts import DesktopNotifierToaster, ToastRequest

    toaster = DesktopNotifierToaster(
        lambda _key, _conversation: None,
        lambda _key, _conversation: None,
        app_icon=str(icon_path),
    )
    availability = await toaster.available()
    if not availability.ok:
        raise RuntimeError(f"dunst is not answering on the private bus: {availability.reason}")
    if escalation:
        request = ToastRequest(
            key="conv-priya",
            title=scenes.ESCALATION_TOAST_TITLE,
            body=scenes.ESCALATION_TOAST_BODY,
            conversation_id="conv-priya",
            actions=("accept", "open", "mark_read"),
            urgent=True,
        )
    else:
        request = ToastRequest(
            key="conv-dana",
            title=scenes.TOAST_TITLE,
            body=scenes.TOAST_BODY,
            conversation_id="conv-dana",
        )
    if not await toaster.show(request):
        raise RuntimeError("dunst refused the toast")


def session_dunstctl(session: DesktopSession, *args: str) -> None:
    """dunstctl against the session's dunst (started here, not by the session)."""
    subprocess.run(["dunstctl", *args], env=session.env, check=True, timeout=TIMEOUT)


def magick(*argv: str) -> None:
    """Run ImageMagick's convert; PNGs without time stamps, so reruns are identical."""
    subprocess.run(
        ["convert", *argv[:-1], "-strip", "-define", "png:exclude-chunks=date,time", argv[-1]],
        check=True,
        timeout=TIMEOUT,
    )


def make_screenshots(out_dir: Path) -> list[Path]:
    """Make the four PNGs in ``out_dir``; returns their paths."""
    missing = missing_binaries(
        "Xvfb", "dbus-daemon", "dunst", "trayer", "xdotool", "xwininfo", "import", "convert"
    )
    if missing:
        raise SystemExit(f"screenshots need {', '.join(missing)} on PATH")
    out_dir.mkdir(parents=True, exist_ok=True)
    with (
        tempfile.TemporaryDirectory(prefix="deskbell-shots-") as tmp,
        DesktopSession(Path(tmp) / "session", display_server=True) as session,
    ):
        work = Path(tmp)
        screen = Screen(session)
        dunstrc = work / "dunstrc"
        dunstrc.write_text(DUNSTRC.format(offset=PANEL_HEIGHT + 10))
        icon_path = work / "deskbell-48.png"
        trayer_argv = [
            "trayer",
            "--edge", "top",
            "--align", "right",
            "--widthtype", "request",
            "--height", str(PANEL_HEIGHT),
            "--transparent", "true",
            "--alpha", "0",
            "--tint", PANEL_TINT,
            "--padding", "6",
        ]  # fmt: skip
        with (
            background(session, "dunst", ["dunst", "-config", str(dunstrc)], work),
            background(session, "trayer", trayer_argv, work),
        ):
            panel = screen.find_visible("panel")
            scene = SceneProcess(session, out_dir, icon_path, work / "scene.log")
            try:
                ready = scene.expect("tray-ready")
                if "tray=1" not in ready:
                    raise RuntimeError("Qt found no tray although trayer runs")
                wait_for(
                    lambda: bool(screen.children_with_class(panel, SCENE_WM_CLASS)),
                    "the tray icon to dock into trayer",
                )
                icon = screen.children_with_class(panel, SCENE_WM_CLASS)[0]
                wait_for(lambda: screen.red_pixels(icon) > 0, "the badge to be painted")
                # The corner first, before the toast covers part of it.
                full = work / "screen.png"
                screen.run("import", "-window", "root", full.as_posix())
                panel_box = screen.geometry(panel)
                left = panel_box.x - 40
                corner = Geometry(left, 0, SCREEN_WIDTH - left, panel_box.height + 16)
                magick(
                    full.as_posix(),
                    "-crop", corner.crop(), "+repage",
                    "-filter", "point", "-resize", f"{ZOOM * 100}%",
                    (out_dir / "tray.png").as_posix(),
                )  # fmt: skip
                with session.activated():
                    asyncio.run(send_toast(icon_path))
                toast = screen.find_visible("Dunst")
                full = work / "screen-toast.png"
                screen.run("import", "-window", "root", full.as_posix())
                magick(
                    full.as_posix(),
                    "-crop", screen.geometry(toast).crop(margin=8), "+repage",
                    (out_dir / "toast.png").as_posix(),
                )  # fmt: skip
                session_dunstctl(session, "close-all")
                with session.activated():
                    asyncio.run(send_toast(icon_path, escalation=True))
                toast = screen.find_visible("Dunst")
                full = work / "screen-escalation.png"
                screen.run("import", "-window", "root", full.as_posix())
                magick(
                    full.as_posix(),
                    "-crop", screen.geometry(toast).crop(margin=8), "+repage",
                    (out_dir / "escalation-toast.png").as_posix(),
                )  # fmt: skip
                scene.send("windows")
                scene.expect("windows-done")
            finally:
                scene.stop()
    return [
        out_dir / name
        for name in (
            "tray.png",
            "toast.png",
            "escalation-toast.png",
            "notifications.png",
            "conversation.png",
            "waiting.png",
        )
    ]


def main(argv: list[str] | None = None) -> int:
    """Command line entry: make the screenshots and list them."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=REPO_ROOT / "docs" / "screenshots")
    args = parser.parse_args(argv)
    for path in make_screenshots(args.out):
        print(path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
