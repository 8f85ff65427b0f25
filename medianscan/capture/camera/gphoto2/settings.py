"""Camera settings through libgphoto2 widgets: lock each configured value and read it back until it lands, list
every setting for `camera show`, and restore what was changed. A choice widget without choices (a manual lens's
aperture) is never read: that is reported to crash libgphoto2.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import gphoto2 as gp

from medianscan.capture.camera import faults
from medianscan.capture.camera.base import CameraError, SettingError, SettingInfo
from medianscan.capture.camera.gphoto2.session import Gphoto2Session
from medianscan.capture.camera.settings import (
    match_choice,
    nearest_choices,
    nearest_names,
    same_value,
    widget_candidates,
)
from medianscan.vocabulary import canonical_key

log = logging.getLogger(__name__)


def _typed(widget: Any, value: str) -> object:
    """`value` in the Python type the widget's set_value wants."""
    kind = widget.get_type()
    if kind == gp.GP_WIDGET_TOGGLE:
        return 1 if value.strip().lower() in {"1", "on", "true", "yes"} else 0
    if kind == gp.GP_WIDGET_RANGE:
        return float(value)
    if kind == gp.GP_WIDGET_DATE:
        return int(value)
    return value


NO_CHOICES = "no choices (manual lens?)"


def _choiceless(widget: Any) -> bool:
    """A radio or menu widget that offers nothing: what a manual or adapted lens makes some bodies report for
    the aperture. Reading such a widget's value is reported to crash libgphoto2 (NegPy #617), so nothing here
    ever reads one."""
    return widget.get_type() in (gp.GP_WIDGET_RADIO, gp.GP_WIDGET_MENU) and widget.count_choices() == 0


def choices_of(widget: Any) -> list[str]:
    if widget.get_type() in (gp.GP_WIDGET_RADIO, gp.GP_WIDGET_MENU):
        return [str(widget.get_choice(i)) for i in range(widget.count_choices())]
    if widget.get_type() == gp.GP_WIDGET_TOGGLE:
        return ["0", "1"]
    if widget.get_type() == gp.GP_WIDGET_RANGE:
        low, high, step = widget.get_range()
        return [f"{low:g}..{high:g} step {step:g}"]
    return []


