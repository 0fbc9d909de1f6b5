"""PII and secret redaction: typed placeholders instead of the values, before anything is embedded,
promoted or exported (and, when `redaction.at_ingest` is set, before traces are stored at all).

Detection is Microsoft Presidio's analyzer (`presidio-analyzer`) with pattern recognisers only: its
`NoOpNlpEngine` loads no spaCy or transformers model, so nothing is downloaded, ever. Presidio's own
recognisers find emails, phone numbers (libphonenumber), payment cards (Luhn), IBANs (mod-97), IP
addresses and US SSNs; eval-loop adds card shapes, passport numbers and secrets (private keys, API keys,
JWTs, bearer tokens, passwords), and the context rules Presidio's context enhancer would need an NLP
model for (a bare number is a phone number after a phone word, an SSN after `SSN`, a passport number
after `passport`). The README's "Personal data and secrets" lists every kind, the IP rule and what stays
uncovered.

The recognisers read the NFKC form of the text (what the dedup step embeds), so fullwidth digits and
letters are found; each finding is replaced where it stands in the text as written. Redaction is
idempotent (no placeholder matches a recogniser, context rules skip numbers and placeholders alike,
and a finding that lost an overlap but reached beyond it is looked at again), and a text that holds a
JSON document (`input_messages`) is redacted inside its strings, keys naming a secret giving their
values context, and stays valid JSON.

`redact_text` does one text; `redact_frame` does columns of a Polars frame, running the analyzer once
per distinct value. Counts are keyed by placeholder kind (`email`, ..., `ssn`, `passport`, `api_key`,
`jwt`, `bearer_token`, `password`, `private_key`).
"""

from __future__ import annotations

import json
import re
import string
import sys
import threading
import unicodedata
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import polars as pl

from loop_assets.config import REDACTION_ENTITIES

ENTITIES = REDACTION_ENTITIES
SECRET_KINDS = ("private_key", "jwt", "api_key", "bearer_token", "password")
PLACEHOLDERS: dict[str, str] = {
    "email": "<EMAIL>",
    "phone": "<PHONE>",
    "card": "<CARD>",
    "iban": "<IBAN>",
    "ip": "<IP>",
    "ssn": "<SSN>",
    "passport": "<PASSPORT>",
    "date_of_birth": "<DATE_OF_BIRTH>",
    "api_key": "<API_KEY>",
    "jwt": "<JWT>",
    "bearer_token": "<BEARER_TOKEN>",
    "password": "<PASSWORD>",
    "private_key": "<PRIVATE_KEY>",
}
KINDS = tuple(PLACEHOLDERS)
# Regions whose national formats are recognised; numbers written with +country code are found for any country.
DEFAULT_PHONE_REGIONS = ("US", "GB", "DE", "FR", "ES", "IT", "NL", "IN", "BR", "AU", "JP")

# Presidio entity type -> our kind, and which of our entities enables it.
_PRESIDIO_KIND = {
    "EMAIL_ADDRESS": "email",
    "PHONE_NUMBER": "phone",
    "CREDIT_CARD": "card",
    "IBAN_CODE": "iban",
    "IP_ADDRESS": "ip",
    "API_KEY": "api_key",
    "JWT": "jwt",
    "BEARER_TOKEN": "bearer_token",
    "PASSWORD": "password",
    "PRIVATE_KEY": "private_key",
    "US_SSN": "ssn",
    "PASSPORT": "passport",
    "DATE_OF_BIRTH": "date_of_birth",
}
_ENTITY_OF_KIND = {**{k: k for k in ENTITIES if k != "secret"}, **{k: "secret" for k in SECRET_KINDS}}
# When two findings overlap, a secret wins (the earlier here first); otherwise the longer finding,
# then the earlier kind here.
_PRIORITY = (*SECRET_KINDS, "card", "iban", "ssn", "passport", "date_of_birth", "email", "ip", "phone")
# Results scoring below this are dropped: Presidio's bare IPv6 `::` (0.1) would eat Python slices.
_SCORE_THRESHOLD = 0.35
# A weak pattern result (Presidio's bare 9-digit SSN, a passport number) counts only after its context
# words, and then scores this. Presidio's own context enhancer needs the tokens of an NLP model.
_CONTEXT_SCORE = 0.6
_CONTEXT_CHARS = 80

# Cheap screen: a text none of the recognisers could fire on (no digit, no @ or :, no secret marker)
# skips the analyzer. A superset of every recogniser's trigger, so it never hides a finding.
_MAYBE = re.compile(
    r"[0-9@:]|bearer|pass|pwd|key|secret|token|eyJ|A(?:KIA|SIA|BIA|CCA|IDA|ROA|IPA|NPA|NVA|GPA)|gh[pousr]_"
    r"|github_pat_|xox|AIza|hf_|[sr]k[-_]|whsec|SG\.|-----BEGIN",
    re.IGNORECASE,
)

# A run that may hold a phone number: 7+ digits with the separators phone numbers use. Only these
# windows (with a little context either side) go to libphonenumber, which is the costly recogniser.
_PHONE_WINDOW = re.compile(r"(?:\+|\(|\b)\d[\d \t\u00a0().\-/]{5,}\d")
_PHONE_CONTEXT = 3

_MEMO_MAX_CHARS = 4_000
_MEMO_MAX_ENTRIES = 10_000

_SLICE_LIKE = re.compile(r"::[0-9A-Fa-f]{0,4}(?:/\d{1,3})?")


