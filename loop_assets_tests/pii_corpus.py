"""A generated PII and secrets test set: realistic values of every redacted kind, embedded in sentences.

`corpus(seed)` returns `Sample`s: the sentence, the value in it, its type (email, phone, card, iban,
ip, secret) and the text the redaction must produce (the value replaced by its placeholder; for a
bearer token or a URL password only the token or the password). Values are made valid the way real
ones are: phone numbers valid for their country in libphonenumber's metadata, cards of several brands
with a Luhn check digit, IBANs in each country's format with mod-97 check digits, IPv4 and IPv6 in
their usual notations, and secrets in each provider's key format.
"""

from __future__ import annotations

import base64
import ipaddress
import json
import random
import string
from dataclasses import dataclass

import phonenumbers

from loop_assets.redaction import DEFAULT_PHONE_REGIONS

TYPES = ("email", "phone", "card", "iban", "ip", "secret")


@dataclass(frozen=True)
class Sample:
    type: str
    value: str
    text: str
    expected: str


SENTENCES = [
    "{}",
    "Please contact me at {} about my order.",
    "my details: {}, thanks!",
    "Can you update the account to {}?",
    "It says invalid ({}) when I try again",
    "Customer wrote:\n{}\nPlease check.",
    "FYI - {} - see ticket",
    '{{"field": "{}"}} was rejected',
    "Use {}; the old one stopped working.",
    "Why does {} fail validation?",
]


def _embed(rng: random.Random, kind: str, value: str, replaced: str, placeholder: str) -> Sample:
    sentence = rng.choice(SENTENCES)
    return Sample(kind, value, sentence.format(value), sentence.format(replaced.replace(value, placeholder, 1)))


# ------------------------------------------------------------------ emails

FIRST = ["anna", "jose", "li", "olu", "marie-claire", "t", "sam", "ingrid", "raj", "zoe", "mohammed", "kai"]
LAST = ["smith", "garcia", "nguyen", "o_brien", "muller", "kowalski", "tanaka", "okafor", "dubois", "rossi"]
DOMAINS = [
    "gmail.com",
    "outlook.com",
    "proton.me",
    "mail.example.org",
    "corp.acme-widgets.co.uk",
    "uni-heidelberg.de",
    "company.io",
    "sub.domain.travel",
    "yahoo.co.jp",
    "northwind.internal",
    "web.de",
    "example.com.br",
]


def emails(rng: random.Random, n: int) -> list[str]:
    out = []
    for i in range(n):
        first, last, domain = rng.choice(FIRST), rng.choice(LAST), rng.choice(DOMAINS)
        local = rng.choice(
            [
                f"{first}.{last}",
                f"{first}{rng.randint(1, 999)}",
                f"{first}_{last}",
                f"{first}+{rng.choice(['news', 'shop', 'x1'])}",
                f"{first[0]}{last}",
                f"{last}.{first}.{rng.randint(10, 99)}",
            ]
        )
        value = f"{local}@{domain}"
        out.append(value.upper() if i % 17 == 0 else value)
    return out


# ------------------------------------------------------------------ phones

INTERNATIONAL_ONLY = ["MX", "SE", "PL", "CH", "IE", "SG", "ZA", "KR", "AR", "NO", "PT", "BE", "AT", "NZ"]
_TYPES = [phonenumbers.PhoneNumberType.FIXED_LINE, phonenumbers.PhoneNumberType.MOBILE]
_FORMATS = [phonenumbers.PhoneNumberFormat.INTERNATIONAL, phonenumbers.PhoneNumberFormat.E164]


def _valid_number(rng: random.Random, region: str) -> phonenumbers.PhoneNumber:
    """A random number valid for `region`, from its example number with the last digits changed."""
    example = phonenumbers.example_number_for_type(region, rng.choice(_TYPES))
    nsn = phonenumbers.national_significant_number(example)
    for _ in range(200):
        tail = "".join(rng.choice(string.digits) for _ in range(min(4, len(nsn) - 3)))
        candidate = phonenumbers.parse(f"+{example.country_code}{nsn[: len(nsn) - len(tail)]}{tail}")
        if phonenumbers.is_valid_number(candidate):
            return candidate
    return example


