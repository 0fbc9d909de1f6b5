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
    variant: str = ""


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


# ------------------------------------------------------------------ the held-out set: shapes the first set lacks
#
# `held_out(seed)` seeds values in shapes an adversarial user found leaking (issue 16): fullwidth digits and
# letters, lowercase IBANs, cards of other lengths and separators, phone numbers with a label glued on,
# passwords and keys in prose and in configuration syntax, PEM private keys, US SSNs and passport numbers.
# Its sentences are its own (not SENTENCES), so it measures more than the patterns were written against.

HELD_OUT_TYPES = (
    "email",
    "phone",
    "card",
    "iban",
    "ip",
    "password",
    "private_key",
    "api_key",
    "ssn",
    "passport",
    "date_of_birth",
)
HELD_OUT_SENTENCES = [
    "{}",
    "hi, {} - can you look into it asap?",
    "Ticket 8812: customer says {} and nothing happens.",
    "As requested:\n\n{}\n\nregards",
    "I pasted {} into the form but it was rejected.",
    "why is this not working?? {}",
    "- {}\n- retry count: 3",
    "Support note (internal): {}.",
]
MONTHS = ["January", "February", "March", "April", "May", "June", "July", "August", "September", "October"]
MONTHS += ["November", "December"]
_FULLWIDTH = {c: chr(ord(c) + 0xFEE0) for c in string.ascii_letters + string.digits + "@.+-_"}


def fullwidth(text: str) -> str:
    """`text` in fullwidth forms (U+FF01..U+FF5E), which NFKC turns back into ASCII; spaces become U+3000."""
    return "".join(_FULLWIDTH.get(c, "\u3000" if c == " " else c) for c in text)


def _group(number: str, sizes: tuple[int, ...], sep: str) -> str:
    parts, at = [], 0
    for size in sizes:
        parts.append(number[at : at + size])
        at += size
    return sep.join(parts)


def _card(rng: random.Random, prefix: str, length: int) -> str:
    body = prefix + "".join(rng.choice(string.digits) for _ in range(length - 1 - len(prefix)))
    return body + luhn_digit(body)


def _ssn(rng: random.Random) -> str:
    while True:
        area, group, serial = rng.randint(1, 899), rng.randint(1, 99), rng.randint(1, 9999)
        if area != 666:
            return f"{area:03d}{group:02d}{serial:04d}"


def _b64(rng: random.Random, n: int) -> str:
    return _rand(rng, n, ALNUM + "+/")


def _aws_secret(rng: random.Random) -> str:
    while True:
        value = _rand(rng, 40, ALNUM + "+/")
        if any(c.isupper() for c in value) and any(c.islower() for c in value):
            return value


def _pem(rng: random.Random) -> str:
    label = rng.choice(
        ["RSA PRIVATE KEY", "PRIVATE KEY", "EC PRIVATE KEY", "OPENSSH PRIVATE KEY", "ENCRYPTED PRIVATE KEY"]
    )
    lines = [_b64(rng, 64) for _ in range(rng.randint(3, 12))] + [_b64(rng, rng.randint(8, 63)) + "=="]
    return f"-----BEGIN {label}-----\n" + "\n".join(lines) + f"\n-----END {label}-----"


def _password(rng: random.Random) -> str:
    shapes = [
        lambda: _rand(rng, rng.randint(8, 16), ALNUM + "!$%^*-_#"),
        lambda: "".join(
            w.capitalize()
            for w in rng.sample(["correct", "horse", "battery", "staple", "blue", "river", "moon", "tiger", "paper"], 4)
        ),
        lambda: (
            rng.choice(["Summer", "Winter", "Welcome", "Passw0rd", "Letmein"])
            + str(rng.randint(10, 2030))
            + rng.choice(["!", "", "#", "@"])
        ),
        lambda: "".join(rng.choice(string.ascii_letters) for _ in range(5)) + "@" + _rand(rng, 6, ALNUM),
    ]
    return rng.choice(shapes)()