def _context_before(words: str, gap: int = 3) -> re.Pattern[str]:
    """Text that ends within `gap` words after one of `words` (a regex alternation).

    Only words of letters count toward the gap; digits, punctuation and placeholders (`<PHONE>`) do
    not, so a decision is the same before and after its neighbours are redacted (idempotence:
    `Mobile: +1 415 555 2671 Desk: 5403926876` on the first pass as on the second)."""
    filler = r"(?:[^A-Za-z<]|<[A-Z_]{2,}>|<)*"
    return re.compile(rf"\b(?:{words})[A-Za-z]*{filler}(?:[A-Za-z]+{filler}){{0,{gap}}}$", re.IGNORECASE)


_PHONE_CONTEXT_WORDS = _context_before(
    r"phone|tel|call|mobile|cell|number|num|no|fax|whats ?app|sms|text|contact|reach|dial|ring|landline|desk|office"
    r"|direct|telefon|t[ée]l[ée]phone|tel[ée]fono|handy|portable|m[óo]vil|celular"
)
# A number right after one of these (`invoice 2024-000123`, `order #4155550132`) is an identifier, not a phone
# number, unless a phone word comes within a few words before it or it is written with its +country code.
_ID_WORD_BEFORE = re.compile(
    r"\b(?:invoice|inv|order|ord|ref|reference|ticket|case|tracking|sku|serial|id|po|transaction|txn|receipt"
    r"|booking|confirmation|policy|claim|member|customer|account|acct|item|part|model|version|build|release|batch"
    r"|lot|job|run|request|req)(?:\W{1,3}(?:no|nr|number|num|id|ref|code))?\W{0,3}$",
    re.IGNORECASE,
)
_PART_OF_TOKEN_BEFORE = set("-_/#@&=.")
_PART_OF_TOKEN_AFTER = set("-_/@")


def _phone_span(text: str, start: int, end: int) -> tuple[int, int] | None:
    """The span of a libphonenumber match as a phone finding, or None when it is part of something else.

    An unbalanced bracket at either end is left out of the span. A number without `+` glued to an
    identifier (`ORD-2026-118734`, `id/4155550132`) is not a phone number; a label glued after it with a
    dash is fine (`540-392-6876-Office`). A bare run of digits without `+` (`epoch 1763290325`) counts only
    within a few words after a phone word (`call me on`, `tel`, ...), and a number right after an
    identifier word (`invoice 2024-000123`) only when a phone word comes first.
    """
    value = text[start:end]
    if value.startswith("(") and ")" not in value:
        start += 1
    if value.endswith(")") and "(" not in value:
        end -= 1
    before = text[start - 1] if start > 0 else ""
    after = text[end] if end < len(text) else ""
    following = text[end + 1] if end + 1 < len(text) else ""
    glued = before in _PART_OF_TOKEN_BEFORE and start > 1 and text[start - 2].isalnum()
    if glued and text[start] != "+":
        return None
    if after in _PART_OF_TOKEN_AFTER and following.isalnum() and not (after == "-" and following.isalpha()):
        return None
    if text[start] != "+":
        preceding = text[max(0, start - _CONTEXT_CHARS) : start]
        phone_word = _PHONE_CONTEXT_WORDS.search(preceding)
        if not phone_word and (text[start:end].isdigit() or _ID_WORD_BEFORE.search(preceding)):
            return None
    return start, end