def phones(rng: random.Random, n: int) -> list[str]:
    out = []
    national_regions = list(DEFAULT_PHONE_REGIONS)
    for i in range(n):
        if i % 3 == 2:
            number = _valid_number(rng, rng.choice(INTERNATIONAL_ONLY))
            out.append(phonenumbers.format_number(number, rng.choice(_FORMATS)))
            continue
        region = rng.choice(national_regions)
        number = _valid_number(rng, region)
        style = i % 5
        if style in (0, 4):
            text = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.NATIONAL)
        elif style == 1:
            text = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.INTERNATIONAL)
        elif style == 2:
            text = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
        else:
            national = phonenumbers.national_significant_number(number)
            if region == "US" and len(national) == 10:
                text = rng.choice(
                    [
                        f"{national[:3]}.{national[3:6]}.{national[6:]}",
                        f"{national[:3]}-{national[3:6]}-{national[6:]}",
                        f"+1 ({national[:3]}) {national[3:6]}-{national[6:]}",
                        f"1-{national[:3]}-{national[3:6]}-{national[6:]}",
                    ]
                )
            else:
                text = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.INTERNATIONAL).replace(
                    " ", "-"
                )
        out.append(text)
    return out


# ------------------------------------------------------------------ cards

BRANDS = [  # (prefixes, length, grouping)
    (["4"], 16, (4, 4, 4, 4)),  # Visa
    (["4"], 13, (4, 3, 3, 3)),  # Visa, old 13-digit
    (["51", "52", "53", "54", "55"], 16, (4, 4, 4, 4)),  # Mastercard
    (["2221", "2300", "2500", "2720"], 16, (4, 4, 4, 4)),  # Mastercard 2-series
    (["34", "37"], 15, (4, 6, 5)),  # American Express
    (["6011", "65", "644"], 16, (4, 4, 4, 4)),  # Discover
    (["3528", "3589", "3530"], 16, (4, 4, 4, 4)),  # JCB
    (["36", "38"], 14, (4, 6, 4)),  # Diners Club
    (["62"], 16, (4, 4, 4, 4)),  # UnionPay
    (["62"], 19, (4, 4, 4, 4, 3)),  # UnionPay, 19 digits
    (["6759", "6304"], 18, (4, 4, 4, 4, 2)),  # Maestro
]


def luhn_digit(partial: str) -> str:
    total = 0
    for i, d in enumerate(reversed(partial)):
        v = int(d)
        if i % 2 == 0:
            v *= 2
            v = v - 9 if v > 9 else v
        total += v
    return str((10 - total % 10) % 10)


def luhn_valid(number: str) -> bool:
    return luhn_digit(number[:-1]) == number[-1]


def cards(rng: random.Random, n: int) -> list[str]:
    out = []
    for i in range(n):
        prefixes, length, grouping = BRANDS[i % len(BRANDS)]
        body = rng.choice(prefixes)
        body += "".join(rng.choice(string.digits) for _ in range(length - 1 - len(body)))
        number = body + luhn_digit(body)
        sep = [" ", "-", ""][i % 3]
        parts, at = [], 0
        for size in grouping:
            parts.append(number[at : at + size])
            at += size
        out.append(sep.join(parts))
    return out


# ------------------------------------------------------------------ IBANs