def held_out(seed: int = 11, per_variant: int = 24) -> list[Sample]:
    """Values of HELD_OUT_TYPES in the shapes above; `variant` names the shape (recall is reported per type)."""
    rng = random.Random(seed)
    samples: list[Sample] = []

    def add(kind: str, variant: str, value: str, text: str, expected: str) -> None:
        sentence = rng.choice(HELD_OUT_SENTENCES)
        samples.append(Sample(kind, value, sentence.format(text), sentence.format(expected), variant))

    def plain(kind: str, variant: str, value: str, template: str, placeholder: str) -> None:
        add(kind, variant, value, template.format(value), template.format(placeholder))

    for _ in range(per_variant):
        # emails
        email = rng.choice(emails(rng, 1))
        plain("email", "fullwidth", fullwidth(email), rng.choice(["mail {}", "email: {}", "{}"]), "<EMAIL>")
        plain("email", "angle_brackets", email, rng.choice(["From: Ana <{}>", "reply-to <{}>"]), "<EMAIL>")
        # phones
        us = _valid_number(rng, "US")
        national = phonenumbers.national_significant_number(us)
        dashed = f"{national[:3]}-{national[3:6]}-{national[6:]}"
        label = rng.choice(["Office", "Fax", "Home", "Cell", "Work"])
        plain("phone", "label_glued", dashed, "{}-" + label, "<PHONE>")
        international = phonenumbers.format_number(
            _valid_number(rng, rng.choice(["GB", "DE", "FR"])), phonenumbers.PhoneNumberFormat.INTERNATIONAL
        )
        plain("phone", "fullwidth", fullwidth(international), rng.choice(["tel {}", "call me on {}", "{}"]), "<PHONE>")
        first = phonenumbers.format_number(_valid_number(rng, "US"), phonenumbers.PhoneNumberFormat.NATIONAL)
        word = rng.choice(["Desk", "Office", "Direct", "Work"])
        add(
            "phone",
            "second_number",
            national,
            f"Mobile: {first} {word}: {national}",
            f"Mobile: <PHONE> {word}: <PHONE>",
        )
        plain(
            "phone", "us_parenthesised", f"({national[:3]}) {national[3:6]}-{national[6:]}", "reach me at {}", "<PHONE>"
        )
        # cards
        diners = _card(rng, rng.choice(["36", "38", "300", "305"]), 14)
        plain("card", "diners_14", _group(diners, (4, 6, 4), rng.choice([" ", "-", ""])), "card {}", "<CARD>")
        visa = _card(rng, "4", 16)
        plain("card", "dotted", _group(visa, (4, 4, 4, 4), "."), rng.choice(["card {}", "{}"]), "<CARD>")
        maestro = _card(rng, rng.choice(["6759", "6304", "5018", "6761"]), 12)
        plain("card", "maestro_12", _group(maestro, (4, 4, 4), rng.choice([" ", "-", ""])), "maestro {}", "<CARD>")
        jcb = _card(rng, rng.choice(["2131", "1800"]), 15)
        plain(
            "card",
            "jcb_15",
            _group(jcb, rng.choice([(4, 6, 5), (4, 4, 4, 3)]), rng.choice([" ", ""])),
            "JCB card {}",
            "<CARD>",
        )
        master = _card(rng, rng.choice(["51", "55", "4"]), 16)
        plain(
            "card", "fullwidth", fullwidth(_group(master, (4, 4, 4, 4), " ")), rng.choice(["card {}", "{}"]), "<CARD>"
        )
        # IBANs
        iban = ibans(rng, 2)[rng.randint(0, 1)]
        plain("iban", "lowercase", iban.lower(), rng.choice(["iban {}", "send it to {}"]), "<IBAN>")
        plain("iban", "fullwidth", fullwidth(iban), "IBAN {}", "<IBAN>")
        # IPs
        ip = ips(rng, 1)[0]
        plain("ip", "after_verb", ip, rng.choice(["connect to {}", "ping {} fails", "ssh admin@{}", "host={}"]), "<IP>")
        # passwords
        password = _password(rng)
        template = rng.choice(
            [
                "my password is {}",
                "the password: {}",
                "Password was {} until yesterday",
                "PGPASSWORD={} psql -h db -U app",
                "Server=db;Database=app;User Id=sa;Password={};",
                "DB_PASSWORD={}",
                "pwd: {}",
                "new passphrase is {}",
            ]
        )
        plain("password", template.split("{}")[0].strip() or "bare", password, template, "<PASSWORD>")
        # private keys
        plain(
            "private_key",
            "pem",
            _pem(rng),
            rng.choice(["{}", "key:\n{}", "here is the key {} (do not share)"]),
            "<PRIVATE_KEY>",
        )
        # API keys and tokens
        secret = _aws_secret(rng)
        key_id = "AKIA" + _rand(rng, 16, string.ascii_uppercase + string.digits)
        shape = rng.choice(
            [
                '{{"AccessKeyId": "{}", "SecretAccessKey": "{}"}}',
                "aws_access_key_id={} aws_secret_access_key={}",
                "AWS_SECRET_ACCESS_KEY: {1}",
                "keys {} / {}",
                "the secret key {1} leaked",
            ]
        )
        add("api_key", "aws_secret", secret, shape.format(key_id, secret), shape.format("<API_KEY>", "<API_KEY>"))
        account_key = _b64(rng, 86) + "=="
        add(
            "api_key",
            "azure_account_key",
            account_key,
            f"DefaultEndpointsProtocol=https;AccountName=acme;AccountKey={account_key};EndpointSuffix=core.windows.net",
            "DefaultEndpointsProtocol=https;AccountName=acme;AccountKey=<API_KEY>;EndpointSuffix=core.windows.net",
        )
        sendgrid = f"SG.{_rand(rng, 22, ALNUM + '_-')}.{_rand(rng, 43, ALNUM + '_-')}"
        plain("api_key", "sendgrid", sendgrid, rng.choice(["SENDGRID_API_KEY={}", "sendgrid key {}"]), "<API_KEY>")
        upper = string.ascii_uppercase + string.digits
        hook = f"T{_rand(rng, 8, upper)}/B{_rand(rng, 10, upper)}/{_rand(rng, 24)}"
        plain(
            "api_key", "slack_webhook", hook, "posting to https://hooks.slack.com/services/{} returns 404", "<API_KEY>"
        )
        stripe = rng.choice(["whsec_", "sk_live_", "rk_live_"]) + _rand(rng, rng.choice([24, 32, 99]))
        plain(
            "api_key", "stripe", stripe, rng.choice(["STRIPE_KEY={}", "stripe says {} is invalid", "{}"]), "<API_KEY>"
        )
        token = _rand(rng, rng.randint(20, 38), ALNUM + "-._") + rng.choice(ALNUM)  # a final "." would end the sentence
        plain(
            "api_key",
            "bearer_prose",
            token,
            rng.choice(["the bearer token is {}", "the access token is {}", "Bearer {}"]),
            "<BEARER_TOKEN>",
        )
        # SSNs
        ssn = _ssn(rng)
        shape = rng.choice(["{}-{}-{}", "{} {} {}", "{}{}{}"])
        value = shape.format(ssn[:3], ssn[3:5], ssn[5:])
        template = rng.choice(["SSN {}", "my social security number is {}", "ssn: {}", "SSN#{}", "social sec no {}"])
        plain("ssn", "grouped" if shape != "{}{}{}" else "bare_9", value, template, "<SSN>")
        # passports
        passport = rng.choice(
            [f"{rng.randint(10**8, 10**9 - 1)}", f"{rng.choice(string.ascii_uppercase)}{rng.randint(10**7, 10**8 - 1)}"]
        )
        template = rng.choice(["passport number {}", "Passport No. {}", "my passport: {}", "passport #{}"])
        plain("passport", "after_word", passport, template, "<PASSPORT>")
        # dates of birth
        year, month, day = rng.randint(1930, 2010), rng.randint(1, 12), rng.randint(1, 28)
        name = MONTHS[month - 1]
        dob, template = rng.choice(
            [
                (f"{year}-{month:02d}-{day:02d}", "DOB: {}"),
                (f"{day} {name} {year}", "date of birth {}"),
                (f"{name} {day}, {year}", "I was born on {}"),
                (f"{month:02d}/{day:02d}/{year}", "birthday: {}"),
                (f"{day:02d}.{month:02d}.{year}", "Geburtsdatum {}"),
            ]
        )
        plain("date_of_birth", "after_word", dob, template, "<DATE_OF_BIRTH>")
    return samples


# Held-out look-alikes: each must come back unchanged (issue 16's false positives among them).
HELD_OUT_NOT_PII = [
    "invoice 2024-000123 is overdue",
    "use a[1::2] and b[10::3] for the odd items",
    "firmware 1.2.3.4 bricked the router",
    "Upgrade to version 10.0.0.1 of the agent; build 4.18.0.553 is older.",
    "OID 1.3.6.1.4.1.311 is Microsoft's arc",
    "my password is wrong and my password is not working",
    "the password is too short, the password manager is fine",
    "Password reset: the password was changed",
    "the bearer token is expired, the access token is missing",
    "commit 9fceb02d0ae598e95dc970b74764b08f2b7e5e3c fixed it",
    "sha1 DA39A3EE5E6B4B0D3255BFEF95601890AFD80709 is the empty string",
    "Reference PO-4500012345, order 630412345678 shipped",
    "the ratio is 1::2, see section 12.3.4",
    "Call ID 2024-11-16-000045 closed",
    "Dates: 2026-11-16, 11/16/2026, 16.11.2026",
    "my account number is in the app and the SSN field is empty",
    "the idea was born on a napkin; the invoice is dated 2026-11-16",
    "Set the start date to 04/12/1990 in the report filter.",
]