_KEY_CHARS = r"[A-Za-z0-9_\-]"
# A value that looks like a secret rather than a word: a digit, a symbol, or a capital after a small letter
# (`CorrectHorseBatteryStaple`); so `password is wrong` and `token: expired` stay as they are.
_SECRETISH = r"(?=[^\s\"'<>,;]*(?:[0-9!#$%^&*@?~+=]|[a-z][A-Z]))"
# The value itself: 6+ characters up to a space or quote, a trailing `.`, `,`, `?` or `)` left out.
_VALUE = r"[^\s\"'<>,;`]{5,}[^\s\"'<>,;`.?)\]]"
_ASSIGN = r"[\"']?\s{0,3}(?:[:=]|\s(?:is|was|is now|now is|set to|changed to|reset to)\b)\s{0,3}[\"'`]?"
_SECRET_PATTERNS: dict[str, list[tuple[str, str, float]]] = {
    # (name, regex, score); matched with the `regex` module (variable-width look-behind), case-sensitive.
    "PRIVATE_KEY": [
        # a PEM/OpenSSH/PGP private key block, or its beginning when the end was cut off
        (
            "pem",
            r"-----BEGIN [A-Z0-9 ]{0,30}PRIVATE KEY(?: BLOCK)?-----"
            r"(?:.{0,20000}?-----END [A-Z0-9 ]{0,30}PRIVATE KEY(?: BLOCK)?-----|[A-Za-z0-9+/=\s\\:,\-]*)",
            0.95,
        ),
    ],
    "API_KEY": [
        ("openai_anthropic", rf"\bsk-(?:proj-|svcacct-|admin-|ant-)?(?=[A-Za-z_\-]*[0-9]){_KEY_CHARS}{{20,}}", 0.9),
        ("stripe", r"\b(?:[sr]k_(?:live|test)_[A-Za-z0-9]{16,}|whsec_[A-Za-z0-9+/=]{20,})", 0.9),
        ("aws_access_key", r"\b(?:AKIA|ASIA|ABIA|ACCA|AIDA|AROA|AIPA|ANPA|ANVA|AGPA)[A-Z0-9]{16}\b", 0.9),
        (
            "aws_secret_key",
            r"(?i)(?<=(?:aws_?secret_?access_?key|secret_?access_?key|aws_?secret_?key)[\"']?\s{0,3}[:=]\s{0,3}[\"']?)"
            r"[A-Za-z0-9/+]{40}(?![A-Za-z0-9/+])",
            0.9,
        ),
        # 40 base64 characters standing alone, with capitals, small letters and digits (an AWS secret key);
        # hex digests (one case only) and paths (4+ slashes) are not.
        (
            "aws_secret_key_alone",
            r"(?<![A-Za-z0-9/+=_\-.])(?<!(?i:bearer)\s{1,3})(?=[A-Za-z0-9/+]{0,39}[A-Z])(?=[A-Za-z0-9/+]{0,39}[a-z])"
            r"(?=[A-Za-z0-9/+]{0,39}[0-9])(?!(?:[A-Za-z0-9+]*/){4})"
            r"[A-Za-z0-9/+]{40}(?![A-Za-z0-9/+=_\-]|\.[A-Za-z0-9])",
            0.6,
        ),
        ("azure_key", r"(?<=\b(?:AccountKey|SharedAccessKey)\s{0,2}=\s{0,2})[A-Za-z0-9+/]{20,}={0,2}", 0.9),
        ("sendgrid", r"\bSG\.[A-Za-z0-9_\-]{16,32}\.[A-Za-z0-9_\-]{16,64}", 0.9),
        ("slack_webhook", r"(?<=hooks\.slack\.com/(?:services|workflows|triggers)/)[A-Za-z0-9/_\-]{20,}", 0.9),
        ("discord_webhook", r"(?<=discord(?:app)?\.com/api/webhooks/)[0-9]+/[A-Za-z0-9_\-]{20,}", 0.9),
        ("github", r"\b(?:gh[pousr]_[A-Za-z0-9]{30,255}|github_pat_[A-Za-z0-9_]{22,255})\b", 0.9),
        ("gitlab_npm_pypi", r"\b(?:glpat-[A-Za-z0-9_\-]{20,}|npm_[A-Za-z0-9]{36}|pypi-[A-Za-z0-9_\-]{50,})", 0.9),
        ("slack", r"\bxox[abposr]-[A-Za-z0-9\-]{10,}", 0.9),
        ("google", r"\bAIza[0-9A-Za-z_\-]{35}", 0.9),
        ("huggingface", r"\bhf_[A-Za-z0-9]{30,}\b", 0.9),
        (
            "other_providers",  # Twilio, Mailgun, Shopify, Telegram bot tokens
            r"\b(?:SK[0-9a-f]{32}|key-[0-9a-zA-Z]{32}|shp(?:at|ca|pa|ss)_[a-fA-F0-9]{32}|[0-9]{8,10}:AA[A-Za-z0-9_\-]{30,40})\b",
            0.9,
        ),
        ("azure_sas", r"(?<=[?&]sig=)[A-Za-z0-9%+/=]{16,}", 0.9),
        (
            "assignment",
            r"(?i)(?<=\b[A-Za-z0-9_\-]{0,30}?(?:api[_\-]?key|apikey|secret[_\-]?key|client[_\-]?secret|access[_\-]?token"
            r"|auth[_\-]?token|secret|token)[\"']?\s{0,3}[:=]\s{0,3}[\"']?)(?=[^\s\"'<>,;]*[0-9])[^\s\"'<>,;]{7,}"
            r"[^\s\"'<>,;.?)\]]",
            0.8,
        ),
        (
            "prose",
            r"(?i)(?<=\b(?:api[ _\-]?key|secret[ _\-]?key|client[ _\-]?secret)\s(?:is|was)\s{1,3}[\"'`]?)"
            r"(?=[^\s\"'<>,;]*[0-9])" + _VALUE,
            0.8,
        ),
    ],
    "JWT": [
        ("jwt", r"\beyJ[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-]*", 0.95),
    ],
    "BEARER_TOKEN": [
        ("bearer", r"(?i)(?<=\bbearer\s{1,3})[A-Za-z0-9\-._~+/]{7,}[A-Za-z0-9\-_~+/]=*", 0.85),
        (
            "prose",
            r"(?i)(?<=\b(?:bearer|access|auth|session|refresh|id)[ _\-]token" + _ASSIGN + r")(?-i:" + _SECRETISH + ")"
            r"[A-Za-z0-9\-._~+/]{7,}[A-Za-z0-9\-_~+/=]",
            0.8,
        ),
    ],
    "PASSWORD": [
        ("url_password", r"(?i)(?<=\b[a-z][a-z0-9+.\-]{1,20}://[^\s:/@<>]{1,200}:)[^\s@/<>]{1,200}(?=@)", 0.9),
        (
            # password=..., PGPASSWORD=..., DB_PASSWORD: ..., "my password is ...", "the passphrase was ..."
            "assignment_or_prose",
            r"(?i)(?<=\b[A-Za-z0-9_]{0,30}?(?:password|passwd|pwd|passphrase|passcode|pass ?word)" + _ASSIGN + ")"
            r"(?-i:" + _SECRETISH + ")" + _VALUE,
            0.8,
        ),
        # `pass: X`, `--password X`, `--pass=X`
        (
            "cli_or_pass",
            r"(?i)(?<=(?:\bpass[\"']?\s{0,3}[:=]|(?<!\S)--?(?:password|passwd|pass)[ =])\s{0,3}[\"']?)"
            r"(?-i:" + _SECRETISH + ")" + _VALUE,
            0.8,
        ),
        # the base64 user:password of HTTP basic authentication
        (
            "basic_auth",
            r"(?i)(?<=\bauthorization[\"']?\s{0,3}[:=]\s{0,3}[\"']?basic\s{1,3})[A-Za-z0-9+/]{6,}={0,2}",
            0.9,
        ),
    ],
}