IBAN_FORMATS = {  # country: BBAN as (kind, count): n digits, a upper letters, c alphanumerics
    "DE": [("n", 18)],
    "GB": [("a", 4), ("n", 14)],
    "FR": [("n", 10), ("c", 11), ("n", 2)],
    "ES": [("n", 20)],
    "IT": [("a", 1), ("n", 10), ("c", 12)],
    "NL": [("a", 4), ("n", 10)],
    "BE": [("n", 12)],
    "CH": [("n", 5), ("c", 12)],
    "AT": [("n", 16)],
    "PL": [("n", 24)],
    "SE": [("n", 20)],
    "NO": [("n", 11)],
    "DK": [("n", 14)],
    "FI": [("n", 14)],
    "IE": [("a", 4), ("n", 14)],
    "PT": [("n", 21)],
}


def iban_check_digits(country: str, bban: str) -> str:
    rearranged = bban + country + "00"
    number = int("".join(str(int(ch, 36)) for ch in rearranged))
    return f"{98 - number % 97:02d}"


def ibans(rng: random.Random, n: int) -> list[str]:
    out = []
    countries = list(IBAN_FORMATS)
    for i in range(n):
        country = countries[i % len(countries)]
        pools = {"n": string.digits, "a": string.ascii_uppercase, "c": string.digits + string.ascii_uppercase}
        bban = "".join(rng.choice(pools[kind]) for kind, count in IBAN_FORMATS[country] for _ in range(count))
        iban = country + iban_check_digits(country, bban) + bban
        out.append(" ".join(iban[j : j + 4] for j in range(0, len(iban), 4)) if i % 2 else iban)
    return out


# ------------------------------------------------------------------ IPs


def ips(rng: random.Random, n: int) -> list[str]:
    out = []
    for i in range(n):
        kind = i % 6
        if kind in (0, 1):
            first = rng.choice([10, 172, 192, 8, 34, 52, 81, 203])
            out.append(".".join(str(x) for x in [first, rng.randint(0, 255), rng.randint(0, 255), rng.randint(1, 254)]))
        elif kind == 2:
            out.append(str(ipaddress.IPv6Address(rng.getrandbits(128))))  # compressed where possible
        elif kind == 3:
            out.append(ipaddress.IPv6Address(rng.getrandbits(128)).exploded)
        elif kind == 4:
            out.append(f"2001:db8:{rng.randint(1, 0xFFFF):x}::{rng.randint(1, 0xFFFF):x}")
        else:
            out.append(f"fe80::{rng.randint(1, 0xFFFF):x}:{rng.randint(1, 0xFFFF):x}:{rng.randint(1, 0xFFFF):x}")
    return out


# ------------------------------------------------------------------ secrets

ALNUM = string.ascii_letters + string.digits


def _rand(rng: random.Random, n: int, alphabet: str = ALNUM) -> str:
    while True:
        value = "".join(rng.choice(alphabet) for _ in range(n))
        if any(c.isdigit() for c in value):
            return value


