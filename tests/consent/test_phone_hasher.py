"""The suppression list's phone hash must stay HMAC-SHA256 hex: stored entries are matched by it."""

import hmac

from sms_sender.consent.rules import PhoneHasher


def test_a_phone_hashes_to_its_hmac_sha256_hex_one_by_one_and_in_a_batch() -> None:
    hasher = PhoneHasher(b"the key")
    phones = ["79001234567", "79161234567", "79001234567"]
    expected = [hmac.new(b"the key", phone.encode(), "sha256").hexdigest() for phone in phones]
    assert [hasher(phone) for phone in phones] == expected
    assert hasher.many(phones) == expected
    assert hasher.many([]) == []
    assert PhoneHasher(b"another key")(phones[0]) != expected[0]
