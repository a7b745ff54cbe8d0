"""Every reason a service or a schema refuses a request, with its stable code and English text.

The API answers with the text and gives the code beside it (``code`` in problem+json and in
each field error); the console shows the text in the reader's language, found by the code in
``sms_sender.admin.i18n.ERROR_TEXTS`` (tests/admin/test_i18n.py fails on a reason without its
translation, or one whose translation names other ``{slots}``). A rule keeps its check where it
is (``service.py``, ``schemas.py``); only its words live here, so a translator sees them all.
"""

from __future__ import annotations

from sms_sender.errors import Reason

# --- mailings ------------------------------------------------------------------------------
MAILING_NOT_FOUND = Reason("mailing_not_found", "mailing {mailing_id} does not exist")
MAILING_DELETE_ACTIVE = Reason(
    "mailing_delete_active", "mailing {mailing_id} is {status}; cancel it first, then delete it"
)
MAILING_NOT_PAUSABLE = Reason(
    "mailing_not_pausable",
    "mailing {mailing_id} is {status}; only a running or scheduled mailing can be paused",
)
MAILING_NOT_RESUMABLE = Reason(
    "mailing_not_resumable",
    "mailing {mailing_id} is {status}; only a paused mailing can be resumed",
)
MAILING_NOT_CANCELLABLE = Reason(
    "mailing_not_cancellable",
    "mailing {mailing_id} is {status}; only a scheduled, running or paused mailing can be "
    "cancelled",
)
MAILING_RESUME_ENDED = Reason(
    "mailing_resume_ended",
    "mailing {mailing_id} ended at {end_at}; move end_at into the future (PATCH) before "
    "resuming it",
)
MAILING_RESEND_CANCELLED = Reason(
    "mailing_resend_cancelled",
    "mailing {mailing_id} is cancelled; nothing of it is sent any more",
)
MAILING_RESEND_ENDED = Reason(
    "mailing_resend_ended",
    "mailing {mailing_id} ended at {end_at}; nothing is sent after its end: move end_at into "
    "the future (PATCH) first",
)
MAILING_NOT_EDITABLE = Reason(
    "mailing_not_editable", "mailing {mailing_id} is {status}; it can no longer be edited"
)
MAILING_FIELD_FROZEN = Reason(
    "mailing_field_frozen",
    "{field} cannot change while mailing {mailing_id} is {status}: its reports are made from "
    "the start_at, message and filter it started with. Only end_at and send_window can "
    "change; to change {field}, cancel it and create a new mailing",
)
END_BEFORE_START = Reason(
    "end_before_start", "end_at ({end_at}) must be after start_at ({start_at})"
)
END_IN_PAST = Reason("end_in_past", "end_at ({end_at}) must be in the future (now: {now})")
MAILING_MESSAGE_MISSING = Reason(
    "mailing_message_missing",
    "message {message_id} does not exist; create it with POST /api/v1/messages",
)
MAILING_MESSAGE_UNSENDABLE = Reason(
    "mailing_message_unsendable",
    "message {message_id} cannot be sent by the configured provider: {problem}",
)
NOT_AN_INTEGER = Reason("not_an_integer", "must be an integer")
FILTER_OPERATOR_CODE = Reason(
    "filter_operator_code", "operator code must be 3 digits, e.g. 916; got {got}"
)
TIME_OF_DAY = Reason(
    "time_of_day", "time must be HH:MM between 00:00 and 23:59, e.g. 09:30; got {got}"
)
SEND_WINDOW_EMPTY = Reason(
    "send_window_empty",
    "send_window start and end must differ; omit send_window to send at any time",
)
NOT_NULL = Reason("not_null", "may not be null; leave the field out to keep its value")

# --- messages ------------------------------------------------------------------------------
MESSAGE_NOT_FOUND = Reason("message_not_found", "message {message_id} does not exist")
MESSAGE_IN_USE = Reason(
    "message_in_use",
    "message {message_id} is used by a mailing; delete the mailing first or keep it",
)
TEXT_WITH_NUL = Reason("text_with_nul", "text must not contain the NUL character (\\u0000)")

