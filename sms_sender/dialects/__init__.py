"""Every difference between SQLite and PostgreSQL: one named operation each, side by side.

The rest of the package asks this package and never looks at the dialect's name itself, so a
fix made for one database is made beside the other's (``tests/test_dialects.py`` fails on a new
``dialect.name`` anywhere else). ``_connecting.py`` holds how each database is opened and
signalled, ``_writer_turn.py`` how SQLite's writers take turns, ``_statements.py`` the SQL;
this module is their face. The differences, and why they exist:

- Connecting (:func:`create_engine_for`, :func:`read_only`): PostgreSQL gets a pool and a ping
  at checkout; SQLite gets WAL, a busy timeout, IMMEDIATE transactions and a statement in one
  hop to aiosqlite's thread (``_sqlite_driver.py``).
- Writing (:func:`writer_turn`, :func:`writer_turn_at_begin` with :func:`turn_taken_at_begin`,
  :func:`begin_write`,
  :func:`writes_lock_whole_database`, :func:`advisory_lock`): SQLite lets one writer at a time
  into the whole file, so every process's writers queue for it in one line; PostgreSQL locks
  rows, so concurrent writers need explicit locks where they must not overlap.
- Statements (:func:`insert_ignoring_conflicts`, :func:`insert_or_update`, :func:`given_rows`,
  :func:`among`, :func:`update_from_rows`, :func:`skip_locked`, :func:`not_locked_by_others`,
  :func:`planner_setting`, :func:`greatest`, :func:`epoch_seconds`,
  :func:`now_epoch_seconds`): the same meaning in each one's syntax; :func:`chains_inserts`:
  whether one statement may feed an INSERT from another.
- Storage (:func:`stored_datetime`): SQLite has no time zone type.
- Counters (:func:`row_trigger_dropped`, :func:`fold_counter`): SQLite's counting triggers run
  once per row and keep one row per key, PostgreSQL's run once per statement and add rows.
- Wake-ups (:func:`notify_other_processes`, :func:`listens_across_processes`): PostgreSQL's
  LISTEN/NOTIFY reaches other processes; SQLite has nothing of the kind, they poll.

Alembic revisions (``sms_sender/migrations/``) keep their own branches on the dialect: a
revision is frozen history and must go on building the schema it built when it was written,
whatever this package becomes.
"""

from sms_sender.dialects._connecting import (
    advisory_lock,
    create_engine_for,
    listens_across_processes,
    notify_other_processes,
    read_only,
)
from sms_sender.dialects._statements import (
    RowValues,
    among,
    chains_inserts,
    epoch_seconds,
    fold_counter,
    given_rows,
    greatest,
    insert_ignoring_conflicts,
    insert_or_update,
    not_locked_by_others,
    now_epoch_seconds,
    planner_setting,
    row_trigger_dropped,
    skip_locked,
    stored_datetime,
    update_from_rows,
)
from sms_sender.dialects._which import Bind
from sms_sender.dialects._writer_turn import (
    begin_write,
    turn_taken_at_begin,
    writer_turn,
    writer_turn_at_begin,
    writes_lock_whole_database,
)

__all__ = [
    "Bind",
    "RowValues",
    "advisory_lock",
    "among",
    "begin_write",
    "chains_inserts",
    "create_engine_for",
    "epoch_seconds",
    "fold_counter",
    "given_rows",
    "greatest",
    "insert_ignoring_conflicts",
    "insert_or_update",
    "listens_across_processes",
    "not_locked_by_others",
    "notify_other_processes",
    "now_epoch_seconds",
    "planner_setting",
    "read_only",
    "row_trigger_dropped",
    "skip_locked",
    "stored_datetime",
    "turn_taken_at_begin",
    "update_from_rows",
    "writer_turn",
    "writer_turn_at_begin",
    "writes_lock_whole_database",
]
