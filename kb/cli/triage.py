"""``kb triage``'s full-screen loop (textual): one feed item at a time, single-key decisions."""

import webbrowser
from typing import ClassVar

from rich.markup import escape
from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.widgets import Footer, Input, Static

from kb.errors import KBError
from kb.feed.daily import FeedReport
from kb.feed.triage import Taken, take, take_back
from kb.settings import Settings

KEYS = "a add   * star (add+★)   s skip   l later   o open   u undo   ↑/↓ move   q quit"
SHOWN = {"added": "added", "starred": "★ starred", "skipped": "skipped", "later": "kept for later"}


class TriageApp(App):
    """Walks the ranked undecided items; every decision is stored the moment its key is pressed."""

    CSS = """
    #position { height: 1; background: $boost; }
    #item { height: 1fr; padding: 0 1; }
    #tags { display: none; }
    #tags.asking { display: block; }
    #keys { height: 1; background: $boost; }
    """
    BINDINGS: ClassVar[list[Binding]] = [
        Binding("a", "decide('added')", "add"),
        Binding("asterisk", "decide('starred')", "star"),
        Binding("s", "decide('skipped')", "skip"),
        Binding("l", "decide('later')", "later"),
        Binding("o", "open", "open"),
        Binding("u", "undo", "undo"),
        Binding("down,right,j", "move(1)", "next", show=False),
        Binding("up,left,k", "move(-1)", "previous", show=False),
        Binding("q", "quit", "quit"),
    ]

    def __init__(self, settings: Settings, report: FeedReport, *, open_url=webbrowser.open) -> None:
        super().__init__()
        self.settings, self.items, self.open_url = settings, report.items, open_url
        self.ranked = report.ranked
        self.cursor = 0
        self.taken: dict[int, Taken] = {}
        self.history: list[int] = []
        self.asking_for = "added"

    def compose(self) -> ComposeResult:
        yield Static(id="position")
        with VerticalScroll(id="item"):
            yield Static(id="body")
        yield Input(placeholder="tags for this paper, space-separated; Enter adds, Esc cancels", id="tags")
        yield Static(KEYS, id="keys")
        yield Footer()

    def on_mount(self) -> None:
        self.show()

    # -- what is on screen ---------------------------------------------------------------
    def show(self) -> None:
        position, body = self.query_one("#position", Static), self.query_one("#body", Static)
        if not self.items:
            position.update("nothing to triage")
            body.update("No undecided items in today's feed (weekends and holidays have none). q quits.")
            return
        left = len(self.items) - len(self.taken)
        order = "ranked" if self.ranked else "announcement order (empty catalog)"
        position.update(f" {self.cursor + 1}/{len(self.items)}  ·  {left} undecided  ·  {order}")
        entry = self.items[self.cursor]
        item = entry.item
        lines = [f"[b]{escape(item.title)}[/b]", escape(", ".join(item.authors)),
                 f"{item.key}v{item.version or 1}  ·  {', '.join(item.categories)}  ·  {item.announce_type}  ·  {item.announced}"]
        if entry.score is not None:
            lines.append(f"score {entry.score:.3f}" + (f"  ·  {escape('; '.join(entry.reasons))}" if entry.reasons else ""))
        if entry.note:
            lines.append(f"[i]{escape(entry.note)}[/i]")
        if self.cursor in self.taken:
            lines.append(f"[reverse] {SHOWN[self.taken[self.cursor].event['action']]} [/reverse]")
        lines += ["", escape(item.abstract)]
        body.update("\n".join(lines))

    def _next_undecided(self) -> None:
        for step in range(1, len(self.items) + 1):
            candidate = (self.cursor + step) % len(self.items)
            if candidate not in self.taken:
                self.cursor = candidate
                return

    # -- keys ------------------------------------------------------------------------------
    def action_move(self, step: int) -> None:
        if self.items:
            self.cursor = max(0, min(len(self.items) - 1, self.cursor + step))
            self.show()

    def action_decide(self, action: str) -> None:
        if not self.items or self.cursor in self.taken:
            return
        if action in ("added", "starred"):
            tags = self.query_one("#tags", Input)
            self.asking_for = action
            tags.value = ""
            tags.add_class("asking")
            tags.focus()
            return
        self._take(action, [])

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.input.remove_class("asking")
        self.set_focus(None)
        self._take(self.asking_for, event.value.split())

    def on_key(self, event) -> None:
        tags = self.query_one("#tags", Input)
        if event.key == "escape" and tags.has_class("asking"):
            tags.remove_class("asking")
            self.set_focus(None)
            event.stop()

    def _take(self, action: str, tags: list[str]) -> None:
        try:
            self.taken[self.cursor] = take(self.settings, self.items[self.cursor].item, action, tags=tags)
        except KBError as exc:
            self.notify(str(exc), severity="error")
            return
        self.history.append(self.cursor)
        self._next_undecided()
        self.show()

    def action_undo(self) -> None:
        if not self.history:
            self.notify("nothing to undo")
            return
        index = self.history.pop()
        try:
            take_back(self.settings, self.taken.pop(index))
        except KBError as exc:
            self.notify(str(exc), severity="error")
        self.cursor = index
        self.show()

    def action_open(self) -> None:
        if self.items:
            self.open_url(f"https://arxiv.org/abs/{self.items[self.cursor].item.key}")