# Patterns that run only where the text holds their trigger (see Triggered in Redactor._build); the others
# start with a fixed prefix and are cheap anywhere.
_SECRET_TRIGGERS = {
    "pem": r"-----BEGIN",
    "aws_secret_key": r"secret",
    "aws_secret_key_alone": r"[A-Za-z0-9/+]{40}",
    "azure_key": r"AccountKey|SharedAccessKey",
    "slack_webhook": r"hooks\.slack\.com",
    "discord_webhook": r"discord",
    "assignment": r"key|secret|token",
    "prose": r"key|secret|token",
    "bearer": r"bearer",
    "url_password": r"://",
    "assignment_or_prose": r"pass|pwd",
    "cli_or_pass": r"pass",
    "basic_auth": r"basic",
    "azure_sas": r"sig=",
}


def _secret_recogniser_groups() -> dict[str, dict[str | None, list[tuple[str, str, float]]]]:
    """Per entity, its patterns by trigger: one recogniser for the untriggered ones, one per triggered one."""
    groups: dict[str, dict[str | None, list[tuple[str, str, float]]]] = {}
    for entity, patterns in _SECRET_PATTERNS.items():
        for name, regex, score in patterns:
            group = name if name in _SECRET_TRIGGERS else None
            groups.setdefault(entity, {}).setdefault(group, []).append((name, regex, score))
    return groups


# Extra card patterns beside Presidio's own (all Luhn-checked): Mastercard 2-series (2221-2720), 17-19 digit
# numbers, Diners in its 4-6-4 grouping, 12-digit Maestro, 15-digit JCB, and numbers grouped with dots.
_CARD_PATTERNS = [
    ("mastercard_2_series", r"\b2(?:2[2-9]\d|[3-6]\d\d|7[01]\d|720)[- ]?\d{4}[- ]?\d{4}[- ]?\d{4}\b", 0.3),
    ("long_cards", r"\b[3-6]\d{3}[- ]?\d{4}[- ]?\d{4}[- ]?\d{4}[- ]?\d{1,3}\b", 0.3),
    ("diners_14", r"\b3(?:0[0-5]|[689]\d)\d[- ]?\d{6}[- ]?\d{4}\b", 0.3),
    ("maestro_12", r"\b(?:5018|5020|5038|5893|6304|6759|676[1-3])([- ]?)\d{4}\1\d{4}\b", 0.3),
    ("jcb_15", r"\b(?:2131|1800)(?:([- ]?)\d{6}\1\d{5}|([- ]?)\d{4}\2\d{4}\2\d{3})\b", 0.3),
    ("dotted_or_slashed", r"\b[2-6]\d{3}([./])\d{4,6}\1\d{4,5}(?:\1\d{1,4})?\b", 0.3),
]

# The IP rule. An address is redacted wherever it stands (`connect to 10.0.0.1`, `host=10.0.0.1`), except
# where it is not one: a dotted quad right after a version word (`firmware 1.2.3.4`, `version 10.0.0.1`),
# four numbers inside a longer dotted run (`1.3.6.1.4.1.311`), and `x::y` with decimal parts (`a[1::2]`).
_VERSION_WORD_BEFORE = re.compile(
    r"\b(?:v|ver|version|versions|firmware|fw|build|release|rel|driver|kernel|bios|patch|update|upgrade|python"
    r"|node|java|sdk|agent|package|pkg|app|ios|android|chrome|firefox|os)\W{0,3}(?:(?:is|was|to|from|of|at|on)"
    r"\W{1,3})?$",
    re.IGNORECASE,
)
_DECIMAL_SLICE = re.compile(r"\d{0,4}::\d{0,4}")


def _ip_kept(text: str, start: int, end: int) -> bool:
    value = text[start:end]
    if ":" in value:
        return not _DECIMAL_SLICE.fullmatch(value)
    if re.search(r"\d\.$", text[max(0, start - 2) : start]) or re.match(r"\.\d", text[end : end + 2]):
        return False
    return not _VERSION_WORD_BEFORE.search(text[max(0, start - 30) : start])


_SSN_CONTEXT = _context_before(r"ssn|ssns|ss#|ss\s*no|social\s+security|social\s+sec|itin|taxpayer\s+id")
_PASSPORT_WORDS = r"passport|passports|reisepass|passeport|pasaporte|passaporto"
_PASSPORT_CONTEXT = _context_before(_PASSPORT_WORDS, gap=2)
_PASSPORT_WORD = re.compile(rf"\b(?:{_PASSPORT_WORDS})", re.IGNORECASE)
# Passport numbers: Presidio's US shapes (9 digits, a letter and 8 digits), and 6-9 capitals and digits with
# a digit (most other countries), all weak: they count only after a passport word.
_PASSPORT_PATTERNS = [
    ("us_passport", r"\b[0-9]{9}\b", 0.05),
    ("us_passport_next_generation", r"\b[A-Z][0-9]{8}\b", 0.05),
    ("passport", r"\b(?=[A-Z0-9]{0,8}[0-9])[A-Z0-9]{6,9}\b", 0.05),
]
_DOB_WORDS = (
    r"dob|d\.o\.b|date\s+of\s+birth|birth\s*date|birthday|born|geburtsdatum|geboren|date\s+de\s+naissance"
    r"|fecha\s+de\s+nacimiento"
)
_DOB_CONTEXT = _context_before(_DOB_WORDS, gap=3)
_DOB_WORD = re.compile(rf"\b(?:{_DOB_WORDS})", re.IGNORECASE)
# Dates with month names, beside Presidio's numeric ones: `12 April 1990`, `April 12th, 1990`, `12-Apr-1990`.
_MONTH = r"(?:jan|feb|mar|apr|may|jun|jul|aug|sep|sept|oct|nov|dec)[a-z]*\.?"
_DATE_PATTERNS = [
    ("day_month_year", rf"(?i)\b\d{{1,2}}(?:st|nd|rd|th)?[\s\-/]+(?:of\s+)?{_MONTH}[\s\-/,]+\d{{2,4}}\b", 0.5),
    ("month_day_year", rf"(?i)\b{_MONTH}\s+\d{{1,2}}(?:st|nd|rd|th)?,?\s+\d{{4}}\b", 0.5),
    ("year_month_day_dots", r"\b\d{4}\.(?:0?[1-9]|1[0-2])\.(?:0?[1-9]|[12]\d|3[01])\b", 0.5),
]
_ASCII_UPPER = str.maketrans(string.ascii_lowercase, string.ascii_uppercase)
_IBAN_CANDIDATE = re.compile(r"(?<![A-Z0-9])[A-Z]{2}[0-9]{2}(?:[ -]?[A-Z0-9]){11,32}")


