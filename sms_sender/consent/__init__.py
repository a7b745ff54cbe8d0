"""Consent to advertising and opt-out: who may receive what, and the proof of it.

The rules (README "Consent and opt-out"):

* An advertising mailing goes only to clients with consent (``consent_at``) and no opt-out.
* A service mailing goes to every matching client who has not opted out: an opt-out stops
  every message, service ones included (the person asked to stop; no exception to explain).
* Of consent and opt-out the later wins: an opt-out is ended only by a consent given after it.
* Excluded clients get a ``skipped`` report whose ``error`` names the reason, in the same
  statement that makes the mailing's other reports (:func:`rules.exclusion_reason`).
* An opt-out also writes a suppression entry, a keyed hash of the phone (never the phone), so
  a deleted client who asked to stop is not brought back by a later import.
* Every change is an audit entry (:class:`models.ConsentEvent`), readable per client.
"""