# --- clients and consent -------------------------------------------------------------------
CLIENT_NOT_FOUND = Reason("client_not_found", "client {client_id} does not exist")
PHONE_FORMAT = Reason(
    "phone_format",
    "must be 11 digits starting with 7, like 79001234567 (no +, spaces or dashes); got {got}",
)
OPERATOR_CODE_FORMAT = Reason("operator_code_format", "must be 3 digits, like 900; got {got}")
TIMEZONE_UNKNOWN = Reason(
    "timezone_unknown",
    "must be an IANA time zone name, like Europe/Moscow or UTC (names are case-sensitive); "
    "got {got}",
)
TAG_CONTROL_CHARACTER = Reason(
    "tag_control_character", "must not contain control characters; got {got}"
)
CONSENT_WITHOUT_SOURCE = Reason(
    "consent_without_source",
    "consent_source is required with consent_at: say where the person agreed",
)
SOURCE_WITHOUT_CONSENT = Reason(
    "source_without_consent", "consent_source needs consent_at: when did the person agree?"
)
CLIENT_FIELD_NOT_NULL = Reason(
    "client_field_not_null", "{field} cannot be null; leave it out to keep it as it is"
)
CONSENT_IN_FUTURE = Reason(
    "consent_in_future",
    "consent_at ({consent_at}) is in the future (now: {now}); give the time the person agreed",
)

# --- datetimes -----------------------------------------------------------------------------
DATETIME_NOT_TEXT = Reason(
    "datetime_not_text", "datetime must be an ISO 8601 string, e.g. 2026-12-01T09:00:00+03:00"
)
DATETIME_OUT_OF_RANGE = Reason("datetime_out_of_range", "datetime is out of range")

# --- reports -------------------------------------------------------------------------------
REPORT_NOT_FOUND = Reason("report_not_found", "report {report_id} does not exist")

# --- who may do what -----------------------------------------------------------------------
CSRF_MISSING = Reason(
    "csrf_missing",
    "the form's security token (CSRF) is missing or out of date; reload the page and submit it "
    "again",
)
ROLE_TOO_LOW = Reason(
    "role_too_low", "your role ({role}) may not do this; it needs {needed} - ask an admin"
)
SIGNED_OUT = Reason(
    "signed_out", "sign in to the console first; your session has ended or never began"
)
TOKEN_EXISTS = Reason("token_exists", "a token named {name!r} exists already; pick another name")
TOKEN_NOT_FOUND = Reason("token_not_found", "no active token named {name!r}")
TOKEN_NAME = Reason("token_name", "name the token (1-100 characters), e.g. crm-sync")
USER_NAME = Reason("user_name", "the name must be 1-{max_length} printable characters")
USER_PASSWORD = Reason("user_password", "the password must have at least {min_length} characters")
USER_EXISTS = Reason("user_exists", "a user named {name!r} exists already; pick another name")
USER_NOT_FOUND = Reason("user_not_found", "user {user_id} does not exist")
USER_ROLE = Reason("user_role", "choose a role: viewer, operator or admin")
USER_SELF_CHANGE = Reason(
    "user_self_change",
    "you cannot disable yourself or change your own role; ask another admin",
)

# --- stop lists and inbound replies ---------------------------------------------------------
STOP_LIST_MEDIA_TYPE = Reason(
    "stop_list_media_type", "send the stop list as text/csv, not {media_type}"
)
STOP_LIST_NO_MEDIA_TYPE = Reason(
    "stop_list_no_media_type", "send the stop list as text/csv; the body came without Content-Type"
)
STOP_LIST_HEADER = Reason("stop_list_header", "the first line must be the header phone; got {got}")
INBOUND_SECRET_MISSING = Reason(
    "inbound_secret_missing", "send the gateway's shared secret in the {header} header"
)
INBOUND_OFF = Reason(
    "inbound_off",
    "the inbound webhook is off: set SMS_SENDER_INBOUND_SECRET and give the gateway that value "
    "in the {header} header",
)
INBOUND_SECRET_WRONG = Reason(
    "inbound_secret_wrong", "the {header} header does not match the shared secret"
)

# --- console forms -------------------------------------------------------------------------
IMPORT_FILE_MISSING = Reason("import_file_missing", "choose a CSV file to import")
ZONE_UNKNOWN = Reason("zone_unknown", "unknown time zone {zone!r}; e.g. Europe/Moscow")
CONSENT_TIME_MISSING = Reason("consent_time_missing", "give the date and time the person agreed")
DATE_AND_TIME = Reason("date_and_time", "pick a date and a time")
CONSENT_SOURCE_MISSING = Reason("consent_source_missing", "say where or how the person agreed")
MESSAGE_NOT_CHOSEN = Reason("message_not_chosen", "choose the message to send")
MAILING_ACTION_UNKNOWN = Reason(
    "mailing_action_unknown", "unknown action {action!r}; use pause, resume or cancel"
)
USER_ACTION_UNKNOWN = Reason(
    "user_action_unknown", "unknown action {action!r}; use disable, enable or role"
)
PHONE_TAKEN = Reason(
    "phone_taken",
    "phone {phone} already belongs to client {owner}; change that client or pick another phone",
)