def _b64url(data: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def secrets(rng: random.Random, n: int) -> list[tuple[str, str, str, str]]:
    """(kind, value, text-with-value, placeholder-replaced-part): for bearer and URLs only part goes."""
    out = []
    for i in range(n):
        kind = i % 9
        if kind == 0:
            key = "sk-" + _rand(rng, 48)
            out.append(("api_key", key, key, key))
        elif kind == 1:
            key = "sk-proj-" + _rand(rng, rng.randint(100, 156), ALNUM + "_-")
            out.append(("api_key", key, key, key))
        elif kind == 2:
            key = "sk-ant-api03-" + _rand(rng, 95, ALNUM + "_-")
            out.append(("api_key", key, key, key))
        elif kind == 3:
            key = "AKIA" + _rand(rng, 16, string.ascii_uppercase + string.digits)
            out.append(("api_key", key, key, key))
        elif kind == 4:
            key = rng.choice(["ghp_", "gho_", "ghs_"]) + _rand(rng, 36)
            out.append(("api_key", key, key, key))
        elif kind == 5:
            key = "github_pat_" + _rand(rng, 22) + "_" + _rand(rng, 59)
            out.append(("api_key", key, key, key))
        elif kind == 6:
            header = _b64url({"alg": rng.choice(["HS256", "RS256"]), "typ": "JWT"})
            payload = _b64url({"sub": str(rng.randint(1000, 99999)), "iat": 1763290325, "name": rng.choice(FIRST)})
            token = f"{header}.{payload}.{_rand(rng, 43, ALNUM + '_-')}"
            out.append(("jwt", token, token, token))
        elif kind == 7:
            token = _rand(rng, rng.randint(24, 64), ALNUM + "-._~+/")
            prefix = rng.choice(["Authorization: Bearer ", "bearer ", "Bearer "])
            out.append(("bearer_token", token, prefix + token, token))
        else:
            scheme = rng.choice(["postgres", "postgresql", "mysql", "redis", "https", "amqp", "mongodb+srv"])
            user = rng.choice(["admin", "app_user", "svc-loader", "root"])
            password = _rand(rng, rng.randint(8, 24), ALNUM + "!$%^*-_")
            host = rng.choice(["db.internal", "cache.prod.example.com", "mq.acme.io", "cluster0.ab1cd.mongodb.net"])
            url = f"{scheme}://{user}:{password}@{host}:{rng.randint(1000, 9999)}/app"
            out.append(("password", password, url, password))
    return out


PLACEHOLDER = {"email": "<EMAIL>", "phone": "<PHONE>", "card": "<CARD>", "iban": "<IBAN>", "ip": "<IP>"}
SECRET_PLACEHOLDER = {
    "api_key": "<API_KEY>",
    "jwt": "<JWT>",
    "bearer_token": "<BEARER_TOKEN>",
    "password": "<PASSWORD>",
}


def corpus(seed: int = 7, per_type: int = 220) -> list[Sample]:
    rng = random.Random(seed)
    samples: list[Sample] = []
    for kind, make in (("email", emails), ("phone", phones), ("card", cards), ("iban", ibans), ("ip", ips)):
        for value in make(rng, per_type):
            samples.append(_embed(rng, kind, value, value, PLACEHOLDER[kind]))
    for sub, value, text, part in secrets(rng, per_type * 2):
        sentence = rng.choice(SENTENCES)
        expected = sentence.format(text.replace(part, SECRET_PLACEHOLDER[sub], 1))
        samples.append(Sample("secret", value, sentence.format(text), expected))
    return samples


# Things that look a little like the above and must be left alone.
NOT_PII = [
    "Order NW-483920 was placed on 2026-11-16 at 10:32:05 UTC.",
    "Where is order #A-48213? The reference is ORD-2026-118734.",
    "My order number is 1002003 and it cost $1,299.00 (incl. 19% VAT).",
    "Timestamp 2026-11-16T10:32:05.123Z, epoch 1763290325, request took 1843.5 ms.",
    "Logged at 16/11/2026 10:32 and again at 11/17/2026 3:15pm.",
    "Upgrade from v2.13.0 to 2.14.1; python 3.11.7, torch==2.13.0, dagster 1.13.27.",
    "Windows build 10.0.19041 with driver 535.104.05.",
    "The price went from €49.99 to 1.299,00 € and then USD 12500.50.",
    "Invoice INV-2026-00042 for 3 seats, total 4,500.00 GBP, due in 30 days.",
    "Use x[::2] for every other item, and std::vector<int> in C++.",
    "SELECT id, total FROM orders WHERE created_at >= '2026-11-01' LIMIT 100;",
    "HTTP 404 at 12:30; retry after 3600 seconds; ISO 8601 dates please.",
    "The SKU is 883-2910 in size 42, colour navy.",
    "Ratio 16:9, scale 1:100000, score 4.5/5, temperature 21.5 °C.",
    "The token limit is 4096 and the key point is brevity; my password manager is fine.",
    "A skeleton key and sk-learn compatible estimators; the bearer of bad news.",
    "Tracking number 1Z999AA10123456784 shipped via UPS.",
]
