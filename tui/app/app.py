"""The facepair Textual app: renders projects and jobs, and starts work as detached jobs.

Nothing heavy runs in this process: extraction, training and conversion are `core` job kinds
started with `core.jobs.control.start_job` in their own session, so quitting the app (or losing the SSH
connection) never stops them, and any number of apps — in any terminal — watch the same files.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from functools import partial

from textual.app import App
from textual.binding import Binding
from textual.command import DiscoveryHit, Hit, Hits, Provider

from core.errors import FacepairError
from core.jobs import control as jobs
from core.jobs import kinds as jobkinds
from core.project.projects import Project, home_dir

THEMES = ("textual-dark", "textual-light")


class ScreenActions(Provider):
    """Command palette: the actions of the current screen (its footer's bindings and more)."""

    def _actions(self):
        screen = self.screen
        seen: set[str] = set()
        for _key, active in screen.active_bindings.items():
            binding = active.binding
            if not binding.description or binding.action in seen or not active.enabled:
                continue
            seen.add(binding.action)
            yield binding.description, self.app.get_key_display(binding), active.node, binding.action

    async def _run(self, node, action: str) -> None:
        await self.app.run_action(action, node)

    async def discover(self) -> Hits:
        for description, key, node, action in self._actions():
            yield DiscoveryHit(description, partial(self._run, node, action), help=f"key: {key}")

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for description, key, node, action in self._actions():
            score = matcher.match(description)
            if score > 0:
                yield Hit(score, matcher.highlight(description), partial(self._run, node, action),
                          help=f"key: {key}")


class FacepairApp(App):
    """`home`: the projects home. `clock` gives 'now' for ages (tests pin it); `poll_interval`
    is how often screens fold new job events in and redraw (the bounded redraw rate)."""

    CSS_PATH = "app.tcss"
    TITLE = "facepair"
    COMMANDS = App.COMMANDS | {ScreenActions}
    ENABLE_COMMAND_PALETTE = True
    BINDINGS = [
        Binding("question_mark", "help", "Help", id="app.help"),
        Binding("j", "jobs", "Jobs", id="app.jobs"),
        Binding("ctrl+t", "toggle_theme", "Theme", id="app.theme", show=False),
        Binding("q", "quit", "Quit", id="app.quit"),
    ]

    def __init__(self, home: str | os.PathLike | None = None, *, clock: Callable[[], float] = time.time,
                 poll_interval: float = 0.5, list_interval: float = 2.0, picture_mode: str | None = None,
                 theme: str | None = None):
        super().__init__()
        self.home = home_dir(home)
        self.clock = clock
        self.poll_interval = poll_interval
        self.list_interval = list_interval
        self.picture_mode = picture_mode
        wanted = theme or os.environ.get("FACEPAIR_THEME", "dark")
        self._initial_theme = "textual-light" if wanted in ("light", "textual-light") else "textual-dark"

    def on_mount(self) -> None:
        from tui.app.screens.projects import ProjectsScreen

        self.theme = self._initial_theme
        self.sub_title = str(self.home)
        self.push_screen(ProjectsScreen())

    # ---- actions every screen has --------------------------------------------------------
    def action_help(self) -> None:
        from tui.app.screens.help import HelpScreen

        if isinstance(self.screen, HelpScreen):
            self.pop_screen()
            return
        self.push_screen(HelpScreen(self.screen))

    def action_jobs(self) -> None:
        from tui.app.screens.jobs import JobsScreen

        if isinstance(self.screen, JobsScreen):
            return
        self.push_screen(JobsScreen())

    def action_toggle_theme(self) -> None:
        self.theme = THEMES[(THEMES.index(self.theme) + 1) % 2] if self.theme in THEMES else THEMES[0]

    # ---- talking to core -----------------------------------------------------------------
    def report(self, error: BaseException | str, title: str = "error") -> None:
        """Show a core error with the CLI's words (never a traceback)."""
        self.notify(str(error), title=title, severity="error", timeout=10, markup=False)

    def kind_available(self, kind: str) -> bool:
        return kind in jobkinds.KINDS

    def unavailable(self, kind: str) -> str:
        return f"{kind} is not available in this build: job kind {kind!r} is not registered in core.jobs.kinds"

    def start_job(self, project: Project, kind: str, args: dict | None = None) -> jobs.Job | None:
        """Start a detached job; notify and return None when it cannot start."""
        if not self.kind_available(kind):
            self.notify(self.unavailable(kind), title="not available", severity="warning", timeout=8, markup=False)
            return None
        try:
            job = jobs.start_job(project, kind, args or {})
        except FacepairError as e:
            self.report(e)
            return None
        except OSError as e:
            from core.system import diskfull

            if not diskfull.is_disk_full(e):
                raise
            self.report(diskfull.describe(e, fallback=project.root))
            return None
        self.notify(f"started {kind} job {job.id}", title=project.name, markup=False)
        return job

    def cancel_job(self, job: jobs.Job, grace: float | None = None) -> None:
        """SIGTERM now (the job may save), SIGKILL after `grace` (default: its kind's), in a thread:
        the UI never waits."""
        grace = jobkinds.grace(job.kind) if grace is None else grace

        def work() -> None:
            try:
                final = jobs.cancel_job(job, grace=grace)
            except FacepairError as e:
                self.call_from_thread(self.report, e)
                return
            except OSError as e:
                self.call_from_thread(self.report, f"cannot cancel {job.id}: {e}")
                return
            msg = f"job {final.id}: {final.state}" + (f" ({final.reason})" if final.reason else "")
            self.call_from_thread(self.notify, msg, markup=False)

        self.notify(f"cancelling {job.id}; up to {grace:g} s to save…", markup=False)
        self.run_worker(work, thread=True, name=f"cancel {job.id}", group="cancel", exit_on_error=False)


def preload_terminal_graphics() -> None:
    """textual-image asks the terminal about sixel/kitty support on import; that only works before
    Textual owns the terminal."""
    try:
        import textual_image.widget  # noqa: F401
    except Exception:  # a terminal that answers nonsense must not stop the app
        pass


def run_app(home: str | os.PathLike | None = None) -> int:
    preload_terminal_graphics()
    app = FacepairApp(home)
    app.run()
    return int(app.return_code or 0)