@dataclass(frozen=True)
class Finding:
    start: int
    end: int
    kind: str


def _import_presidio():
    """Import presidio_analyzer without dragging in torch and transformers when they are not loaded yet.

    Presidio's package imports its Hugging Face NLP engine, which imports transformers and torch
    (~4-8 s) though pattern recognisers never use them. Both imports are optional there (guarded by
    `except ImportError`), so while presidio is imported they are made unimportable, then restored:
    a later `import torch` (the embedding step) works as usual. Where they are already loaded,
    nothing is blocked.
    """
    blocked = [name for name in ("torch", "transformers") if name not in sys.modules]
    for name in blocked:
        sys.modules[name] = None  # type: ignore[assignment]
    try:
        import presidio_analyzer
        from presidio_analyzer import predefined_recognizers
    finally:
        for name in blocked:
            if sys.modules.get(name, 0) is None:
                del sys.modules[name]
    return presidio_analyzer, predefined_recognizers


class Redactor:
    """The analyzer for one set of entities and phone regions (build once: `redactor(...)`)."""

    def __init__(self, entities: Sequence[str] = ENTITIES, phone_regions: Sequence[str] = DEFAULT_PHONE_REGIONS):
        unknown = sorted(set(entities) - set(ENTITIES))
        if unknown:
            raise ValueError(f"unknown redaction entities {unknown}; known: {list(ENTITIES)}")
        self.entities = tuple(e for e in ENTITIES if e in entities)
        self.kinds = tuple(k for k in KINDS if _ENTITY_OF_KIND[k] in self.entities)
        self.phone_regions = tuple(phone_regions)
        self._engine = None
        self._lock = threading.Lock()
        self._memo: dict[str, tuple[str, tuple[tuple[str, int], ...]]] = {}

    # ------------------------------------------------------------------ presidio
    def _build(self):
        presidio, recognisers = _import_presidio()
        from presidio_analyzer.nlp_engine import NoOpNlpEngine

        Pattern, PatternRecognizer = presidio.Pattern, presidio.PatternRecognizer
        flags = re.DOTALL | re.MULTILINE

        class Email(recognisers.EmailRecognizer):
            # Presidio validates the domain against the public suffix list, which tldextract fetches
            # from the network; offline, any alphabetic top-level label counts (internal domains too).
            def validate_result(self, pattern_text: str) -> bool:
                domain = pattern_text.rsplit("@", 1)[-1]
                return bool(re.fullmatch(r"[^\W\d_]{2,}", domain.rsplit(".", 1)[-1]))

        class Phone(recognisers.PhoneRecognizer):
            # libphonenumber per region over the whole text is ~0.5 ms per region; over the few digit
            # runs that could be numbers (with context, for its letter-adjacency checks) it is cheap.
            # A window written with its +country code is the same number for every region: one is enough.
            def analyze(self, text, entities, nlp_artifacts=None):
                results = []
                for window in _PHONE_WINDOW.finditer(text):
                    if sum(c.isdigit() for c in window.group()) < 7:
                        continue
                    lo = max(0, window.start() - _PHONE_CONTEXT)
                    hi = min(len(text), window.end() + _PHONE_CONTEXT)
                    one = international if window.group().startswith("+") else self
                    for result in PhoneRecognizer.analyze(one, text[lo:hi], entities, nlp_artifacts):
                        span = _phone_span(text, result.start + lo, result.end + lo)
                        if span is not None:
                            result.start, result.end = span
                            # the engine keeps only results that name a recogniser of its registry
                            result.recognition_metadata[presidio.RecognizerResult.RECOGNIZER_IDENTIFIER_KEY] = self.id
                            results.append(result)
                return presidio.EntityRecognizer.remove_duplicates(results)

        class Ip(recognisers.IpRecognizer):
            # `::2` is a valid IPv6 address and a Python slice; one group after `::` is not redacted.
            def invalidate_result(self, pattern_text: str) -> bool:
                return bool(_SLICE_LIKE.fullmatch(pattern_text)) or bool(super().invalidate_result(pattern_text))

            def analyze(self, text, entities, nlp_artifacts=None, regex_flags=None):
                results = super().analyze(text, entities, nlp_artifacts, regex_flags)
                return [r for r in results if _ip_kept(text, r.start, r.end)]

        class Iban(recognisers.IbanRecognizer):
            # Presidio's IBAN pattern reads capitals and, where a 4-letter word follows (`BE34... FAIL`), runs
            # into it and fails the checksum. So the text is also read in capitals (`de89 3704 ...`), and each
            # candidate there not found yet is cut to its shortest prefix, at a group boundary, that passes
            # Presidio's own validation (it checks that the value begins in its country's format, so a shorter
            # prefix fails, and the mod-97 checksum).
            def analyze(self, text, entities, nlp_artifacts=None, regex_flags=None):
                results = super().analyze(text, entities, nlp_artifacts, regex_flags)
                for candidate in _IBAN_CANDIDATE.finditer(text.translate(_ASCII_UPPER)):
                    if any(r.start <= candidate.start() < r.end for r in results):
                        continue
                    value, start = candidate.group(), candidate.start()
                    for end in range(15, len(value) + 1):
                        after = text[start + end : start + end + 1]
                        boundary = value[end] in " -" if end < len(value) else not after.isalnum()
                        if boundary and value[end - 1] not in " -" and self.validate_result(value[:end]):
                            metadata = {
                                presidio.RecognizerResult.RECOGNIZER_NAME_KEY: self.name,
                                presidio.RecognizerResult.RECOGNIZER_IDENTIFIER_KEY: self.id,
                            }
                            results.append(
                                presidio.RecognizerResult(
                                    "IBAN_CODE", start, start + end, 1.0, recognition_metadata=metadata
                                )
                            )
                            break
                return results

        class Triggered(PatternRecognizer):
            # Look-behind patterns cost at every position of a text; these run only where the text holds
            # their `trigger` (a cheap search: `pass`, `token`, `AccountKey`, ...).
            def __init__(self, *args, trigger: str | None = None, **kwargs):
                super().__init__(*args, **kwargs)
                self.trigger = re.compile(trigger, re.IGNORECASE) if trigger else None

            def analyze(self, text, entities, nlp_artifacts=None, regex_flags=None):
                if self.trigger is not None and not self.trigger.search(text):
                    return []
                return super().analyze(text, entities, nlp_artifacts, regex_flags)

        def with_context(base: type, context: re.Pattern[str], trigger: re.Pattern[str] | None = None) -> type:
            """`base` whose weak results count when `context` words come just before them. With `trigger`
            (its context words), only results after context count, and a text without one is not read."""

            class ContextGated(base):
                def analyze(self, text, entities, nlp_artifacts=None, regex_flags=None):
                    if trigger is not None and not trigger.search(text):
                        return []
                    results = super().analyze(text, entities, nlp_artifacts, regex_flags)
                    for result in results:
                        before = text[max(0, result.start - _CONTEXT_CHARS) : result.start]
                        if (result.score < _SCORE_THRESHOLD or trigger is not None) and context.search(before):
                            result.score = max(result.score, _CONTEXT_SCORE)
                        elif trigger is not None:
                            result.score = 0.0
                    return results

            ContextGated.__name__ = base.__name__
            return ContextGated

        PhoneRecognizer = recognisers.PhoneRecognizer
        international = PhoneRecognizer(supported_regions=self.phone_regions[:1] or ("US",), leniency=1)
        card = recognisers.CreditCardRecognizer
        card_patterns = [*card.PATTERNS, *(Pattern(n, r, s) for n, r, s in _CARD_PATTERNS)]
        wanted: dict[str, list] = {
            "email": [Email()],
            "phone": [Phone(supported_regions=self.phone_regions, leniency=1)],
            "card": [card(patterns=card_patterns, replacement_pairs=[("-", ""), (" ", ""), (".", ""), ("/", "")])],
            "iban": [Iban()],
            "ip": [Ip()],
            "ssn": [with_context(recognisers.UsSsnRecognizer, _SSN_CONTEXT)()],
            "date_of_birth": [
                with_context(recognisers.DateRecognizer, _DOB_CONTEXT, _DOB_WORD)(
                    patterns=[*recognisers.DateRecognizer.PATTERNS, *(Pattern(n, r, s) for n, r, s in _DATE_PATTERNS)],
                    supported_entity="DATE_OF_BIRTH",
                )
            ],
            "passport": [
                with_context(PatternRecognizer, _PASSPORT_CONTEXT, _PASSPORT_WORD)(
                    supported_entity="PASSPORT",
                    name="eval_loop_passport",
                    patterns=[Pattern(name, regex, score) for name, regex, score in _PASSPORT_PATTERNS],
                )
            ],
            "secret": [
                Triggered(
                    supported_entity=entity,
                    name=f"eval_loop_{entity.lower()}" + (f"_{group}" if group else ""),
                    patterns=[Pattern(name, regex, score) for name, regex, score in patterns],
                    global_regex_flags=flags,
                    trigger=_SECRET_TRIGGERS.get(group),
                )
                for entity, groups in _secret_recogniser_groups().items()
                for group, patterns in groups.items()
            ],
        }
        registry = presidio.RecognizerRegistry(supported_languages=["en"])
        for entity in self.entities:
            for recogniser in wanted[entity]:
                registry.add_recognizer(recogniser)
        nlp = NoOpNlpEngine(models=[{"lang_code": "en", "model_name": "none"}])
        return presidio.AnalyzerEngine(
            registry=registry,
            nlp_engine=nlp,
            supported_languages=["en"],
            default_score_threshold=_SCORE_THRESHOLD,
        )

    @property
    def engine(self):
        if self._engine is None:
            with self._lock:
                if self._engine is None:
                    self._engine = self._build()
        return self._engine

    # ------------------------------------------------------------------ finding and replacing
    def find(self, text: str) -> list[Finding]:
        """Non-overlapping findings in `text`, in text order (see _PRIORITY for overlaps)."""
        return self._find(text)[0]

    def _find(self, text: str) -> tuple[list[Finding], bool]:
        """(findings, whether a finding dropped for an overlap reached beyond the ones kept).

        The recognisers read the NFKC form of the text (see _normalised); findings are spans of `text`."""
        if not self.entities or not text:
            return [], False
        view, origin = _normalised(text)
        if not _MAYBE.search(view):
            return [], False
        results = self.engine.analyze(text=view, language="en")
        found = [
            Finding(r.start, r.end, _PRESIDIO_KIND[r.entity_type])
            for r in results
            if r.entity_type in _PRESIDIO_KIND and r.end > r.start and _PRESIDIO_KIND[r.entity_type] in self.kinds
        ]
        if origin is not None:
            found = [Finding(origin[f.start], origin[f.end - 1] + 1, f.kind) for f in found]
        # Secrets first (by priority), then the longest finding (an IBAN over a card-like run inside it).
        rank = len(SECRET_KINDS)
        found.sort(
            key=lambda f: (min(_PRIORITY.index(f.kind), rank), f.start - f.end, _PRIORITY.index(f.kind), f.start)
        )
        chosen: list[Finding] = []
        residue = False
        for f in found:
            overlapping = [c for c in chosen if f.start < c.end and c.start < f.end]
            if not overlapping:
                chosen.append(f)
            elif f.start < min(c.start for c in overlapping) or f.end > max(c.end for c in overlapping):
                residue = True
        return sorted(chosen, key=lambda f: f.start), residue

    def redact_plain(self, text: str, counts: Counter | None = None) -> str:
        """Placeholders for every finding. When a finding lost an overlap but reached beyond the winner,
        the rest of it is looked at again, so redacting twice gives the same text as once.

        Results are remembered for short strings (a system prompt repeated in every trace's messages
        is analysed once)."""
        memo = self._memo.get(text)
        if memo is None:
            local: Counter = Counter()
            memo = (self._redact_plain(text, local), tuple(local.items()))
            if len(text) <= _MEMO_MAX_CHARS:
                if len(self._memo) >= _MEMO_MAX_ENTRIES:
                    self._memo.clear()
                self._memo[text] = memo
        if counts is not None:
            counts.update(dict(memo[1]))
        return memo[0]

    def _redact_plain(self, text: str, counts: Counter) -> str:
        for _ in range(4):
            findings, residue = self._find(text)
            parts, last = [], 0
            for f in findings:
                parts += [text[last : f.start], PLACEHOLDERS[f.kind]]
                last = f.end
                counts[f.kind] += 1
            text = "".join(parts) + text[last:]
            if not residue:
                break
        return text

    def redact(self, text: str, counts: Counter | None = None, json_aware: bool = True) -> str:
        """`text` redacted; a JSON document is redacted inside its strings and stays valid JSON."""
        if not text or (text.isascii() and not _MAYBE.search(text)):
            return text
        if json_aware:
            document = _json_document(text)
            if document is not None:
                return self._redact_json(text, document, counts)
        return self.redact_plain(text, counts)

    def _redact_json(self, text: str, document: Any, counts: Counter | None) -> str:
        local: Counter = Counter()
        redacted = self._walk(document, local)
        if not local:
            return text
        if counts is not None:
            counts.update(local)
        return _dumps_like(text, document, redacted)

    def _walk(self, value: Any, counts: Counter, key: str | None = None) -> Any:
        if isinstance(value, str):
            # {"password": "Sup3rSecret!"}: the value is a string of its own, so its key is its context
            kind = _secret_kind_of_key(key)
            if kind in self.kinds and _SECRET_VALUE.fullmatch(value):
                counts[kind] += 1
                return PLACEHOLDERS[kind]
            return self.redact_plain(value, counts)
        if isinstance(value, list):
            return [self._walk(v, counts) for v in value]
        if isinstance(value, dict):
            return {self.redact_plain(k, counts): self._walk(v, counts, k) for k, v in value.items()}
        return value


