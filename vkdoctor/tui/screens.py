"""Modal screens: help (the key bindings), save, open, and a yes/no question."""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Button, Checkbox, Input, Label, RadioButton, RadioSet, Static

from vkdoctor.tui.export import SaveRequest, default_name


def _key(key: str) -> str:
    names = {"question_mark": "?", "escape": "esc", "enter": "enter", "tab": "tab"}
    return ", ".join(names.get(k.strip(), k.strip()) for k in key.split(","))


class HelpScreen(ModalScreen[None]):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "dismiss_help", "Close"),
        Binding("q", "dismiss_help", "Close"),
        Binding("question_mark", "dismiss_help", "Close"),
    ]

    def __init__(self, sections: Sequence[tuple[str, Sequence[tuple[str, str]]]]) -> None:
        super().__init__()
        self.sections = sections

    def compose(self) -> ComposeResult:
        table = Table(box=None, padding=(0, 1), show_header=False)
        table.add_column(style="bold cyan", no_wrap=True)
        table.add_column()
        for title, keys in self.sections:
            table.add_row(Text(title, style="bold underline"), "")
            for key, description in keys:
                table.add_row(" " + _key(key), description)
        with Vertical(id="help-box", classes="dialog"):
            yield Label("vkdoctor — keys", classes="dialog-title")
            with VerticalScroll():
                yield Static(table)
            yield Label("esc closes · tab moves between areas · arrows move", classes="dim")

    def action_dismiss_help(self) -> None:
        self.dismiss(None)


class SaveScreen(ModalScreen[SaveRequest | None]):
    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, path: str = "", *, fmt: str = "json", redact: bool = True) -> None:
        super().__init__()
        self._path = path or default_name(fmt)
        self._fmt = fmt
        self._redact = redact

    def compose(self) -> ComposeResult:
        with Vertical(id="save-box", classes="dialog"):
            yield Label("Save the report", classes="dialog-title")
            yield Input(self._path, id="save-path", placeholder="file name")
            with RadioSet(id="save-format"):
                yield RadioButton("JSON", value=self._fmt == "json", id="fmt-json")
                yield RadioButton("Markdown", value=self._fmt == "markdown", id="fmt-markdown")
            yield Checkbox(
                "Redact home, user, host and machine ids", self._redact, id="save-redact"
            )
            with Horizontal(classes="buttons"):
                yield Button("Save", variant="primary", id="save")
                yield Button("Cancel", id="cancel")

    def on_mount(self) -> None:
        self.query_one("#save-path", Input).focus()

    def _format(self) -> str:
        pressed = self.query_one("#save-format", RadioSet).pressed_button
        return "markdown" if pressed is not None and pressed.id == "fmt-markdown" else "json"

    def on_radio_set_changed(self, event: RadioSet.Changed) -> None:
        # Keep the extension in step with the format while the name is still ours.
        field = self.query_one("#save-path", Input)
        fmt = self._format()
        for old, new in ((".json", ".md"), (".md", ".json")):
            if field.value.endswith(old) and not default_name(fmt).endswith(old):
                field.value = field.value[: -len(old)] + new
                break

    def _submit(self) -> None:
        path = self.query_one("#save-path", Input).value.strip()
        if not path:
            self.notify("Give a file name.", severity="warning")
            return
        redact = self.query_one("#save-redact", Checkbox).value
        self.dismiss(SaveRequest(path=path, format=self._format(), redact=redact))

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self._submit()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        if event.button.id == "save":
            self._submit()
        else:
            self.dismiss(None)

    def action_cancel(self) -> None:
        self.dismiss(None)


class OpenScreen(ModalScreen[str | None]):
    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, path: str = "", title: str = "Open a report or a trace") -> None:
        super().__init__()
        self._path = path
        self._title = title

    def compose(self) -> ComposeResult:
        with Vertical(id="open-box", classes="dialog"):
            yield Label(self._title, classes="dialog-title")
            yield Input(self._path, id="open-path", placeholder="report.json or trace.jsonl")
            with Horizontal(classes="buttons"):
                yield Button("Open", variant="primary", id="open")
                yield Button("Cancel", id="cancel")

    def on_mount(self) -> None:
        self.query_one("#open-path", Input).focus()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        if event.value.strip():
            self.dismiss(event.value.strip())

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        value = self.query_one("#open-path", Input).value.strip()
        self.dismiss(value if event.button.id == "open" and value else None)

    def action_cancel(self) -> None:
        self.dismiss(None)


class ConfirmScreen(ModalScreen[bool]):
    """A yes/no question; the default answer (enter on the focused button) is No."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "answer(False)", "No"),
        Binding("n", "answer(False)", "No"),
        Binding("y", "answer(True)", "Yes"),
    ]

    def __init__(self, question: str, yes: str = "Yes") -> None:
        super().__init__()
        self.question = question
        self.yes = yes

    def compose(self) -> ComposeResult:
        with Vertical(id="confirm-box", classes="dialog"):
            yield Label(self.question, id="confirm-question")
            with Horizontal(classes="buttons"):
                yield Button(f"{self.yes} (y)", variant="warning", id="yes")
                yield Button("Keep it (n)", id="no")

    def on_mount(self) -> None:
        self.query_one("#no", Button).focus()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        self.dismiss(event.button.id == "yes")

    def action_answer(self, yes: bool) -> None:
        self.dismiss(yes)
