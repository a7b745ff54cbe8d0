"""A table missing from TABLES (tests/conftest.py) would keep its rows from test to test."""

import sms_sender.models  # noqa: F401  (registers every table on the metadata)
from sms_sender.db import Base
from tests.conftest import TABLES


def test_every_table_of_the_metadata_is_cleaned_between_tests() -> None:
    assert sorted(TABLES) == sorted(Base.metadata.tables)