_SECRET_KEY_NAME = re.compile(
    r"[\w\-]*?(?:(?P<password>password|passwd|pwd|passphrase|passcode)|secret|token|api[_\-]?key|apikey"
    r"|access[_\-]?key|private[_\-]?key|credentials?)",
    re.IGNORECASE,
)
# a JSON value under such a key that looks like a secret (see _SECRETISH), not a placeholder
_SECRET_VALUE = re.compile(r"(?=.*(?:[0-9!#$%^&*@?~+=]|[a-z][A-Z]))\S{6,}", re.DOTALL)


def _secret_kind_of_key(key: str | None) -> str | None:
    """`password` or `api_key` for a JSON key that names a secret (`db_password`, `SecretAccessKey`), else None."""
    if key is None:
        return None
    named = _SECRET_KEY_NAME.fullmatch(key)
    if named is None:
        return None
    return "password" if named.group("password") else "api_key"


# Invisible format characters (zero-width space and joiners, soft hyphen, bidi controls, BOM): left out of
# what the recognisers read, so `4111\u200b1111 ...` is a card number too.
_INVISIBLE = re.compile("[\u00ad\u180e\u200b-\u200f\u202a-\u202e\u2060-\u2064\u2066-\u206f\ufeff]")


# Dashes NFKC keeps (`4111–1111–…` with en dashes), read as `-`; and digits of other scripts (`٤١٥٥`), read as
# ASCII digits: the embedded text keeps both, so the value would stay readable there.
_DASHES = dict.fromkeys("\u2010\u2011\u2012\u2013\u2014\u2015\u2212\ufe58\ufe63\uff0d", "-")
_UNUSUAL = re.compile(_INVISIBLE.pattern + "|[" + "".join(_DASHES) + "]|(?![0-9])\\d")


