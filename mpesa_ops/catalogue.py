"""The one catalogue of every code mpesa-ops knows, and what to do about each.

M-Pesa result codes, Daraja API errors, the gateway's API errors, webhook delivery
failure classes, webhook signature verdicts and the two conditions detection raises
itself (payments left "pending", a "volume_drop"), each with its family, who acts and a
troubleshooting guide. Pages, alerts and exports take their words from here; nothing
else in the product should describe a code. Sources: ``shared/spec/codes.md`` and the
gateway's ``shared/seed/error-codes.txt``. Codes are grouped by the code, never by the
description text; an unknown code is kept with its raw value in the "other" family.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from decimal import Decimal
from functools import lru_cache

from mpesa_ops.signatures import VERDICTS

__all__ = [
    "FAMILIES",
    "WHO",
    "KINDS",
    "Guide",
    "CodeInfo",
    "normalise_code",
    "lookup",
    "all_codes",
    "is_pending",
    "family_of",
]

FAMILIES: tuple[str, ...] = (
    "success",
    "pending",
    "customer",
    "merchant configuration",
    "M-Pesa system",
    "gateway authentication",
    "gateway validation",
    "gateway system",
    "webhook",
    "other",
)
WHO: tuple[str, ...] = ("support", "finance", "engineering", "customer", "Safaricom", "gateway")
KINDS: tuple[str, ...] = ("result", "daraja", "gateway", "webhook", "detector", "unknown")


@dataclass(frozen=True)
class Guide:
    title: str
    meaning: str
    causes: tuple[str, ...]
    check_first: tuple[str, ...]
    who_acts: tuple[str, ...]
    tell_customer: str | None
    retry: str

    @property
    def steps(self) -> list[str]:
        """What to check first, in order, then the retry advice (alerts' ``guide.steps``)."""
        return [*self.check_first, self.retry]

    def as_dict(self) -> dict:
        return {
            "title": self.title,
            "meaning": self.meaning,
            "causes": list(self.causes),
            "check_first": list(self.check_first),
            "who_acts": list(self.who_acts),
            "tell_customer": self.tell_customer,
            "retry": self.retry,
            "steps": self.steps,
        }


@dataclass(frozen=True)
class CodeInfo:
    code: str
    kind: str
    family: str
    category: str
    title: str
    http_status: int | None
    is_failure: bool
    known: bool
    guide: Guide

    def as_dict(self) -> dict:
        return {
            "code": self.code,
            "kind": self.kind,
            "family": self.family,
            "category": self.category,
            "title": self.title,
            "http_status": self.http_status,
            "is_failure": self.is_failure,
            "known": self.known,
            "guide": self.guide.as_dict(),
        }


# --------------------------------------------------------------------------------------
# Words shared by several entries
# --------------------------------------------------------------------------------------

_NOTHING_TAKEN = "Nothing was taken from your M-Pesa."
_OUR_SIDE = (
    "We could not send the M-Pesa request because of a technical problem on our side. "
    "Nothing was taken from your M-Pesa. Please try again a little later or pay another way."
)
_PAID_NOT_CONFIRMED = (
    "If you received an M-Pesa confirmation SMS, your payment went through; our system has "
    "not recorded it yet. Please do not pay again: we will confirm your order shortly."
)
_SPIKE = (
    "Compare with the same hour on other days and with other shortcodes: a spike across many "
    "customers at once is an incident, not a customer problem."
)
_PROMPT_LIMITS = (
    "Measure the prompt text: AccountReference at most 12 characters and TransactionDesc at "
    "most 13; the whole prompt (business name + reference + description + amount) must stay "
    "under 182 characters."
)
_PRODUCT_SETUP = (
    "Check TransactionType against the shortcode's product: CustomerPayBillOnline for a "
    "paybill, CustomerBuyGoodsOnline for a till (Buy Goods).",
    "Check PartyB: for a paybill it equals BusinessShortCode; for a till, PartyB is the till "
    "number and BusinessShortCode is the store (head office) number the passkey belongs to.",
    "Ask the gateway which product (paybill or till) this shortcode is registered for and "
    "whether M-Pesa Express is enabled on it.",
)

# --------------------------------------------------------------------------------------
# The table. One row per code (500.001.1001 has one row per message variant).
# Row: (code, kind, family, category, title, http_status, is_failure,
#       meaning, causes, check_first, who_acts, tell_customer, retry)
# --------------------------------------------------------------------------------------

_VERDICTS = frozenset(VERDICTS)  # the signature checks' verdicts, named where they are made

_CANCEL_CAUSES = (
    "The customer changed their mind or pressed Cancel by mistake.",
    "The amount or business name on the prompt looked wrong or unfamiliar.",
)
_CANCEL_TELL = ("You cancelled the M-Pesa prompt, so nothing was taken. If you would still like to pay, "
                "we can send the prompt again.")
_CANCEL_RETRY = "Only retry when the customer asks; never auto-retry a cancellation."

_ROWS: tuple[tuple, ...] = (
    # ---------------------------------------------------------------- M-Pesa result codes
    (
        "0", "result", "success", "success", "Success", None, False,
        "M-Pesa processed the payment: the money has moved from the customer to the merchant "
        "and the callback carries the M-Pesa receipt number.",
        ("The customer entered the right PIN and had enough balance.",),
        (
            "Match the MpesaReceiptNumber to the order and fulfil it once: a second callback or "
            "status query for the same CheckoutRequestID must not fulfil it again.",
            "Keep the receipt number, amount and TransactionDate (Nairobi time, UTC+3) for "
            "reconciliation; the Balance item is often empty and is not needed.",
        ),
        ("finance",),
        "Your payment was received. The receipt number is in your M-Pesa confirmation SMS.",
        "Never retry: the payment is complete and a new push would charge the customer twice.",
    ),
    (
        "1", "result", "customer", "customer funds", "Insufficient funds", None, True,
        "The customer's M-Pesa balance (with Fuliza, where they have it) was not enough for "
        "this amount, so M-Pesa declined the payment and charged nothing.",
        (
            "The customer's balance is lower than the amount.",
            "The amount sent was higher than the customer expected (a wrong total or quantity).",
        ),
        (
            "Confirm the amount in the request is the amount the customer expected to pay.",
            "Inform the customer about the balance and suggest alternative payment methods "
            "(top up and pay again, another M-Pesa number, card or bank).",
        ),
        ("support", "customer"),
        "M-Pesa says your balance was not enough for this payment, so nothing was taken. "
        "Please top up your M-Pesa and we can send the request again, or you can pay another way.",
        "Do not auto-retry; send a new request only when the customer says they have topped up.",
    ),
    (
        "2", "result", "customer", "amount limits", "Amount below minimum", None, True,
        "M-Pesa refused the amount as below the minimum for a transaction (KES 1); the customer "
        "was not charged. Filed with the customer's amount limits, but code 2 is almost always "
        "the merchant's own amount bug.",
        (
            "The checkout sent 0, a negative or a fractional amount (a discount, rounding or "
            "currency-conversion bug).",
            "The amount field was empty or sent in the wrong unit.",
        ),
        (
            "Look at the amount in the request log for this payment.",
            "Engineering: validate amounts as whole KES between 1 and 250,000 before sending the "
            "push, and find the code path that produced this amount.",
        ),
        ("engineering", "support"),
        "The amount we sent to your phone was not valid, so nothing was taken. We are correcting "
        "it and will send you a new request.",
        "Retry only with a corrected amount; the same amount will fail again.",
    ),
    (
        "3", "result", "customer", "amount limits", "Amount above maximum", None, True,
        "M-Pesa refused the amount as above the per-payment maximum (KES 250,000). The gateway "
        "accepts up to 300,000, so amounts from 250,001 to 300,000 pass the gateway and fail "
        "here. Filed under customer (a genuine large purchase); when the amount is wrong it is "
        "the merchant's bug.",
        (
            "A genuine purchase larger than M-Pesa's per-payment limit.",
            "An amount bug: cents sent as shillings, a quantity multiplied twice.",
        ),
        (
            "Compare the amount with KES 250,000 and with the order total.",
            "For a genuine large payment, split it into payments of at most KES 250,000 or offer "
            "bank transfer; for a wrong amount, engineering fixes the checkout.",
            "Engineering: cap STK amounts at 250,000 before the push (the gateway's 300,000 limit "
            "is not M-Pesa's).",
        ),
        ("support", "customer", "engineering"),
        "M-Pesa does not allow a single payment this large (the limit is KES 250,000), so "
        "nothing was taken. We can split it into smaller payments, or you can pay by bank transfer.",
        "Do not retry the same amount; split it into smaller payments or correct it.",
    ),
    (
        "4", "result", "customer", "amount limits", "Over the daily limit", None, True,
        "The payment would take the customer over their M-Pesa daily transaction limit set by "
        "Safaricom, so it was declined and nothing was charged.",
        (
            "The customer already moved a lot of money through M-Pesa today.",
            "A very large payment on top of the day's other transactions.",
        ),
        (
            "Check the amount is right (a wrong, inflated amount also triggers the limit).",
            "Offer the customer another way to pay, part-payment now, or paying tomorrow.",
        ),
        ("support", "customer"),
        "This payment would take you over your M-Pesa daily limit, so nothing was taken. You can "
        "pay tomorrow, pay part now, or use another way to pay.",
        "Do not retry the same amount today; the limit resets the next day.",
    ),
    (
        "8", "result", "customer", "amount limits", "Over the maximum balance", None, True,
        "M-Pesa declined the payment because an account involved would go over its maximum "
        "allowed balance or account limit. Rare for customer payments; nothing was charged.",
        (
            "An account limit on the M-Pesa account involved.",
            "A wrong, far too large amount.",
        ),
        (
            "Check the amount is right.",
            "Ask the customer to try a smaller amount or another way to pay; if many customers "
            "get code 8 at once, raise it with the gateway and Safaricom (the merchant account "
            "may be the one at its limit).",
        ),
        ("support", "customer", "Safaricom"),
        "M-Pesa refused this payment because of a limit on the account, so nothing was taken. "
        "Please try a smaller amount or another way to pay.",
        "Do not retry the same amount; try a smaller amount or another payment method.",
    ),
    (
        "11", "result", "customer", "customer account", "Debit party in an invalid state", None, True,
        "The customer's M-Pesa account cannot be debited right now: it is inactive, suspended, "
        "frozen, not fully registered, or the number is not an M-Pesa account.",
        (
            "A wrong phone number (someone else's line, or a line without M-Pesa).",
            "The customer's M-Pesa account is dormant, suspended or awaiting registration.",
        ),
        (
            "Read the number back to the customer and confirm it is their M-Pesa number.",
            "Ask for another M-Pesa number, or ask the customer to call Safaricom (100) about the "
            "account.",
        ),
        ("support", "customer", "Safaricom"),
        "M-Pesa could not take payment from this number because of the state of the M-Pesa "
        "account, so nothing was taken. Please check the number or use another M-Pesa number; "
        "Safaricom customer care (100) can tell you what is wrong with the account.",
        "Do not retry the same number; retry with another number or after Safaricom fixes the account.",
    ),
    (
        "17", "result", "merchant configuration", "merchant throttling", "Rule limited", None, True,
        "M-Pesa blocked the request under its rules, usually the duplicate rule: the same "
        "amount to the same customer within about 2 minutes (seed: transaction blocked by "
        "M-Pesa rules). Nothing was charged by this request.",
        (
            "The customer pressed Pay twice, or the checkout submitted twice.",
            "An automatic retry sent the same amount again too soon.",
            "A first push for the same amount already went through or is still open.",
        ),
        (
            "Before sending again, check whether an earlier push for the same number and amount "
            "succeeded in the last few minutes: the customer may already have paid.",
            "Engineering: disable the pay button after the first tap and space retries of the "
            "same amount to the same number at least 2 minutes apart.",
        ),
        ("engineering", "support"),
        "M-Pesa blocked a repeat request for the same amount. Please check your messages: if you "
        "received an M-Pesa confirmation you have already paid. Otherwise we can send the "
        "request again in two minutes.",
        "Wait at least 2 minutes before re-pushing the same amount to the same number, and only "
        "after checking the earlier one did not succeed.",
    ),
    (
        "26", "result", "M-Pesa system", "M-Pesa system", "System busy", None, True,
        "M-Pesa was overloaded and rejected the request before it reached the customer's phone.",
        ("Load on M-Pesa's side (peak hours, month end, an incident).",),
        (
            _SPIKE,
            "Check the gateway's and Safaricom's status channels for an announced incident.",
        ),
        ("engineering", "gateway", "Safaricom"),
        "M-Pesa is busy right now and did not send the request to your phone. " + _NOTHING_TAKEN
        + " Please try again in a few minutes.",
        "Retry later with backoff (for example 30 s, then 2 min, then 5 min); do not hammer M-Pesa during a spike.",
    ),
    (
        "1001", "result", "customer", "customer busy", "Subscriber locked", None, True,
        "M-Pesa could not lock the customer's account because another M-Pesa session or "
        "transaction was already in progress on that line ('Unable to lock subscriber, a "
        "transaction is already in process for the current subscriber').",
        (
            "Another prompt was open on the phone: our earlier push, or another merchant's.",
            "The customer was using the M-Pesa menu or another USSD session at the same time.",
            "Our own retry or a double tap sent a second push within seconds.",
        ),
        (
            "Check whether we sent another push to this number in the last minute (a retry loop "
            "or a double tap).",
            "Ask the customer to close any open M-Pesa prompt or menu on the phone.",
        ),
        ("customer", "support", "engineering"),
        "Your phone already had another M-Pesa request open, so ours could not go through and "
        "nothing was taken. Please close any M-Pesa prompt or menu, wait a minute, and we will "
        "send the request again.",
        "Retry once after at least 60 seconds; never loop.",
    ),
    (
        "1019", "result", "customer", "timeout", "Transaction expired", None, True,
        "The request expired before it was completed, so M-Pesa closed it and charged nothing. "
        "One CheckoutRequestID has been seen to get 1019 and then a second callback with 1037.",
        (
            "The customer did not complete the prompt in time.",
            "The prompt reached the phone late (network delay).",
        ),
        (
            "Check that no later callback or status query for the same CheckoutRequestID reported "
            "another result: the latest one decides the state.",
            "Ask the customer to start the payment again.",
        ),
        ("customer", "support"),
        "The payment request on your phone expired before it was completed, so nothing was "
        "taken. Please start the payment again and enter your PIN as soon as the prompt appears.",
        "The customer starts again; a new push may be sent straight away.",
    ),
    (
        "1025", "result", "merchant configuration", "merchant config",
        "Error sending the push (prompt too long or M-Pesa error)", None, True,
        "M-Pesa hit an error while sending the prompt to the phone (seed: M-Pesa system error or "
        "USSD message too long). Most often the prompt text is over 182 characters; sometimes it "
        "is a passing M-Pesa system error. Filed under merchant configuration because the usual "
        "cause is the merchant's own text.",
        (
            "AccountReference or TransactionDesc too long, making the prompt exceed 182 characters.",
            "A long registered business name on the shortcode.",
            "A transient error on M-Pesa's USSD/SIM toolkit side.",
        ),
        (
            "If the 1025s come from one shortcode or product: " + _PROMPT_LIMITS,
            "If 1025 appears across many shortcodes at once with short texts, treat it as an "
            "M-Pesa system incident (like 9999) and check the gateway's status.",
        ),
        ("engineering", "gateway", "Safaricom"),
        "M-Pesa could not send the request to your phone, so nothing was taken. We will send it "
        "again shortly.",
        "Retry once after shortening the reference and description; if it still fails with short "
        "texts, back off as for a system error.",
    ),
    (
        "1031", "result", "customer", "customer cancelled", "Request cancelled by user", None, True,
        "The customer cancelled or dismissed the M-Pesa prompt, so nothing was charged "
        "(same meaning as 1032).",
        _CANCEL_CAUSES,
        (
            "Check the amount and business name shown on the prompt were right; a spike of "
            "cancellations often means the prompt shows an unexpected name or amount.",
            "Give a clear cancellation message and offer to send the prompt again.",
        ),
        ("support", "customer"),
        _CANCEL_TELL,
        _CANCEL_RETRY,
    ),
    (
        "1032", "result", "customer", "customer cancelled", "User cancelled", None, True,
        "The customer pressed Cancel on the M-Pesa prompt (or dismissed it), so nothing was "
        "charged. Texts vary: 'Request cancelled by user', 'Request Cancelled by user.', "
        "'[STK_CB - ]Request cancelled by user'.",
        _CANCEL_CAUSES,
        (
            "Check the amount and business name shown on the prompt were right; a spike of "
            "cancellations often means the prompt shows an unexpected name or amount.",
            "Provide a clear cancellation message and allow the customer to retry.",
        ),
        ("support", "customer"),
        _CANCEL_TELL,
        _CANCEL_RETRY,
    ),
    (
        "1036", "result", "customer", "customer device", "SMSC acknowledgement timeout (old SIM)", None, True,
        "The prompt could not be delivered because the phone did not acknowledge it in time; "
        "typical of old SIM cards that do not handle the M-Pesa prompt properly.",
        (
            "An old SIM card.",
            "A phone or dual-SIM set-up that blocks SIM toolkit prompts.",
        ),
        (
            "Ask whether any prompt appeared on the phone.",
            "Ask the customer to upgrade the SIM (dial *234# or visit a Safaricom shop) and, "
            "meanwhile, to pay through the M-Pesa menu with the paybill or till number.",
        ),
        ("customer", "support", "Safaricom"),
        "Your phone did not show the M-Pesa prompt, which usually means the SIM card is old. You "
        "can upgrade it by dialling *234# or at a Safaricom shop; meanwhile you can pay from the "
        "M-Pesa menu using our paybill or till number. " + _NOTHING_TAKEN,
        "One retry is fine; if it fails again the customer needs a SIM upgrade or another way to pay.",
    ),
    (
        "1037", "result", "customer", "customer timeout", "DS timeout / user unreachable", None, True,
        "M-Pesa could not reach the phone, or the customer did not answer the prompt in time "
        "(seed: user did not respond to STK Push). Nothing was charged. Texts vary: 'DS timeout.', "
        "'DS timeout user cannot be reached', 'No response from user.'.",
        (
            "The phone was off, out of network or locked, so the prompt was not seen.",
            "The customer was slow to enter the PIN.",
            "Recurring for one number: an old SIM (see 1036).",
        ),
        (
            "Confirm the number is right and that the phone is on, unlocked and has network.",
            "If it recurs for the same number, suggest a SIM upgrade (*234#). " + _SPIKE,
        ),
        ("customer", "support"),
        "The M-Pesa prompt timed out before we got a response, so nothing was taken. Please keep "
        "your phone on and unlocked and we will send the prompt again; enter your PIN as soon as "
        "it appears.",
        "Retry with a reasonable wait (not within a minute of the last push) once the customer is "
        "ready; set clear timeout expectations in the checkout.",
    ),
    *((
        code, "result", "merchant configuration", "merchant config", "Prompt text too long", None, True,
        "M-Pesa refused to send the prompt because its text is too long.",
        (
            "A long business name, AccountReference or TransactionDesc.",
        ),
        (
            _PROMPT_LIMITS,
            "Shorten the business name or reference in the checkout; a long registered business "
            "name is changed through the gateway or Safaricom.",
        ),
        ("engineering", "gateway"),
        _OUR_SIDE,
        "Do not retry until the text is shortened; the same request will fail again.",
    
    ) for code in ("1101", "1102")),  # one meaning, two codes
    (
        "2001", "result", "customer", "customer PIN", "Wrong PIN", None, True,
        "The customer entered the wrong M-Pesa PIN on the prompt, so nothing was charged. In STK "
        "callbacks the text often reads 'The initiator information is invalid.': in STK Push it "
        "means the customer's PIN.",
        (
            "A mistyped or forgotten PIN.",
            "Someone other than the account holder answered the prompt.",
        ),
        (
            "Tell the customer the PIN was wrong and offer to send the prompt again.",
            "After repeated wrong PINs stop: the PIN locks (code 8006) and only Safaricom can unlock it.",
        ),
        ("customer", "support"),
        "The M-Pesa PIN entered was not correct, so nothing was taken. We can send the prompt "
        "again; please enter your M-Pesa PIN carefully, because too many wrong PINs will lock it.",
        "Retry at the customer's request; stop after two or three wrong PINs.",
    ),
    (
        "2026", "result", "M-Pesa system", "M-Pesa system", "Channel session expired", None, True,
        "The M-Pesa channel session used to deliver the prompt expired before the transaction "
        "completed; a transient M-Pesa-side condition. Nothing was charged.",
        ("A session timeout on M-Pesa's side, often under load.",),
        (
            _SPIKE,
            "Check whether the customer's phone showed the prompt at all.",
        ),
        ("support", "customer", "Safaricom"),
        "The M-Pesa session expired before the payment finished, so nothing was taken. We will "
        "send the request again.",
        "Retry once straight away; back off if many customers see it.",
    ),
    (
        "2028", "result", "merchant configuration", "merchant config",
        "Not permitted by product assignment", None, True,
        "The request is not allowed for this shortcode's product: usually a till (Buy Goods) "
        "used with CustomerPayBillOnline, a paybill used with CustomerBuyGoodsOnline, or a PartyB "
        "that does not match the shortcode's set-up.",
        (
            "Wrong TransactionType for the shortcode.",
            "Wrong PartyB (till vs store number).",
            "M-Pesa Express not enabled for this shortcode.",
        ),
        _PRODUCT_SETUP,
        ("engineering", "gateway", "Safaricom"),
        _OUR_SIDE,
        "Do not retry until the set-up is fixed; every request will fail the same way.",
    ),
    (
        "4999", "result", "pending", "pending", "Still being processed", None, False,
        "A status query answered that the transaction is still being processed (status query "
        "only). It is pending, not failed.",
        (
            "The customer has not finished the prompt yet.",
            "M-Pesa has not finished processing the payment.",
        ),
        (
            "Keep polling the status (for example every 30 s) and wait for the callback.",
            "Make 'no result after N minutes' visible and escalate only then.",
        ),
        ("engineering",),
        "Your payment is still being processed by M-Pesa. Please do not pay again: we will "
        "confirm as soon as M-Pesa does.",
        "Do not send a new push; query the status again until a final result arrives.",
    ),
    (
        "8006", "result", "customer", "customer PIN", "Security credential locked", None, True,
        "The customer's M-Pesa PIN is locked, usually after too many wrong PINs, so M-Pesa "
        "cannot take the payment.",
        ("Repeated wrong PIN attempts (see 2001).",),
        (
            "Tell the customer the PIN is locked and that only Safaricom can unlock it.",
            "Offer another way to pay in the meantime.",
        ),
        ("customer", "Safaricom", "support"),
        "Your M-Pesa PIN is locked, so M-Pesa cannot take the payment and nothing was taken. "
        "Please call Safaricom on 100 or visit a Safaricom shop to unlock it, or pay another way.",
        "Do not retry until the customer has unlocked the PIN with Safaricom.",
    ),
    (
        "9999", "result", "M-Pesa system", "M-Pesa system", "General M-Pesa system error", None, True,
        "A general M-Pesa system error; M-Pesa did not complete the request.",
        ("An error or incident inside M-Pesa.",),
        (
            _SPIKE,
            "Check the gateway's and Safaricom's status channels; confirm with a status query "
            "that the payment really failed before pushing again.",
        ),
        ("engineering", "gateway", "Safaricom"),
        "M-Pesa had a system error and the payment did not go through, so nothing was taken. "
        "Please try again in a few minutes.",
        "Retry later with backoff; a spike is an incident to raise with the gateway and Safaricom.",
    ),
    (
        "SFC_IC0003", "result", "merchant configuration", "merchant config", "Operator does not exist", None, True,
        "M-Pesa could not find the receiving party for this request: BusinessShortCode, PartyB "
        "and TransactionType do not match a valid set-up (same fix as 2028).",
        (
            "Wrong PartyB or BusinessShortCode, or a till/paybill mix-up.",
            "The shortcode is not set up for M-Pesa Express in this environment.",
        ),
        _PRODUCT_SETUP,
        ("engineering", "gateway", "Safaricom"),
        _OUR_SIDE,
        "Do not retry until the set-up is fixed; every request will fail the same way.",
    ),
    # ---------------------------------------------------------------- Daraja API errors
    (
        "400.002.02", "daraja", "gateway validation", "invalid field", "Invalid field", 400, True,
        "Daraja refused the request because one field is invalid; the message names it, e.g. "
        "'Bad Request - Invalid PhoneNumber', 'Invalid CallBackURL', 'Invalid Amount', "
        "'Invalid BusinessShortCode', 'Invalid Timestamp'. No prompt was sent.",
        (
            "PhoneNumber or PartyA not in 2547XXXXXXXX / 2541XXXXXXXX form.",
            "Amount not a whole number of at least 1.",
            "CallBackURL not a public HTTPS URL (localhost, private IP, expired tunnel).",
            "Timestamp not YYYYMMDDHHMMSS or not the one used to build the Password.",
        ),
        (
            "Read the errorMessage: it names the field.",
            "Fix that field: phone 254XXXXXXXXX (12 digits), whole-number amount >= 1, a public "
            "HTTPS CallBackURL, Timestamp YYYYMMDDHHMMSS in Nairobi time.",
        ),
        ("engineering", "gateway"),
        _OUR_SIDE,
        "Do not retry unchanged; fix the named field first.",
    ),
    (
        "400.002.05", "daraja", "gateway validation", "invalid payload", "Invalid request payload", 400, True,
        "Daraja could not read the request body: malformed JSON, a wrong Content-Type, or "
        "missing required fields. No prompt was sent.",
        (
            "Body not valid JSON (trailing comma, single quotes, string concatenation bug).",
            "Content-Type not application/json.",
            "A required field missing or of the wrong type.",
        ),
        (
            "Log the exact body sent and validate it as JSON.",
            "Send Content-Type: application/json with every field Daraja requires.",
        ),
        ("engineering", "gateway"),
        _OUR_SIDE,
        "Do not retry unchanged; fix the body first.",
    ),
    (
        "404.001.03", "daraja", "gateway authentication", "access token", "Invalid access token", 404, True,
        "The OAuth access token in 'Authorization: Bearer …' is invalid or expired (tokens live "
        "3600 s). No prompt was sent.",
        (
            "The token expired and was not refreshed.",
            "A sandbox token used against production, or the other way round.",
            "The token was cut or mangled (spaces, quotes).",
        ),
        (
            "Check when the token was issued: refresh it before expiry (cache it with a margin).",
            "Check the token and the API call use the same environment (sandbox vs production).",
        ),
        ("engineering", "gateway"),
        _OUR_SIDE,
        "Retry once with a fresh token; if it persists the consumer key/secret or environment is wrong.",
    ),
    (
        "404.001.04", "daraja", "gateway authentication", "authentication header",
        "Invalid authentication header", 404, True,
        "The Authorization header is missing or malformed, so Daraja did not accept the call. "
        "No prompt was sent.",
        (
            "No 'Authorization: Bearer <token>' header on the API call.",
            "Basic used on the API call, or a wrong Basic base64(consumer_key:consumer_secret) on the token call.",
        ),
        (
            "Print the Authorization header sent (without the secret part) and check its scheme and format.",
            "Check that a proxy or HTTP client is not dropping the header.",
        ),
        ("engineering", "gateway"),
        _OUR_SIDE,
        "Do not retry until the header is fixed.",
    ),
    (
        "500.001.1001", "daraja", "M-Pesa system", "M-Pesa system", "Daraja error 500.001.1001", 500, True,
        "Daraja's catch-all error; its message tells which case. Known messages: 'Merchant does "
        "not exist', 'Wrong credentials', 'Unable to lock subscriber', and 'The transaction is "
        "being processed' (the last means still pending, not failed).",
        (
            "See the message: configuration, credentials, a busy customer or a pending payment.",
        ),
        (
            "Read errorMessage and handle it as the matching case.",
            "If this was a status query, query again before treating the payment as failed.",
        ),
        ("engineering", "gateway"),
        None,
        "Retry a status query after 30 s; do not re-push until the message is understood.",
    ),
    (
        "500.003.01", "daraja", "M-Pesa system", "M-Pesa system", "Daraja internal error", 500, True,
        "Daraja had an internal server error while handling the call.",
        ("An error or incident on Safaricom's API platform.",),
        (
            _SPIKE,
            "If it was an initiation, query the status before pushing again: the push may have gone out.",
        ),
        ("engineering", "gateway", "Safaricom"),
        "M-Pesa had a system error, so nothing was taken. Please try again in a few minutes.",
        "Retry with backoff (30 s, 2 min, 5 min).",
    ),
    (
        "500.003.02", "daraja", "M-Pesa system", "rate limit", "System busy / spike arrest", 500, True,
        "Daraja refused the call because the system is busy or the calls came faster than the "
        "allowed rate (spike arrest).",
        (
            "Too many calls per second: a retry loop, aggressive status polling, a batch job.",
            "Load on Safaricom's side.",
        ),
        (
            "Check our own call rate: status polls per transaction, retry loops, parallel workers.",
            "Spread calls out and poll less often (every 30 s or more).",
        ),
        ("engineering", "gateway"),
        "M-Pesa is busy right now, so nothing was taken. Please try again in a few minutes.",
        "Back off with jitter (at least several seconds) and lower the call rate.",
    ),
    (
        "500.003.03", "daraja", "merchant configuration", "API quota", "Quota violation", 500, True,
        "The Daraja app has used up its allowed number of calls for the period. Filed under "
        "merchant configuration: the quota belongs to the app's set-up.",
        (
            "Heavy status polling or retries using up the quota.",
            "The app's quota too small for the real volume.",
        ),
        (
            "Count calls per hour and find what uses them (polling, retries).",
            "Ask the gateway (or Safaricom) to raise the quota if the volume is genuine.",
        ),
        ("engineering", "gateway", "Safaricom"),
        _OUR_SIDE,
        "Retry after the quota period resets; cut unnecessary calls first.",
    ),
    # ---------------------------------------------------------------- Gateway API errors
    (
        "MISSING_HEADERS", "gateway", "gateway authentication", "authentication", "Missing headers", 401, True,
        "Required headers (apikey, linkid) not provided: the gateway refused the call and no "
        "STK Push went out.",
        (
            "The client sends only one of the two headers, or under another name ('api-key', 'X-API-Key').",
            "A proxy or HTTP client drops custom headers.",
        ),
        (
            "Include both apikey and linkid headers on every call.",
            "Print the headers actually sent (mask the key) and check a proxy is not stripping them.",
        ),
        ("engineering",),
        _OUR_SIDE,
        "Do not retry until the headers are sent; every call will fail the same way.",
    ),
    (
        "INVALID_API_KEY", "gateway", "gateway authentication", "authentication", "Invalid API key", 401, True,
        "API key not found or invalid: the gateway did not recognise the apikey header, so no "
        "STK Push went out.",
        (
            "The key was regenerated or revoked in the dashboard and the server still has the old one.",
            "A test key used on live, a key from another account, or a copy-paste error "
            "(spaces, a trailing newline).",
        ),
        (
            "Check API key from dashboard: compare its first and last characters with the one configured.",
            "Check for whitespace or quotes around the configured value.",
        ),
        ("engineering", "gateway"),
        _OUR_SIDE,
        "Do not retry until the key is corrected; then retry the failed requests.",
    ),
    (
        "INVALID_LINK_ID", "gateway", "gateway authentication", "authentication", "Invalid link ID", 401, True,
        "Shortcode tracking code not found or invalid: the linkid header does not match a "
        "shortcode on this gateway account.",
        (
            "The link ID belongs to another shortcode or account.",
            "A typo, or the shortcode was removed from the account.",
        ),
        (
            "Verify tracking code is correct: compare it with the shortcode's link ID in the dashboard.",
            "Check the link ID and API key belong to the same account.",
        ),
        ("engineering", "gateway"),
        _OUR_SIDE,
        "Do not retry until the link ID is corrected.",
    ),
    (
        "INACTIVE_SHORTCODE", "gateway", "gateway authentication", "authentication", "Inactive shortcode", 401, True,
        "Shortcode has been deactivated on the gateway: no STK Push can go out for it, so "
        "M-Pesa collection is stopped until it is reactivated.",
        (
            "The shortcode was suspended (billing, compliance) or deactivated by mistake.",
            "The shortcode was replaced and the old one is still configured.",
        ),
        (
            "Check the shortcode's status in the gateway dashboard.",
            "Finance: check the gateway account is paid up; then contact the gateway to reactivate.",
        ),
        ("finance", "gateway", "support"),
        "We are having a problem taking M-Pesa payments right now. Nothing was taken from your "
        "M-Pesa. Please try again later or pay another way.",
        "Do not retry until the gateway confirms the shortcode is active again.",
    ),
    (
        "VALIDATION_ERROR", "gateway", "gateway validation", "validation", "Validation error", 422, True,
        "Request parameters failed validation: the gateway refused the request and no STK Push "
        "went out.",
        (
            "A required parameter missing or of the wrong type.",
            "A checkout change that altered the request shape.",
        ),
        (
            "Read the error message: it names the parameter.",
            "Compare the request with the gateway's API reference (field names, types).",
        ),
        ("engineering",),
        _OUR_SIDE,
        "Do not retry unchanged; fix the parameter first.",
    ),
    (
        "INVALID_MSISDN", "gateway", "gateway validation", "validation", "Invalid phone number", 422, True,
        "Phone number format invalid (must be 254XXXXXXXXX): no STK Push went out.",
        (
            "A number in 07…, 01…, +254… form or with spaces that was not normalised.",
            "Too few or too many digits (a typo).",
        ),
        (
            "Normalise before sending: 07XXXXXXXX / 01XXXXXXXX / +254… become 254XXXXXXXXX (12 digits).",
            "Read the number back to the customer.",
        ),
        ("engineering", "support", "customer"),
        "The phone number we have for you does not look right. Please confirm your M-Pesa "
        "number (it starts with 07 or 01) and we will send the request again.",
        "Retry as soon as the number is corrected.",
    ),
    (
        "INVALID_AMOUNT", "gateway", "gateway validation", "validation", "Invalid amount", 422, True,
        "Amount must be between 1 and 300,000: no STK Push went out. Note that M-Pesa's own "
        "limit per payment is 250,000 (result code 3).",
        (
            "0, negative, fractional or empty amount (a discount or rounding bug).",
            "A very large order.",
        ),
        (
            "Check the amount in the request against the order total.",
            "Engineering: send whole KES between 1 and 250,000.",
        ),
        ("engineering", "support"),
        "The amount could not be sent to M-Pesa, so nothing was taken. We are checking it and "
        "will send a corrected request.",
        "Retry only with a corrected amount.",
    ),
    (
        "INVALID_CALLBACK", "gateway", "gateway validation", "validation", "Invalid callback URL", 422, True,
        "Callback URL invalid or not accessible: the gateway refused the request because it "
        "could not use the callback URL.",
        (
            "Not a public HTTPS URL (localhost, private IP, an expired tunnel URL).",
            "DNS or TLS problem on the callback host.",
        ),
        (
            "Open the callback URL from outside your network; it must resolve, use HTTPS with a "
            "valid certificate and answer HTTP 200.",
            "Check the configured URL for typos and environment mix-ups (staging vs live).",
        ),
        ("engineering",),
        _OUR_SIDE,
        "Do not retry until the URL is reachable.",
    ),
    (
        "INTERNAL_ERROR", "gateway", "gateway system", "system", "Gateway internal error", 500, True,
        "Internal system error occurred at the gateway; it may or may not have sent the push.",
        ("An error or incident at the gateway.",),
        (
            "Before retrying, check the transaction's status (or wait for the callback): the push "
            "may have gone out.",
            "Check the gateway's status page; " + _SPIKE[0].lower() + _SPIKE[1:],
        ),
        ("gateway", "engineering"),
        _OUR_SIDE,
        "Retry with backoff only after confirming no push went out for this payment.",
    ),
    (
        "STK_PUSH_FAILED", "gateway", "gateway system", "system", "STK Push initiation failed", 500, True,
        "M-Pesa STK Push initiation failed: the gateway's call to M-Pesa (Daraja) did not "
        "succeed, so no prompt reached the customer.",
        (
            "A Daraja error behind the gateway (see the underlying errorCode if the message carries one).",
            "Shortcode set-up or credentials on the gateway's side.",
        ),
        (
            "Read the error message for an underlying Daraja code (e.g. 500.001.1001, 400.002.02) "
            "and follow that code's guide.",
            _SPIKE,
        ),
        ("gateway", "engineering"),
        _OUR_SIDE,
        "Retry once after 30 s; repeated failures go to the gateway.",
    ),
    (
        "MPESA_UNAVAILABLE", "gateway", "gateway system", "system", "M-Pesa unavailable", 500, True,
        "M-Pesa services temporarily unavailable: the gateway could not reach M-Pesa, so no "
        "push went out.",
        (
            "Safaricom maintenance (often at night) or an M-Pesa outage.",
        ),
        (
            "Check the gateway's and Safaricom's announcements for maintenance or an outage.",
            "Tell customers M-Pesa is down and when to try again; offer another way to pay.",
        ),
        ("gateway", "Safaricom", "support"),
        "M-Pesa is temporarily unavailable, so nothing was taken. Please try again in a little "
        "while or pay another way.",
        "Retry after M-Pesa is back, with backoff (2 min, 5 min, 10 min).",
    ),
    (
        "TIMEOUT_ERROR", "gateway", "gateway system", "system", "Gateway timeout", 500, True,
        "Request timeout or processing delay: the gateway did not get an answer in time. The "
        "push may still have reached the customer.",
        (
            "Slow M-Pesa or gateway responses under load.",
        ),
        (
            "Do not re-push blindly: wait for the callback or query the status first, or the "
            "customer may be charged twice.",
            _SPIKE,
        ),
        ("gateway", "engineering"),
        "Your payment request took longer than expected. If an M-Pesa prompt appears, you can "
        "complete it; please do not pay twice, we will confirm the result.",
        "Retry only after a status query shows no payment for this request.",
    ),
    # ---------------------------------------------------------------- webhook delivery failures
    (
        "timeout", "webhook", "webhook", "delivery", "Webhook timed out", None, True,
        "The merchant's endpoint did not answer within the gateway's timeout. The gateway "
        "retries; the event is not lost yet, but the order is not updated until one attempt succeeds.",
        (
            "The handler does slow work (fulfilment, emails, other APIs) before answering.",
            "The server or its database is overloaded or locked.",
        ),
        (
            "Check latency_ms of recent deliveries and the endpoint's server logs.",
            "Answer HTTP 200 as soon as the raw body is stored and verified; do the rest in the background.",
        ),
        ("engineering",),
        _PAID_NOT_CONFIRMED,
        "The gateway retries by itself; make the handler idempotent on event_id so a late retry is not processed twice.",
    ),
    (
        "connection_error", "webhook", "webhook", "delivery", "Webhook connection failed", None, True,
        "The gateway could not connect to the endpoint: DNS failed, or the connection was refused or reset.",
        (
            "The server or application is down, or listening on another port.",
            "DNS for the host is wrong or expired.",
            "A firewall blocks the gateway's IP addresses.",
        ),
        (
            "Open the webhook URL from outside your network (curl -X POST) and check it connects.",
            "Check DNS, that the app is running, and that the firewall allows the gateway's IPs.",
        ),
        ("engineering",),
        _PAID_NOT_CONFIRMED,
        "The gateway retries by itself; after fixing, ask the gateway to redeliver failed events.",
    ),
    (
        "tls_error", "webhook", "webhook", "delivery", "Webhook TLS error", None, True,
        "The TLS handshake with the endpoint failed, so nothing was delivered.",
        (
            "An expired or self-signed certificate.",
            "An incomplete certificate chain (intermediate missing).",
            "A hostname that does not match the certificate, or only old TLS versions enabled.",
        ),
        (
            "Check the certificate from outside (expiry, full chain, hostname), e.g. openssl s_client -connect host:443 -servername host.",
            "Renew or fix the certificate and set up automatic renewal.",
        ),
        ("engineering",),
        _PAID_NOT_CONFIRMED,
        "The gateway retries by itself; after fixing, ask the gateway to redeliver failed events.",
    ),
    (
        "invalid_signature", "webhook", "webhook", "signature", "Webhook refused: invalid signature", None, True,
        "The merchant's endpoint refused the delivery because its own check of the HMAC-SHA256 "
        "signature failed (typically a 401 or 403). The event arrived; the receiver rejected it.",
        (
            "The HMAC was computed over re-serialised JSON instead of the raw body.",
            "A wrong or old secret (after a rotation), or the secret decoded the wrong way.",
            "Hex compared with base64, or a 'sha256='/'v1,' prefix not stripped.",
            "The timestamp outside the receiver's tolerance (clock skew).",
        ),
        (
            "Check signature generation logic: run `mpesa-ops verify` on a refused delivery to get the exact verdict.",
            "Verify secret key is correct (the current one, decoded the way the scheme says).",
            "Ensure raw payload is used for HMAC: the exact bytes received, before any JSON parsing.",
        ),
        ("engineering",),
        _PAID_NOT_CONFIRMED,
        "Retries fail the same way until the receiver's check is fixed; then ask the gateway to redeliver.",
    ),
    (
        "http_error", "webhook", "webhook", "delivery", "Webhook HTTP error", None, True,
        "The endpoint answered with a non-2xx HTTP status (other than a signature refusal), so "
        "the gateway counts the delivery as failed.",
        (
            "404: wrong path; 405: the route does not accept POST.",
            "301/302: a redirect (http to https, a trailing slash) the sender does not follow.",
            "403 from a firewall or bot protection; 5xx: the handler crashed.",
        ),
        (
            "Read status_code and response_body of the failed deliveries.",
            "Configure the final URL (no redirects) and make the handler return HTTP 200 once it has stored the event.",
        ),
        ("engineering",),
        _PAID_NOT_CONFIRMED,
        "The gateway retries by itself; a 4xx will keep failing until fixed, then ask for redelivery.",
    ),
    (
        "not_received", "webhook", "webhook", "delivery", "Webhook not received", None, True,
        "The merchant reports that no webhook arrived for a payment.",
        (
            "No webhook URL set for this shortcode/link ID, or a wrong one.",
            "Deliveries are being sent but fail (timeout, connection, TLS, HTTP error).",
            "The endpoint received it but the application dropped it.",
        ),
        (
            "Check webhook URL is accessible from the internet, and that it is the one configured for this shortcode.",
            "Ensure HTTPS for production.",
            "Verify endpoint returns HTTP 200; then look in the delivery log for this event's attempts and their error class.",
        ),
        ("engineering", "gateway", "support"),
        _PAID_NOT_CONFIRMED,
        "Once the endpoint works, ask the gateway to redeliver the missed events; reconcile meanwhile from the transaction log.",
    ),
    # ---------------------------------------------------------------- signature verdicts
    (
        "valid", "webhook", "webhook", "signature verdict", "Signature valid", None, False,
        "The signature matches an HMAC-SHA256 of what was signed with one of the secrets given (and the "
        "timestamp, when one was sent, is within tolerance).",
        ("The sender and receiver agree on secret, body bytes and encoding.",),
        (
            "If the endpoint still refused this delivery, its own check differs from the reference: "
            "compare its code step by step with `mpesa-ops verify`.",
        ),
        ("engineering",),
        None,
        "Nothing to retry for the signature; if the endpoint refused it, fix its check and ask for redelivery.",
    ),
    (
        "missing_signature", "webhook", "webhook", "signature verdict", "Signature missing", None, True,
        "The delivery carries no signature header (X-Signature, webhook-signature, "
        "Stripe-Signature or X-Hub-Signature-256), so it cannot be verified.",
        (
            "A proxy or load balancer strips custom headers.",
            "The receiver reads the wrong header name (e.g. PHP/WSGI expose X-Signature as HTTP_X_SIGNATURE).",
            "Signing is not enabled for this endpoint at the gateway.",
        ),
        (
            "Look at the delivery log's headers: if the gateway sent the header, the receiver's proxy or framework loses it.",
            "If the gateway did not send it, enable signing for the endpoint at the gateway.",
            "Reject unsigned deliveries with 400 and do not process them.",
        ),
        ("engineering", "gateway"),
        None,
        "Retries fail the same way until the header reaches the receiver.",
    ),
    (
        "malformed_signature", "webhook", "webhook", "signature verdict", "Signature malformed", None, True,
        "The signature header is present but cannot be parsed: not hex or base64, the wrong "
        "length (HMAC-SHA256 is 32 bytes: 64 hex or 44 base64 characters), a missing or unknown "
        "scheme prefix ('sha256=', 'v1,', 't=…,v1='), or cut short.",
        (
            "The header was truncated or re-wrapped by a proxy or logger.",
            "Quotes, spaces or URL-encoding added around the value.",
            "The receiver parses the wrong scheme (Stripe vs Standard Webhooks vs plain hex).",
        ),
        (
            "Print the raw header value exactly as received and check its length and alphabet.",
            "Wrap verification in a catch-all: some libraries (standardwebhooks 1.1.0) raise "
            "ValueError/binascii.Error on a malformed header; answer 400, not 500.",
        ),
        ("engineering",),
        None,
        "Retries fail the same way until the header arrives intact.",
    ),
    (
        "timestamp_skew", "webhook", "webhook", "signature verdict", "Timestamp outside tolerance", None, True,
        "The HMAC matches, but the signed timestamp is outside the receiver's tolerance (commonly "
        "300 s), so the receiver treats it as a possible replay.",
        (
            "The receiver's or sender's clock is wrong (NTP off).",
            "Deliveries queued and verified late, or a retry reusing the first attempt's timestamp.",
            "Milliseconds read as seconds, or a timestamp parsed in the wrong time zone.",
        ),
        (
            "Compare the timestamp header with the delivery's sent_at and the receiver's clock.",
            "Enable NTP on the receiver; use Unix seconds; verify on arrival, not from a queue.",
        ),
        ("engineering",),
        None,
        "Redeliveries carry fresh timestamps; fix the clock, then ask for redelivery.",
    ),
    (
        "previous_secret", "webhook", "webhook", "signature verdict", "Signed with a rotated-out secret", None, True,
        "The signature matches the previous secret, the one rotated out: the rotation is half "
        "done, one side signs or verifies with the old secret and the other with the new.",
        (
            "The secret was rotated at the gateway but not in the receiver's configuration, or the other way round.",
            "A retry of an event first signed before the rotation.",
        ),
        (
            "Make sure the receiver and the gateway both use the new secret.",
            "During a rotation, accept either secret for a short window (verify against both), then drop the old one.",
        ),
        ("engineering", "gateway"),
        None,
        "After both sides use the same secret, ask for redelivery of the refused events.",
    ),
    (
        "secret_encoding", "webhook", "webhook", "signature verdict", "Secret decoded the wrong way", None, True,
        "The signature matches when the secret is decoded the other way: one side uses the "
        "secret's text as raw UTF-8 bytes, the other base64-decodes the part after 'whsec_'.",
        (
            "Standard Webhooks/Svix: key = base64-decode of the part after 'whsec_'.",
            "Stripe: key = the whole 'whsec_…' string as UTF-8; GitHub: the secret string as UTF-8.",
        ),
        (
            "Find which scheme the gateway uses and decode the secret the same way in the receiver.",
            "Use the scheme's own library where one exists rather than hand-rolled HMAC.",
        ),
        ("engineering",),
        None,
        "After fixing the key derivation, ask for redelivery of the refused events.",
    ),
    (
        "body_reserialized", "webhook", "webhook", "signature verdict", "Body re-serialised before HMAC", None, True,
        "The signature matches the body once parsed and re-serialised, not the exact bytes "
        "sent: the HMAC must be computed over the raw bytes. Re-serialising changes spacing, "
        "key order, escaping and numbers (M-Pesa's 1.00 becomes 1.0 or 1).",
        (
            "The framework parsed the JSON first (Express json(), Flask get_json, Django REST request.data, Laravel $request->all()).",
            "Code that calls json.dumps / JSON.stringify on the parsed body and signs that.",
        ),
        (
            "Read the raw body before any parsing (express.raw, Flask request.get_data(), Django request.body, PHP php://input) and HMAC those bytes.",
            "Check no middleware re-encodes the body (charset conversion, pretty-printing).",
        ),
        ("engineering",),
        None,
        "After switching to the raw body, ask for redelivery of the refused events.",
    ),
    (
        "encoding_mismatch", "webhook", "webhook", "signature verdict", "Signature encoding mismatch", None, True,
        "The HMAC bytes are right but written differently: hex vs base64, upper vs lower-case "
        "hex, or with vs without the 'sha256=' (or 'v1,') prefix.",
        (
            "Comparing hex text with base64 text.",
            "Upper-case hex compared as a string with lower-case hex.",
            "The scheme prefix not stripped before comparing.",
        ),
        (
            "Strip the prefix, decode both signatures to bytes and compare the bytes.",
            "Compare with a constant-time function (hmac.compare_digest, crypto.timingSafeEqual).",
        ),
        ("engineering",),
        None,
        "After fixing the comparison, ask for redelivery of the refused events.",
    ),
    (
        "wrong_secret", "webhook", "webhook", "signature verdict", "Wrong secret or altered body", None, True,
        "None of the known variants match: the receiver's secret differs from the gateway's, or "
        "the body was changed between the gateway and the HMAC check.",
        (
            "A copy-paste error, a trailing space or newline, a test vs live secret, another endpoint's secret.",
            "A proxy, firewall or framework altered the body (charset, compression, a trailing newline).",
        ),
        (
            "Copy the secret again from the gateway dashboard; compare length and first/last four characters on both sides.",
            "Compare the SHA-256 of the body in the delivery log with the SHA-256 of what the receiver hashed.",
        ),
        ("engineering", "gateway"),
        None,
        "Retries fail the same way until the secret or body path is fixed; then ask for redelivery.",
    ),
    # ---------------------------------------------------------------- raised by detection itself
    (
        "pending", "detector", "pending", "missing callbacks", "Payments left pending", None, False,
        "Payments are still pending well after their request (10 minutes by default, the "
        "detection setting pending_after_minutes): no callback and no final status arrived. Their money may or may not have "
        "moved; the result is unknown, not failed.",
        (
            "M-Pesa or the gateway is slow to send callbacks, or stopped sending them.",
            "Our callback URL is down, unreachable or refusing the callbacks (see the webhook alerts).",
            "The status queries that would close these payments are not running.",
        ),
        (
            "Check whether callbacks are reaching us at all: the webhook page's deliveries and "
            "errors for the same minutes.",
            "Run a status query for a few of the pending CheckoutRequestIDs: a final result there "
            "means callbacks are lost, not payments.",
            "Check the gateway's and Safaricom's status channels for delayed callbacks.",
        ),
        ("engineering", "gateway", "Safaricom"),
        _PAID_NOT_CONFIRMED,
        "Do not send a new push for a pending payment; query its status until a final result "
        "arrives, then fulfil or release the order.",
    ),
    (
        "volume_drop", "detector", "gateway system", "traffic", "Payments volume dropped", None, True,
        "Far fewer payments were requested in the last 30 minutes than at the same time on "
        "earlier days. An outage can look like silence: customers cannot pay, or our requests "
        "never reach the gateway.",
        (
            "Our checkout or the service that sends STK pushes is down or failing before the request.",
            "The gateway's API is unreachable or refusing every request (authentication, network).",
            "An M-Pesa outage making customers give up before paying.",
            "Our data feed stopped: payments happen but are not loaded into mpesa-ops.",
        ),
        (
            "Check that mpesa-ops is still receiving data: the last load's time and its errors.",
            "Make a small test payment through the checkout and watch where it stops.",
            "Check the gateway's and Safaricom's status channels, and our own application's logs "
            "and error rates for the same minutes.",
        ),
        ("engineering", "gateway", "Safaricom"),
        "We are having trouble taking M-Pesa payments right now. Please try again in a few "
        "minutes or pay another way.",
        "Nothing to retry automatically: find where requests stop, fix it, then ask customers to pay again.",
    ),
)

# Which message substring selects which 500.001.1001 variant (case-insensitive).
_DARAJA_1001 = "500.001.1001"
_VARIANT_ROWS: tuple[tuple[str, tuple], ...] = (
    (
        "merchant does not exist",
        (
            _DARAJA_1001, "daraja", "merchant configuration", "merchant config", "Merchant does not exist", 500, True,
            "Daraja does not know the BusinessShortCode in this environment, so no prompt was sent.",
            (
                "A production shortcode used against the sandbox, or the other way round.",
                "The shortcode is not yet live for M-Pesa Express on this Daraja app.",
                "A typo in BusinessShortCode.",
            ),
            (
                "Check BusinessShortCode and the environment (sandbox vs production) match.",
                "Ask the gateway/Safaricom whether M-Pesa Express is live for this shortcode on this app.",
            ),
            ("engineering", "gateway", "Safaricom"),
            _OUR_SIDE,
            "Do not retry until the shortcode set-up is fixed.",
        ),
    ),
    (
        "wrong credentials",
        (
            _DARAJA_1001, "daraja", "gateway authentication", "credentials", "Wrong credentials", 500, True,
            "The Password in the request is wrong (seen as '[MerchantValidate] - Wrong "
            "credentials'). It must be base64(BusinessShortCode + Passkey + Timestamp) with the "
            "same Timestamp sent in the request. No prompt was sent.",
            (
                "A passkey from another shortcode or from the sandbox.",
                "The Timestamp in the body differs from the one used to build the Password.",
                "For a till: the Password built with the till number instead of the store number.",
            ),
            (
                "Rebuild the Password from BusinessShortCode, the passkey issued for it, and the exact Timestamp sent.",
                "Check the passkey belongs to this shortcode and environment.",
            ),
            ("engineering", "gateway"),
            _OUR_SIDE,
            "Do not retry until the credentials are fixed; every request will fail the same way.",
        ),
    ),
    (
        "unable to lock subscriber",
        (
            _DARAJA_1001, "daraja", "customer", "customer busy", "Unable to lock subscriber", 500, True,
            "The customer already has an M-Pesa transaction in progress, so Daraja refused a new "
            "one (the same situation as result 1001). No prompt was sent.",
            (
                "Our earlier push, or another merchant's, is still open on the phone.",
                "A retry loop or double tap sending pushes seconds apart.",
            ),
            (
                "Check whether we sent another push to this number in the last minute.",
                "Ask the customer to close any open M-Pesa prompt or menu.",
            ),
            ("customer", "support", "engineering"),
            "Your phone already had another M-Pesa request open, so ours could not go through and "
            "nothing was taken. Please close any M-Pesa prompt, wait a minute, and we will send it again.",
            "Retry once after at least 60 seconds; never loop.",
        ),
    ),
    (
        "being processed",
        (
            _DARAJA_1001, "daraja", "pending", "pending", "Transaction being processed", 500, False,
            "An HTTP 500 that means 'still pending': 'The transaction is being processed'. The "
            "payment has not failed; its result is not known yet.",
            ("The customer has not finished the prompt, or M-Pesa is still processing.",),
            (
                "Keep the transaction pending; query again (for example every 30 s) and wait for the callback.",
                "Make 'no result after N minutes' visible and escalate only then.",
            ),
            ("engineering",),
            "Your payment is still being processed by M-Pesa. Please do not pay again: we will "
            "confirm as soon as M-Pesa does.",
            "Do not send a new push; query the status again until a final result arrives.",
        ),
    ),
)


def _label(code: str, kind: str, http_status: int | None) -> str:
    if kind == "result":
        return f"M-Pesa result {code}"
    if kind == "daraja":
        return f"Daraja {code}, HTTP {http_status}"
    if kind == "gateway":
        return f"gateway {code}, HTTP {http_status}"
    if kind == "webhook":
        return f"signature check {code}" if code in _VERDICTS else f"webhook {code}"
    if kind == "detector":
        return "an mpesa-ops detector"
    return code


def _build(row: tuple) -> CodeInfo:
    (code, kind, family, category, title, http, failure, meaning, causes, check, who, tell, retry) = row
    guide = Guide(
        title=f"{title} ({_label(code, kind, http)})",
        meaning=meaning,
        causes=tuple(causes),
        check_first=tuple(check),
        who_acts=tuple(who),
        tell_customer=tell,
        retry=retry,
    )
    return CodeInfo(code, kind, family, category, title, http, failure, True, guide)


_ENTRIES: tuple[CodeInfo, ...] = tuple(_build(r) for r in _ROWS)
_VARIANTS: tuple[tuple[str, CodeInfo], ...] = tuple((needle, _build(row)) for needle, row in _VARIANT_ROWS)
_INDEX: dict[str, CodeInfo] = {}
for _info in _ENTRIES:
    _key = _info.code.upper()
    if _key in _INDEX:  # pragma: no cover - a table error, caught at import
        raise RuntimeError(f"duplicate catalogue code {_info.code!r}")
    _INDEX[_key] = _info
del _info, _key

_INTEGRAL = re.compile(r"(\d+)\.0*")
_QUOTE_MAX = 80


def normalise_code(value) -> str | None:
    """A code as text: 1032, "1032", " 1032 ", 1032.0 and "1032.0" all give "1032".

    Daraja codes ("400.002.02") and non-numeric codes ("SFC_IC0003") are kept as they are
    (only surrounding spaces go). None, "" and blank give None, and so does a float NaN
    (a missing value from a data frame). A bool is not a code: it gives its text.
    """
    if value is None:
        return None
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return None
        if math.isfinite(value) and value.is_integer():
            return str(int(value))
        return str(value)
    if isinstance(value, Decimal):
        if value.is_nan():
            return None
        if value.is_finite() and value == value.to_integral_value():
            return str(int(value))
        return str(value)
    if isinstance(value, (bytes, bytearray)):
        text = bytes(value).decode("utf-8", "replace")
    elif isinstance(value, str):
        text = value
    else:
        if type(value).__name__ in ("NAType", "NaTType"):  # pandas missing values
            return None
        try:
            text = str(value)
        except Exception:
            text = object.__repr__(value)
    text = text.strip()
    if not text:
        return None
    m = _INTEGRAL.fullmatch(text)
    if m:
        return m.group(1)
    return text


def _text(message) -> str:
    if message is None:
        return ""
    if isinstance(message, str):
        return message
    try:
        return str(message)
    except Exception:
        return ""


@lru_cache(maxsize=1024)
def _unknown(code: str) -> CodeInfo:
    quoted = code if len(code) <= _QUOTE_MAX else code[: _QUOTE_MAX - 1] + "…"
    shown = f"'{quoted}'" if code else "(empty)"
    guide = Guide(
        title=f"Unknown code {shown}",
        meaning=f"The code {shown} is not in the catalogue, so the product cannot say what it "
        "means; it is kept with its raw value in the 'other' family.",
        causes=(
            "A code M-Pesa, Daraja or the gateway added or rarely sends.",
            "A malformed or mis-mapped field in the source data.",
        ),
        check_first=(
            "Read the description text that came with the code (ResultDesc / errorMessage).",
            "Look at how many transactions carry it and since when; a sudden spike is an incident.",
            "Engineering: find its meaning (Safaricom or gateway documentation) and add it to the catalogue.",
        ),
        who_acts=("engineering", "support"),
        tell_customer="We could not confirm this payment yet. Please do not pay again until we "
        "have checked; we will get back to you shortly.",
        retry="Do not auto-retry until the code is understood; confirm with a status query whether money moved.",
    )
    return CodeInfo(code, "unknown", "other", "unknown", f"Unknown code {shown}", None, True, False, guide)


def lookup(code, message: str | None = None) -> CodeInfo:
    """Everything the product knows about ``code`` (never raises).

    ``message`` only matters for Daraja 500.001.1001, whose meaning depends on it.
    Gateway and webhook codes match case-insensitively. An unknown code gives an entry of
    kind "unknown" in the "other" family that keeps the raw text.
    """
    try:
        text = normalise_code(code)
        if text is None:
            return _unknown("")
        info = _INDEX.get(text.upper())
        if info is None:
            return _unknown(text)
        if info.code == _DARAJA_1001 and message is not None:
            lowered = _text(message).lower()
            for needle, variant in _VARIANTS:
                if needle in lowered:
                    return variant
        return info
    except Exception:  # pragma: no cover - belt and braces: lookup must never raise
        try:
            return _unknown(str(code))
        except Exception:
            return _unknown("")


def all_codes() -> list[CodeInfo]:
    """Every entry, in catalogue order; the 500.001.1001 variants follow its generic entry."""
    out: list[CodeInfo] = []
    for info in _ENTRIES:
        out.append(info)
        if info.code == _DARAJA_1001:
            out.extend(v for _, v in _VARIANTS)
    return out


def is_pending(code, message: str | None = None) -> bool:
    """True for 4999 and for 500.001.1001 "The transaction is being processed"."""
    return lookup(code, message).family == "pending"


def family_of(code, message: str | None = None) -> str:
    return lookup(code, message).family
