import pytest

from sms_sender.messages.encoding import Encoding, sms_size


@pytest.mark.parametrize(
    ("text", "length", "encoding", "segments"),
    [
        ("a" * 160, 160, Encoding.GSM_7, 1),
        ("a" * 161, 161, Encoding.GSM_7, 2),
        ("a" * 306, 306, Encoding.GSM_7, 2),
        ("a" * 307, 307, Encoding.GSM_7, 3),
        ("€" * 80, 160, Encoding.GSM_7, 1),  # extension chars cost two units
        ("€" * 81, 162, Encoding.GSM_7, 2),
        ("a" * 159 + "[", 161, Encoding.GSM_7, 2),
        ("я" * 70, 70, Encoding.UCS_2, 1),
        ("я" * 71, 71, Encoding.UCS_2, 2),
        ("я" * 134, 134, Encoding.UCS_2, 2),
        ("я" * 135, 135, Encoding.UCS_2, 3),
        ("hi 😀", 5, Encoding.UCS_2, 1),  # an emoji is a surrogate pair: two UCS-2 units
    ],
)
def test_sms_size(text: str, length: int, encoding: Encoding, segments: int) -> None:
    size = sms_size(text)
    assert (size.length, size.encoding, size.segments) == (length, encoding, segments)