def _normalised(text: str) -> tuple[str, list[int] | None]:
    """(what the recognisers read, the index in `text` of each of its characters; None when it is `text`).

    The embedded text is NFKC-normalised (loop_assets/dedup/text.py), which turns fullwidth `４１１１` and
    `ａ＠ｂ．ｃｏｍ` into ASCII; so the recognisers read the NFKC form, character by character so that every
    finding maps back to a span of the text as written, which is what gets replaced. Characters that are
    not found in anything keep their own form. Dashes and digits of other scripts are read as ASCII too."""
    if text.isascii() or (unicodedata.is_normalized("NFKC", text) and not _UNUSUAL.search(text)):
        return text, None
    chars: list[str] = []
    origin: list[int] = []
    for i, char in enumerate(text):
        if char.isascii():
            chars.append(char)
            origin.append(i)
        elif not _INVISIBLE.match(char):
            normal = _DASHES.get(char) or _ascii_digit(char) or unicodedata.normalize("NFKC", char)
            chars.append(normal)
            origin.extend([i] * len(normal))
    return "".join(chars), origin


def _ascii_digit(char: str) -> str | None:
    digit = unicodedata.decimal(char, None)
    return None if digit is None else str(digit)


def _json_document(text: str) -> Any:
    stripped = text.strip()
    if not stripped or stripped[0] not in "[{" or stripped[-1] not in "]}":
        return None
    try:
        return json.loads(stripped)
    except ValueError:
        return None