class Gphoto2Settings:
    """The settings of one session: what was found where, and the values found before our first change."""

    def __init__(self, session: Gphoto2Session) -> None:
        self.session = session
        self.originals: dict[str, str] = {}  # widget name -> value found before our first change
        self.names: dict[str, str] = {}  # config key -> widget name found on this body
        session.on_connect.append(self.names.clear)

    def _optional(self, key: str) -> bool:
        return canonical_key(key) in {canonical_key(o) for o in self.session.cfg.optional}

    def _find(self, key: str) -> tuple[str, Any] | None:
        names = (self.names[key],) if key in self.names else widget_candidates(key)
        for name in names:
            try:
                widget = self.session.call(self.session.cam.get_single_config, name)
            except gp.GPhoto2Error as exc:
                if exc.code in (faults.BAD_PARAMETERS, faults.NOT_SUPPORTED):
                    continue
                raise
            self.names[key] = name
            return name, widget
        return None

    def lock(self) -> dict[str, str]:
        """Set each configured setting, read it back until it lands, and return what the camera reports."""
        if self.session.cam is None:
            self.session.connect()
        result: dict[str, str] = {}
        for key, wanted in self.session.cfg.settings.items():
            try:
                found = self._find(key)
                if found is None:
                    tried = ", ".join(repr(n) for n in widget_candidates(key))
                    message = f"the camera ({self.session.where()}) has no setting {key!r} (tried {tried})"
                    if self._optional(key):
                        log.warning("%s; skipped as it is optional", message)
                        continue
                    names = [info.name for info in self.describe()]
                    hint = nearest_names(key, names) or "; `medianscan camera show` lists the ones it has"
                    raise SettingError(key, message + hint, f"the body has no setting {key!r} (tried {tried}){hint}")
                name, widget = found
                if _choiceless(widget):
                    message = (
                        f"camera setting {key!r} ({name}) offers no choices on {self.session.where()}: a manual or "
                        "adapted lens? Set it on the lens"
                    )
                    if self._optional(key):
                        log.warning("%s; skipped as it is optional", message)
                        continue
                    raise SettingError(key, message)
                result[key] = self._set_verified(key, str(wanted), name, widget)
            except gp.GPhoto2Error as exc:
                if exc.code in faults.GONE:
                    self.session.drop()  # the session is lost: the next call reconnects on a new object
                raise CameraError(faults.explain(exc.code, f"set {key!r}", self.session.where(), exc.string)) from exc
        return result

    def _set_verified(self, key: str, wanted: str, name: str, widget: Any) -> str:
        current = str(widget.get_value())
        if same_value(key, wanted, current):
            return current
        choices = choices_of(widget)
        target = wanted
        if widget.get_type() in (gp.GP_WIDGET_RADIO, gp.GP_WIDGET_MENU):
            match = match_choice(key, wanted, choices)
            if match is None:
                raise SettingError(
                    key,
                    f"camera setting {key!r} ({name}) cannot be {wanted!r} on {self.session.where()}: it offers "
                    + nearest_choices(key, wanted, choices),
                )
            target = match
        if widget.get_readonly():
            raise SettingError(
                key,
                f"camera setting {key!r} ({name}) is read-only on {self.session.where()} and reads {current!r}, "
                f"not {wanted!r}: change it on the body (mode dial)",
            )
        self.originals.setdefault(name, current)
        try:
            widget.set_value(_typed(widget, target))
        except ValueError as exc:
            raise SettingError(key, f"camera setting {key!r} ({name}) cannot be {wanted!r}: {exc}") from exc
        self.session.call(self.session.cam.set_single_config, name, widget)
        deadline = time.monotonic() + self.session.cfg.settle_seconds
        delay = 0.02
        while True:
            now = str(self.session.call(self.session.cam.get_single_config, name).get_value())
            if same_value(key, wanted, now) or now == target:
                return now
            if time.monotonic() + delay > deadline:
                raise SettingError(
                    key,
                    f"camera setting {key!r} ({name}) did not take {wanted!r} on {self.session.where()}: it still "
                    f"reads {now!r} after {self.session.cfg.settle_seconds:g} s (check the mode dial and lens)",
                )
            self.session.sleep(delay)
            delay = min(delay * 2, 0.25)

    def describe(self) -> list[SettingInfo]:
        if self.session.cam is None:
            self.session.connect()
        result: list[SettingInfo] = []

        def walk(widget: Any, section: str) -> None:
            if widget.get_type() in (gp.GP_WIDGET_WINDOW, gp.GP_WIDGET_SECTION):
                for i in range(widget.count_children()):
                    walk(widget.get_child(i), widget.get_name())
                return
            if _choiceless(widget):
                value = NO_CHOICES
            else:
                try:
                    value = str(widget.get_value())
                except gp.GPhoto2Error:
                    value = ""
            name = widget.get_name()
            result.append(
                SettingInfo(
                    name=name,
                    key=canonical_key(name),
                    label=widget.get_label(),
                    value=value,
                    choices=choices_of(widget),
                    readonly=bool(widget.get_readonly()),
                    section=section,
                )
            )

        try:
            walk(self.session.call(self.session.cam.get_config), "")
        except gp.GPhoto2Error as exc:
            if exc.code in faults.GONE:
                self.session.drop()
            raise CameraError(faults.explain(exc.code, "read the settings", self.session.where(), exc.string)) from exc
        return result

    def widget(self, name: str) -> Any | None:
        """The body's widget called `name` (its raw name, as `camera show` lists it), or None if it has none."""
        try:
            return self.session.call(self.session.cam.get_single_config, name)
        except gp.GPhoto2Error as exc:
            if exc.code in (faults.BAD_PARAMETERS, faults.NOT_SUPPORTED):
                return None
            raise

    def put(self, name: str, value: str, *, restore: bool = True) -> None:
        """Set widget `name` to `value` as the body spells it, with no read-back (a release button reads back
        nothing); `restore` puts the value found before back when the session ends."""
        widget = self.session.call(self.session.cam.get_single_config, name)
        if restore:
            self.originals.setdefault(name, str(widget.get_value()))
        widget.set_value(_typed(widget, value))
        self.session.call(self.session.cam.set_single_config, name, widget)

    def restore(self) -> None:
        """Put back every value we changed (before the session ends)."""
        cam = self.session.cam
        for name, value in self.originals.items():
            try:
                widget = cam.get_single_config(name)
                widget.set_value(_typed(widget, value))
                self.session.call(cam.set_single_config, name, widget)
            except (gp.GPhoto2Error, ValueError) as exc:
                log.warning("could not restore %s to %r on %s: %s", name, value, self.session.where(), exc)
        self.originals.clear()
