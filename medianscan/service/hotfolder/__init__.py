"""The hot folder: which files in a watched folder are complete, how they form stacks, which are ready.

Two threads feed on it (the service in `medianscan.service.watch` starts them):
- the watchdog observer (`observe`: inotify on Linux, or polling for NFS/SMB mounts) turns file events into
  notes on a `HotFolder`: which files changed, were closed after writing or renamed into place, and when each
  folder last saw activity;
- the `Planner` (a `threading.Condition` loop whose `stop()` notifies) asks the `HotFolder` which stacks are
  complete and not blended yet, and hands them to the blend pool.

Grouping (per folder; a stack never spans folders, as `blend_stack` requires):
- `folder`: each sub-folder of DIR is a stack, complete once nothing in it changed for `quiet_seconds` (or as
  soon as it holds `watch.frames` complete frames, when set). Files directly in DIR are not a stack.
  Hidden folders, and a stack's `spares/` and `set-aside/` (library.contents.is_kept_apart), are never looked
  into, whatever the grouping.
- `count:N`: the frames of a folder, in name order, in groups of N; a group is complete when its N frames are.
- `gap:SECONDS`: frames in mtime order; a pause longer than SECONDS starts a new stack. A group is complete
  when a later frame lies beyond the gap, or nothing changed in the folder for SECONDS.
  Groups are blended beside their frames as `<first>-<last>_<method>.<ext>` (and `.json`); a late frame that
  joins a gap group blends it again under its new name (the earlier blend stays, nothing is deleted).
"""