def _dumps_like(original: str, document: Any, redacted: Any) -> str:
    """`redacted` serialised in the style `original` was written in (compact, spaced, ascii or not)."""
    for ensure_ascii in (False, True):
        for separators in ((",", ":"), (", ", ": ")):
            if json.dumps(document, ensure_ascii=ensure_ascii, separators=separators) == original.strip():
                return json.dumps(redacted, ensure_ascii=ensure_ascii, separators=separators)
    return json.dumps(redacted, ensure_ascii=False, separators=(",", ":"))


@lru_cache(maxsize=8)
def redactor(entities: tuple[str, ...] = ENTITIES, phone_regions: tuple[str, ...] = DEFAULT_PHONE_REGIONS) -> Redactor:
    """The shared Redactor for these settings (the analyzer is built on first use)."""
    return Redactor(entities, phone_regions)


def _redactor_for(config: Any) -> Redactor | None:
    """The redactor a RedactionConfig asks for; None when redaction is disabled. None config: defaults."""
    if config is None:
        return redactor()
    if not config.enabled:
        return None
    return redactor(tuple(config.entities), tuple(config.phone_regions))


def redact_text(text: str | None, config: Any = None, *, json_aware: bool = True) -> tuple[str | None, dict[str, int]]:
    """(redacted text, counts per kind). `config` is a RedactionConfig (None: every entity, defaults)."""
    chosen = _redactor_for(config)
    if text is None or chosen is None:
        return text, {}
    counts: Counter = Counter()
    return chosen.redact(text, counts, json_aware=json_aware), dict(counts)


def redact_frame_with_counts(
    frame: pl.DataFrame, columns: Iterable[str], config: Any = None
) -> tuple[pl.DataFrame, dict[str, int]]:
    """`frame` with `columns` redacted, and counts per kind (a value's findings counted once per row
    that holds it). String columns are redacted (JSON documents inside their strings); in a struct or
    list-of-structs column (failure_signals) every string field is. The analyzer runs once per
    distinct value; missing columns are skipped."""
    chosen = _redactor_for(config)
    totals: Counter = Counter()
    if chosen is None or frame.height == 0:
        return frame, {}
    replaced = []
    for column in columns:
        dtype = frame.schema.get(column)
        if dtype == pl.String:
            before, after = _replacements(chosen, frame[column], totals)
            if before:
                replaced.append(pl.col(column).replace(before, after))
        elif isinstance(dtype, pl.Struct | pl.List) and isinstance(_struct_of(dtype), pl.Struct):
            struct = _struct_of(dtype)
            values = frame[column].explode() if isinstance(dtype, pl.List) else frame[column]
            fields = []
            for field in struct.fields:
                if field.dtype == pl.String:
                    before, after = _replacements(chosen, values.struct.field(field.name), totals)
                    if before:
                        fields.append(pl.field(field.name).replace(before, after))
            if fields and isinstance(dtype, pl.List):
                replaced.append(pl.col(column).list.eval(pl.element().struct.with_fields(fields)))
            elif fields:
                replaced.append(pl.col(column).struct.with_fields(fields))
    return (frame.with_columns(replaced) if replaced else frame), dict(totals)


def _struct_of(dtype: pl.DataType) -> pl.DataType | None:
    return dtype.inner if isinstance(dtype, pl.List) else dtype


def _replacements(chosen: Redactor, values: pl.Series, totals: Counter) -> tuple[list[str], list[str]]:
    """(values that change, what they become), counting findings into `totals` per occurrence."""
    before, after = [], []
    for value, rows in values.drop_nulls().value_counts(sort=False).iter_rows():
        counts: Counter = Counter()
        new = chosen.redact(value, counts)
        if new != value:
            before.append(value)
            after.append(new)
            for kind, n in counts.items():
                totals[kind] += n * rows
    return before, after


def redact_frame(frame: pl.DataFrame, columns: Iterable[str], config: Any = None) -> pl.DataFrame:
    """`frame` with the string `columns` it has redacted (see redact_frame_with_counts)."""
    return redact_frame_with_counts(frame, columns, config)[0]


def count_metadata(counts: Mapping[str, int]) -> dict[str, int]:
    """`redacted_<kind>` figures for every kind (0 when none), for Dagster metadata plots."""
    return {f"redacted_{kind}": int(counts.get(kind, 0)) for kind in KINDS}
