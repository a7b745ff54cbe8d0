"""sms-sender: SMS mailings that start on time, stop at their end and never repeat a message."""

__version__ = "0.1.0"
