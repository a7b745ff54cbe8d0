"""Every table is either emptied between tests (TABLES) or knowingly kept (KEPT_TABLES)."""

import sms_sender.models  # noqa: F401  (registers every table on the metadata)
from sms_sender.db import Base
from tests.conftest import KEPT_TABLES, TABLES


def test_every_table_of_the_metadata_is_cleaned_between_tests() -> None:
    assert sorted(TABLES + KEPT_TABLES) == sorted(Base.metadata.tables)
