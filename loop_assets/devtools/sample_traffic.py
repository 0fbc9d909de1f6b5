"""Deterministic sample production traffic for eval-loop.

`generate_traffic()` writes a week of OpenAI-chat trace logs (JSONL, one file per UTC day, the last
one gzipped) for three LLM apps: `support_bot`, `sql_assistant` and `summariser`. Most traffic is
healthy and varied; about a tenth comes from recurring *failure families* (`FAILURE_FAMILIES`), each
tied to one app and one dominant failure signal and phrased many different ways, with some exact
repeats. The files also carry what real logs carry: multi-turn conversations, user feedback, a long
latency tail, transient provider errors, records logged after midnight, and a few malformed lines.

`metadata.scenario` on every record is the ground truth (`"healthy"` or a family name). The loop
never reads it; tests do. Healthy records can still fail now and then (slow tail, a transient 429 or
502), as in production: those keep the label `"healthy"`.

Only the standard library is used, and everything derives from one `random.Random(seed)`, so the
same arguments give byte-identical files. `python -m loop_assets.devtools.sample_traffic [OUT_DIR]` rewrites
the bundled sample (`data/sample/` by default).
"""

from __future__ import annotations

import gzip
import json
import math
import random
import sys
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

# The phrase tables (apps, topics, failure families) are data: phrases.json beside this module.
PHRASES: dict[str, Any] = json.loads(Path(__file__).with_name("phrases.json").read_text(encoding="utf-8"))
DEFAULT_START = date(2026, 11, 16)
SAMPLE_DIR = Path(__file__).resolve().parents[2] / "data" / "sample"

# --------------------------------------------------------------------------------------------------
# Apps
# --------------------------------------------------------------------------------------------------

SUPPORT_SYSTEM = PHRASES["SUPPORT_SYSTEM"]
SQL_SYSTEM = PHRASES["SQL_SYSTEM"]
SUMMARISER_SYSTEM = (
    "You summarise documents for busy readers. Write a faithful summary of at most five sentences and "
    "do not add facts that are not in the document."
)

APPS: dict[str, dict] = PHRASES["APPS"]

# --------------------------------------------------------------------------------------------------
# Failure families: one app, one dominant signal, one underlying request each.
# `share` is the expected fraction of all traffic. Signal names match eval_loop.yaml severity_weights.
# --------------------------------------------------------------------------------------------------

FAILURE_FAMILIES: dict[str, dict] = PHRASES["FAILURE_FAMILIES"]

REPEAT_RATE = 0.2  # share of failure-family inputs that repeat an earlier input of the family exactly
HEALTHY_FEEDBACK_RATE = 0.14
HEALTHY_TRANSIENT_ERROR_RATE = 0.003
LATE_RATE = 0.01  # records in a day's file whose timestamp is in the first minutes of the next day
MULTI_TURN_RATE = 0.22  # healthy support_bot conversations (on topics with follow-ups) with earlier turns

MALFORMED_KINDS = PHRASES["MALFORMED_KINDS"]

# --------------------------------------------------------------------------------------------------
# Slot values
# --------------------------------------------------------------------------------------------------

FIRST_NAMES = PHRASES["FIRST_NAMES"]
SURNAMES = [
    "Okafor", "Lindqvist", "Moreau", "Tanaka", "Rossi", "Novak", "Haddad", "Schmidt", "Kowalski",
    "Fernandes", "Nguyen", "O'Brien", "Petrov", "Sato", "Mensah", "Larsen", "Ibrahim", "Costa",
]  # fmt: skip
COMPANIES = PHRASES["COMPANIES"]
PRODUCTS = PHRASES["PRODUCTS"]
COUNTRIES = PHRASES["COUNTRIES"]
US_CITIES = ["Denver", "Austin", "Portland", "Chicago", "Boston", "Atlanta", "Phoenix", "Seattle"]
PLANS = ["Basic", "Plus", "Premium", "Family", "Pro", "Outdoor Club"]
CATEGORIES = [
    "Electronics", "Home & Kitchen", "Outdoor", "Toys", "Beauty", "Books", "Garden", "Sports",
    "Furniture", "Pet Supplies",
]  # fmt: skip
STATUSES = ["shipped", "delivered", "cancelled", "returned", "pending"]
PAY_METHODS = ["card", "paypal", "bank_transfer", "gift_card"]
MONTHS = [
    "January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
    "November", "December",
]  # fmt: skip
MONTHS_ES = ["enero", "febrero", "marzo", "abril", "mayo", "junio", "julio", "agosto", "septiembre",
             "octubre", "noviembre"]  # fmt: skip
MONTHS_DE = ["Januar", "Februar", "März", "April", "Mai", "Juni", "Juli", "August", "September",
             "Oktober", "November"]  # fmt: skip
MONTHS_FR = ["janvier", "février", "mars", "avril", "mai", "juin", "juillet", "août", "septembre",
             "octobre", "novembre"]  # fmt: skip
WEEKDAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday"]
EMAIL_DOMAINS = ["gmail.com", "outlook.com", "proton.me", "yahoo.com", "icloud.com", "fastmail.com"]
COLOURS = ["black", "navy", "olive", "grey", "red", "sand", "white", "forest green"]
SIZES = ["S", "M", "L", "XL", "38", "40", "42", "44"]


def _slots(rng: random.Random, day: date) -> dict[str, str]:
    """One consistent set of slot values for one record."""
    country, city = rng.choice(COUNTRIES)
    name, surname = rng.choice(FIRST_NAMES), rng.choice(SURNAMES)
    company, company2 = rng.sample(COMPANIES, 2)
    product, product2 = rng.sample(PRODUCTS, 2)
    days_late = rng.randint(33, 120)
    past = day - timedelta(days=rng.randint(3, 60))
    future = day + timedelta(days=rng.randint(3, 28))
    month_i = rng.randrange(11)
    return {
        "name": name,
        "surname": surname,
        "rep": rng.choice([n for n in FIRST_NAMES if n != name]),
        "company": company,
        "company2": company2,
        "product": product,
        "product2": product2,
        "order": f"NW-{rng.randint(100000, 999999)}",
        "country": country,
        "city": city,
        "us_city": rng.choice(US_CITIES),
        "days_late": str(days_late),
        "weeks": str(max(5, days_late // 7)),
        "n": str(rng.randint(3, 21)),
        "n_small": str(rng.randint(2, 6)),
        "top_n": str(rng.choice([3, 5, 10, 20, 25])),
        "year": str(rng.choice([2024, 2025, 2026])),
        "date": past.isoformat(),
        "date_long": f"{MONTHS[past.month - 1]} {past.day}",
        "future_date": f"{MONTHS[future.month - 1]} {future.day}",
        "month": MONTHS[month_i],
        "month_es": MONTHS_ES[month_i],
        "month_de": MONTHS_DE[month_i],
        "month_fr": MONTHS_FR[month_i],
        "weekday": rng.choice(WEEKDAYS),
        "amount": f"{rng.uniform(12, 480):.2f}",
        "big_amount": f"{rng.randint(4, 95) * 1000:,}",
        "pct": str(rng.randint(3, 40)),
        "plan": rng.choice(PLANS),
        "category": rng.choice(CATEGORIES),
        "status": rng.choice(STATUSES),
        "method": rng.choice(PAY_METHODS),
        "email": f"{name.lower()}.{surname.lower().replace(chr(39), '')}@{rng.choice(EMAIL_DOMAINS)}",
        "colour": rng.choice(COLOURS),
        "size": rng.choice(SIZES),
        "hour": str(rng.randint(8, 11)),
        "code": f"{rng.choice(['SAVE', 'WELCOME', 'AUTUMN', 'VIP'])}{rng.randint(10, 30)}",
        "points": f"{rng.randint(120, 4800):,}",
        "gift": f"{rng.randint(10, 200)}.00",
        "stock": str(rng.randint(3, 25)),
        "age": str(rng.randint(24, 81)),
        "term": str(rng.choice([12, 24, 36])),
        "notice": str(rng.choice([30, 60, 90])),
        "pay_days": str(rng.choice([15, 30, 45])),
        "fee": f"${rng.randint(3, 60) * 500:,}",
        "cap": str(rng.choice([6, 12, 24])),
        "state": rng.choice(["New York", "Delaware", "California", "Texas", "Illinois"]),
        "seats": str(rng.choice([25, 40, 60, 120, 250, 500])),
        "version": f"{rng.randint(2, 9)}.{rng.randint(0, 12)}",
        "minutes": str(rng.randint(12, 190)),
        "users_hit": f"{rng.randint(2, 40)}%",
    }


# --------------------------------------------------------------------------------------------------
# Text variation: politeness, casual style, typos
# --------------------------------------------------------------------------------------------------

GREETINGS = ["", "", "", "Hi, ", "Hello, ", "Hey, ", "Hi there! ", "Good morning, ", "hello - "]
SIGN_OFFS = ["", "", "", " Thanks!", " Thank you.", " thx", " Cheers.", " Appreciate the help.", " Please help."]


def _typo(text: str, rng: random.Random) -> str:
    words = text.split(" ")
    candidates = [i for i, w in enumerate(words) if len(w) > 4 and w.isalpha()]
    if not candidates:
        return text
    for i in rng.sample(candidates, min(len(candidates), rng.choice([1, 1, 2]))):
        w = words[i]
        j = rng.randrange(1, len(w) - 2)
        kind = rng.randrange(3)
        if kind == 0:  # swap neighbours
            w = w[:j] + w[j + 1] + w[j] + w[j + 2 :]
        elif kind == 1:  # drop a letter
            w = w[:j] + w[j + 1 :]
        else:  # double a letter
            w = w[:j] + w[j] + w[j:]
        words[i] = w
    return " ".join(words)


def _vary(text: str, rng: random.Random, typo_rate: float, polite: bool = True) -> str:
    if polite:
        greeting = rng.choice(GREETINGS)
        if greeting and not text.startswith(("I ", "I'")):
            text = text[0].lower() + text[1:]
        text = greeting + text + rng.choice(SIGN_OFFS)
    if rng.random() < 0.12:
        text = text.lower()
    if rng.random() < typo_rate:
        text = _typo(text, rng)
    return text


def _fill(template: str, s: dict[str, str]) -> str:
    return template.format_map(s)


# --------------------------------------------------------------------------------------------------
# Healthy support_bot topics: user templates, answers, optional follow-ups (short last turns).
# --------------------------------------------------------------------------------------------------

SUPPORT_TOPICS: list[dict] = PHRASES["SUPPORT_TOPICS"]

# --------------------------------------------------------------------------------------------------
# Healthy sql_assistant topics: question templates, SQL and explanation.
# --------------------------------------------------------------------------------------------------

SQL_TOPICS: list[dict] = PHRASES["SQL_TOPICS"]

# --------------------------------------------------------------------------------------------------
# Healthy summariser topics: document sentence pools and a summary.
# --------------------------------------------------------------------------------------------------

SUMMARY_INSTRUCTIONS = PHRASES["SUMMARY_INSTRUCTIONS"]

# Sentences starting with "?" are optional details the summary does not rely on; the others are always
# in the document, so a healthy summary never states a fact the document lacks.
DOC_TOPICS: list[dict] = PHRASES["DOC_TOPICS"]

# --------------------------------------------------------------------------------------------------
# Failure family content
# --------------------------------------------------------------------------------------------------

# Each family keeps its subject (the product, the destination, the category) and varies everything else:
# wording, word order, politeness, names, numbers, typos. That is what a recurring production failure
# looks like, and it keeps paraphrases of one family close in embedding space (all-MiniLM-L6-v2 cosine
# mostly 0.7-0.95) while families stay apart.
REFUND_PRODUCTS = ["espresso machine", "espresso maker", "coffee machine"]
TRACKING_CITIES = ["Toronto", "Montreal", "Vancouver", "Calgary", "Ottawa"]
HIERARCHY_CATEGORIES = ["Electronics", "Consumer Electronics"]

REFUND_USER = PHRASES["REFUND_USER"]
REFUND_ANSWER = PHRASES["REFUND_ANSWER"]
REFUND_COMMENTS = PHRASES["REFUND_COMMENTS"]
REFUND_CORRECTED = PHRASES["REFUND_CORRECTED"]

TRACKING_USER = PHRASES["TRACKING_USER"]
TRACKING_ANSWER = PHRASES["TRACKING_ANSWER"]
TRACKING_COMMENTS = PHRASES["TRACKING_COMMENTS"]
TRACKING_CORRECTED = PHRASES["TRACKING_CORRECTED"]

CANCEL_USER = PHRASES["CANCEL_USER"]
CANCEL_TURN1 = PHRASES["CANCEL_TURN1"]
CANCEL_TURN1_ANSWER = (
    "I'm sorry to see you go! I can cancel your {plan} plan at the end of the current billing period on "
    "{future_date}. Shall I go ahead?"
)
CANCEL_SHORT = ["yes please", "yes, do it", "ok go ahead", "yes cancel it", "yep"]
CANCEL_COMMENTS = ["It just returned nothing", "blank answer", "No reply from the bot"]

MULTILINGUAL_USER = PHRASES["MULTILINGUAL_USER"]
PROVIDER_ERRORS = {int(code): error for code, error in PHRASES["PROVIDER_ERRORS"].items()}  # JSON keys are text

WINDOW_USER = PHRASES["WINDOW_USER"]
WINDOW_SQL = PHRASES["WINDOW_SQL"]

BUCKET_USER = PHRASES["BUCKET_USER"]

HIERARCHY_USER = PHRASES["HIERARCHY_USER"]
HIERARCHY_SQL = PHRASES["HIERARCHY_SQL"]

CONTRACT_INSTRUCTIONS = PHRASES["CONTRACT_INSTRUCTIONS"]
# (clause text, clause summary)
CONTRACT_CLAUSES = PHRASES["CONTRACT_CLAUSES"]

MEDICAL_INSTRUCTIONS = PHRASES["MEDICAL_INSTRUCTIONS"]
# (analyte, unit, low, high, typical low, typical high, decimals)
ANALYTES = PHRASES["ANALYTES"]

SALES_INSTRUCTIONS = PHRASES["SALES_INSTRUCTIONS"]
# (line template, true action item or None)
SALES_LINES = PHRASES["SALES_LINES"]
SALES_BAD_ITEMS = PHRASES["SALES_BAD_ITEMS"]
SALES_COMMENTS = PHRASES["SALES_COMMENTS"]

# --------------------------------------------------------------------------------------------------
# Generation
# --------------------------------------------------------------------------------------------------


@dataclass
class _Case:
    """The model-facing part of a trace: what was asked and what came back."""

    messages: list[dict]  # without the system message
    output: str | None
    finish_reason: str = "stop"
    corrected: str | None = None


def _user(text: str) -> dict:
    return {"role": "user", "content": text}


def _assistant(text: str) -> dict:
    return {"role": "assistant", "content": text}


def _healthy_support(rng: random.Random, s: dict[str, str]) -> _Case:
    topic = rng.choice(SUPPORT_TOPICS)
    question = _vary(_fill(rng.choice(topic["user"]), s), rng, 0.15)
    answer = _fill(rng.choice(topic["answer"]), s)
    if topic["followups"] and rng.random() < MULTI_TURN_RATE:
        short, reply = rng.choice(topic["followups"])
        short = short.lower() if rng.random() < 0.7 else short.capitalize()
        return _Case([_user(question), _assistant(answer), _user(short)], _fill(reply, s))
    return _Case([_user(question)], answer)


def _sql_json(sql: str, explanation: str) -> str:
    return json.dumps({"sql": sql, "explanation": explanation}, ensure_ascii=False)


def _healthy_sql(rng: random.Random, s: dict[str, str]) -> _Case:
    topic = rng.choice(SQL_TOPICS)
    question = _vary(_fill(rng.choice(topic["user"]), s), rng, 0.15, polite=rng.random() < 0.3)
    return _Case([_user(question)], _sql_json(_fill(topic["sql"], s), _fill(topic["explanation"], s)))


def _document(rng: random.Random, pool: list[str], s: dict[str, str]) -> str:
    """All required sentences plus a random subset of the optional ones ("?"), in order."""
    kept = [line for line in pool if not line.startswith("?") or rng.random() < 0.5]
    return " ".join(_fill(line.removeprefix("?"), s) for line in kept)


def _summary_request(rng: random.Random, instructions: list[str], s: dict[str, str], doc: str) -> str:
    instruction = _fill(rng.choice(instructions), s)
    if rng.random() < 0.1:
        instruction = _typo(instruction, rng)
    sep = rng.choice(["\n\n", "\n", "\n\n---\n"])
    return f"{instruction}{sep}{doc}"


def _healthy_summary(rng: random.Random, s: dict[str, str]) -> _Case:
    topic = rng.choice(DOC_TOPICS)
    doc = _document(rng, topic["doc"], s)
    return _Case([_user(_summary_request(rng, SUMMARY_INSTRUCTIONS, s, doc))], _fill(topic["summary"], s))


def _refund(rng: random.Random, s: dict[str, str]) -> _Case:
    s["product"] = rng.choice(REFUND_PRODUCTS)
    question = _vary(_fill(rng.choice(REFUND_USER), s), rng, 0.15)
    return _Case([_user(question)], _fill(rng.choice(REFUND_ANSWER), s), corrected=_fill(REFUND_CORRECTED, s))


def _tracking(rng: random.Random, s: dict[str, str]) -> _Case:
    s["country"], s["city"] = "Canada", rng.choice(TRACKING_CITIES)
    question = _vary(_fill(rng.choice(TRACKING_USER), s), rng, 0.15)
    answer = _fill(rng.choice(TRACKING_ANSWER), s)
    return _Case([_user(question)], answer, corrected=_fill(TRACKING_CORRECTED, s))


def _cancel(rng: random.Random, s: dict[str, str]) -> _Case:
    if rng.random() < 0.3:
        first = _vary(_fill(rng.choice(CANCEL_TURN1), s), rng, 0.15)
        messages = [_user(first), _assistant(_fill(CANCEL_TURN1_ANSWER, s)), _user(rng.choice(CANCEL_SHORT))]
        return _Case(messages, "")
    return _Case([_user(_vary(_fill(rng.choice(CANCEL_USER), s), rng, 0.15))], "")


def _multilingual(rng: random.Random, s: dict[str, str]) -> _Case:
    text = _fill(rng.choice(MULTILINGUAL_USER), s)
    if rng.random() < 0.2:
        text = _typo(text, rng)
    return _Case([_user(text)], None)


def _window(rng: random.Random, s: dict[str, str]) -> _Case:
    template = rng.choice(WINDOW_USER)
    question = _vary(_fill(template, s), rng, 0.15, polite=rng.random() < 0.4)
    where = ""
    if "{year}" in template:
        where = f"\nWHERE year(order_date) = {s['year']}"
    elif "{date}" in template:
        where = f"\nWHERE order_date >= DATE '{s['date']}'"
    elif "{status}" in template:
        where = f"\nWHERE status = '{s['status']}'"
    sql = WINDOW_SQL.format(where=where)
    explanation = (
        "SUM() OVER a window partitioned by customer and ordered by date adds up each customer's orders so far."
    )
    style = rng.randrange(4)
    if style == 0:
        output = f"```sql\n{sql}\n```"
    elif style == 1:
        output = f"Sure! Here's a query using a window function:\n\n{sql}\n\n{explanation}"
    elif style == 2:
        output = f"```json\n{_sql_json(sql, explanation)}\n```"
    else:
        output = "{'sql': " + repr(sql) + ", 'explanation': " + repr(explanation) + "}"
    return _Case([_user(question)], output)


def _bucketing(rng: random.Random, s: dict[str, str]) -> _Case:
    template = rng.choice(BUCKET_USER)
    question = _vary(_fill(template, s), rng, 0.15, polite=rng.random() < 0.4)
    unit = "week" if "week" in template else "month"
    where = ""
    if "{year}" in template:
        where = f" WHERE year(order_date) = {s['year']}"
    elif "{date}" in template:
        where = f" WHERE order_date >= DATE '{s['date']}'"
    elif "{n}" in template:
        where = f" WHERE order_date >= current_date - INTERVAL {s['n']} WEEK"
    sql = (
        f"SELECT date_trunc('{unit}', order_date) AS {unit}, COUNT(*) AS orders FROM orders{where} "
        "GROUP BY 1 ORDER BY 1"
    )
    explanation = f"date_trunc('{unit}', ...) buckets each order into its {unit}, then counts the orders in each."
    style = rng.randrange(4)
    if style == 0:
        payload: dict = {"sql": sql, "explanation": explanation, "dialect": "duckdb"}
    elif style == 1:
        payload = {"sql": sql}
    elif style == 2:
        payload = {"sql": "", "explanation": explanation}
    else:
        payload = {"query": sql, "explanation": explanation}
    return _Case([_user(question)], json.dumps(payload, ensure_ascii=False))


def _hierarchy(rng: random.Random, s: dict[str, str]) -> _Case:
    s["category"] = rng.choice(HIERARCHY_CATEGORIES)
    question = _vary(_fill(rng.choice(HIERARCHY_USER), s), rng, 0.15, polite=rng.random() < 0.4)
    explanation = (
        f"A recursive CTE starts at '{s['category']}' and repeatedly joins categories on parent_id to "
        "collect every descendant with its depth."
    )
    return _Case([_user(question)], _sql_json(_fill(HIERARCHY_SQL, s), explanation))


def _contract(rng: random.Random, s: dict[str, str]) -> _Case:
    k = rng.randint(6, 8)
    clauses = [CONTRACT_CLAUSES[i] for i in sorted(rng.sample(range(len(CONTRACT_CLAUSES)), k))]
    title = rng.choice(["MASTER SERVICES AGREEMENT", "SERVICES AGREEMENT", "CONSULTING AGREEMENT"])
    preamble = (
        f'{title}. This Agreement (the "Agreement") is made on {s["date_long"]}, {s["year"]} between '
        f'{s["company"]} ("Provider") and {s["company2"]} ("Client").'
    )
    doc = "\n".join([preamble, *(_fill(text, s) for text, _ in clauses)])
    full = " ".join(
        [f"This is a {title.lower()} between {s['company']} as provider and {s['company2']} as client."]
        + [_fill(summary, s) for _, summary in clauses]
    )
    # Cut mid-sentence at a word boundary, well before the end: the model ran out of tokens.
    cut_at = full.rfind(" ", 0, int(len(full) * rng.uniform(0.55, 0.8)))
    output = full[:cut_at].rstrip(".,;: ")
    return _Case([_user(_summary_request(rng, CONTRACT_INSTRUCTIONS, s, doc))], output, finish_reason="length")


def _fmt_value(value: float, decimals: int) -> str:
    return f"{value:.{decimals}f}"


def _medical(rng: random.Random, s: dict[str, str]) -> _Case:
    analytes = [ANALYTES[i] for i in sorted(rng.sample(range(len(ANALYTES)), rng.randint(6, 9)))]
    lines = [
        f"LABORATORY REPORT. Patient: {s['name']} {s['surname']}, age {s['age']}. Sample collected "
        f"{s['date']}, fasting. Requested by Dr {rng.choice(SURNAMES)}."
    ]
    flagged = []
    for name, unit, low, high, t_low, t_high, dec in analytes:
        value = round(rng.uniform(t_low, t_high), dec)
        flag = " (H)" if value > high else " (L)" if value < low else ""
        if flag:
            direction = "high" if value > high else "low"
            flagged.append(f"{name} is {direction} at {_fmt_value(value, dec)} {unit}")
        lines.append(f"{name}: {_fmt_value(value, dec)} {unit}{flag} (ref {low}-{high})")
    lines.append(
        rng.choice(
            [
                "Comment: please correlate clinically.",
                "Comment: repeat in 3 months if abnormal.",
                "Comment: sample slightly haemolysed; potassium may be overestimated.",
            ]
        )
    )
    doc = "\n".join(lines)
    if flagged:
        findings = "; ".join(flagged)
        output = (
            f"{s['name']} {s['surname']}'s blood test from {s['date']} is mostly within reference ranges. "
            f"Out of range: {findings}. The lab suggests discussing these results with the requesting doctor."
        )
    else:
        output = (
            f"All {len(analytes)} results in {s['name']} {s['surname']}'s blood test from {s['date']} are "
            "within their reference ranges, so nothing needs follow-up based on this report."
        )
    return _Case([_user(_summary_request(rng, MEDICAL_INSTRUCTIONS, s, doc))], output)


def _sales(rng: random.Random, s: dict[str, str]) -> _Case:
    picked = [SALES_LINES[0], *(SALES_LINES[i] for i in sorted(rng.sample(range(1, len(SALES_LINES)), 5)))]
    transcript = "\n".join(_fill(line, s) for line, _ in picked)
    truth = [_fill(item, s) for _, item in picked if item]
    bad = [_fill(item, s) for item in rng.sample(SALES_BAD_ITEMS, 2)]
    output = (
        f"{s['rep']} from {s['company']} and {s['name']} from {s['company2']} discussed a pilot to speed up "
        f"onboarding for {s['seats']} people. Action items: " + "; ".join(bad) + "."
    )
    corrected = (
        f"{s['company']} and {s['company2']} discussed a 30-day pilot; pricing has no special terms yet. "
        "Action items: " + ("; ".join(truth) if truth else "none agreed") + "."
    )
    request = _summary_request(rng, SALES_INSTRUCTIONS, s, transcript)
    return _Case([_user(request)], output, corrected=corrected)


FAMILY_BUILDERS = {
    "refund_policy_hallucination": _refund,
    "order_tracking_international": _tracking,
    "cancel_subscription_loop": _cancel,
    "multilingual_support_outage": _multilingual,
    "window_function_sql": _window,
    "date_bucketing_sql": _bucketing,
    "category_hierarchy_sql": _hierarchy,
    "long_contract_summary": _contract,
    "medical_report_summary": _medical,
    "sales_call_action_items": _sales,
}
HEALTHY_BUILDERS = {
    "support_bot": _healthy_support,
    "sql_assistant": _healthy_sql,
    "summariser": _healthy_summary,
}

POSITIVE_COMMENTS = ["Thanks, that worked!", "Quick and clear", "helpful", "Perfect", "Great summary", "Spot on"]


def _tokens(text: str) -> int:
    return max(1, round(len(text) / 4))


def _hex(rng: random.Random, n: int) -> str:
    return f"{rng.getrandbits(4 * n):0{n}x}"


def _healthy_latency(rng: random.Random, app: str) -> float:
    cfg = APPS[app]
    return cfg["latency_median_ms"] * math.exp(rng.gauss(0.0, cfg["latency_sigma"]))


def _latency_within_budget(rng: random.Random, app: str) -> float:
    budget = APPS[app]["latency_budget_ms"]
    while True:
        value = _healthy_latency(rng, app)
        if value < 0.85 * budget:
            return value


class _Generator:
    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        self.history: dict[str, list[_Case]] = {name: [] for name in FAILURE_FAMILIES}
        self.kind_offset = 0  # malformed kinds rotate across days so every kind shows up in a week
        self.share_scale = 1.0  # multiplies every family's share (bulk mode sets the failure rate with it)

    # ---- one record -------------------------------------------------------------------------------

    def record(self, scenario: str, ts: datetime, day: date) -> dict:
        rng = self.rng
        s = _slots(rng, day)
        if scenario == "healthy":
            app = rng.choices(list(APPS), weights=[a["share"] for a in APPS.values()])[0]
            case = HEALTHY_BUILDERS[app](rng, s)
        else:
            family = FAILURE_FAMILIES[scenario]
            app = family["app"]
            earlier = self.history[scenario]
            if earlier and rng.random() < REPEAT_RATE:
                case = rng.choice(earlier)
            else:
                case = FAMILY_BUILDERS[scenario](rng, s)
                earlier.append(case)
        cfg = APPS[app]
        request: dict = {
            "model": cfg["model"],
            "messages": [{"role": "system", "content": cfg["system"]}, *case.messages],
            "temperature": cfg["temperature"],
        }
        if "max_tokens" in cfg:
            request["max_tokens"] = cfg["max_tokens"]

        signal = FAILURE_FAMILIES[scenario]["signal"] if scenario != "healthy" else None
        error = None
        if signal == "provider_error":
            code = rng.choice([500, 500, 503])
            error = {"type": PROVIDER_ERRORS[code][0], "code": code, "message": PROVIDER_ERRORS[code][1]}
            latency = rng.uniform(80, 2500)
        elif scenario == "healthy" and rng.random() < HEALTHY_TRANSIENT_ERROR_RATE:
            code = rng.choice([429, 502])
            error = {"type": PROVIDER_ERRORS[code][0], "code": code, "message": PROVIDER_ERRORS[code][1]}
            latency = rng.uniform(40, 900)
        elif signal == "latency":
            latency = rng.uniform(15000, 40000) if app == "summariser" else rng.uniform(9000, 30000)
        elif scenario == "healthy":
            latency = _healthy_latency(rng, app)
        else:
            latency = _latency_within_budget(rng, app)

        response = None
        if error is None:
            output = case.output or ""
            prompt_tokens = sum(_tokens(m["content"]) + 4 for m in request["messages"])
            completion_tokens = cfg.get("max_tokens", 0) if case.finish_reason == "length" else _tokens(output)
            if not output:
                completion_tokens = 1
            response = {
                "id": f"chatcmpl-{_hex(rng, 24)}",
                "model": cfg["response_model"],
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": output},
                        "finish_reason": case.finish_reason,
                    }
                ],
                "usage": {
                    "prompt_tokens": prompt_tokens,
                    "completion_tokens": completion_tokens,
                    "total_tokens": prompt_tokens + completion_tokens,
                },
            }

        feedback = None if error else self._feedback(scenario, signal, case)
        return {
            "id": f"tr_{_hex(rng, 16)}",
            "timestamp": ts.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ts.microsecond // 1000:03d}Z",
            "app": app,
            "request": request,
            "response": response,
            "latency_ms": round(latency, 1),
            "error": error,
            "feedback": feedback,
            "metadata": {
                "user_id": f"u_{rng.randint(1, 1800):04d}",
                "session_id": f"s_{_hex(rng, 12)}",
                "env": "prod",
                "scenario": scenario,
            },
        }

    def _feedback(self, scenario: str, signal: str | None, case: _Case) -> dict | None:
        rng = self.rng
        if scenario == "healthy":
            if rng.random() >= HEALTHY_FEEDBACK_RATE:
                return None
            fb: dict = {"thumbs": "up"}
            if rng.random() < 0.6:
                fb["rating"] = rng.choice([4, 5, 5])
            if rng.random() < 0.3:
                fb["comment"] = rng.choice(POSITIVE_COMMENTS)
            return fb
        if signal == "feedback":
            comments = {
                "refund_policy_hallucination": REFUND_COMMENTS,
                "order_tracking_international": TRACKING_COMMENTS,
                "sales_call_action_items": SALES_COMMENTS,
            }[scenario]
            fb = {"thumbs": "down"}
            if rng.random() < 0.8:
                fb["rating"] = rng.choice([1, 1, 2])
            comment = rng.choice(comments)
            if comment and rng.random() < 0.7:
                fb["comment"] = comment
            if case.corrected and rng.random() < 0.35:
                fb["corrected_output"] = case.corrected
            return fb
        if scenario == "cancel_subscription_loop" and rng.random() < 0.2:
            return {"thumbs": "down", "comment": rng.choice(CANCEL_COMMENTS)}
        return None

    # ---- one day ----------------------------------------------------------------------------------

    def _timestamp(self, day: date) -> datetime:
        rng = self.rng
        # Diurnal load: quiet at night (UTC), busiest in the European/US working day.
        hour = rng.choices(
            range(24), weights=[2, 1, 1, 1, 1, 2, 3, 5, 7, 8, 9, 9, 9, 9, 10, 10, 9, 8, 7, 6, 5, 4, 3, 2]
        )[0]
        start = datetime(day.year, day.month, day.day, tzinfo=UTC)
        return start + timedelta(hours=hour, milliseconds=rng.randrange(3_600_000))

    def day_lines(self, day: date, per_day: int) -> list[str]:
        rng = self.rng
        scenarios: list[str] = []
        for name, family in FAILURE_FAMILIES.items():
            expected = per_day * family["share"] * self.share_scale
            scenarios += [name] * int(expected * rng.uniform(0.6, 1.4) + rng.random())
        scenarios = scenarios[:per_day]
        scenarios += ["healthy"] * (per_day - len(scenarios))
        rng.shuffle(scenarios)

        n_late = max(1, round(per_day * LATE_RATE)) if per_day >= 20 else 0
        next_midnight = datetime(day.year, day.month, day.day, tzinfo=UTC) + timedelta(days=1)
        stamps = sorted(self._timestamp(day) for _ in range(per_day - n_late))
        stamps += sorted(next_midnight + timedelta(milliseconds=rng.randrange(20 * 60_000)) for _ in range(n_late))

        # Generate in request order (repeats refer to earlier inputs), write in logging order.
        records = [self.record(sc, ts, day) for sc, ts in zip(scenarios, stamps, strict=True)]
        logged = sorted(
            zip(stamps, records, strict=True), key=lambda p: p[0] + timedelta(milliseconds=p[1]["latency_ms"])
        )
        lines = [_dumps(r) for _, r in logged]
        return self._insert_malformed(lines, [ts for ts, _ in logged], day)

    def _insert_malformed(self, lines: list[str], stamps: list[datetime], day: date) -> list[str]:
        """Insert 2-4 broken lines among the good ones; kinds rotate so a week shows every kind."""
        rng = self.rng
        count = min(rng.randint(2, 4), len(lines) - 1)
        if count < 1:
            return lines
        kinds = [MALFORMED_KINDS[(self.kind_offset + j) % len(MALFORMED_KINDS)] for j in range(count)]
        self.kind_offset += count
        positions = sorted(rng.sample(range(1, len(lines)), count), reverse=True)
        for kind, pos in zip(kinds, positions, strict=True):
            ts = stamps[pos - 1]  # logged next to its neighbour
            record = self.record("healthy", ts, day)
            record["metadata"]["malformed"] = kind
            if kind == "truncated_json":
                full = _dumps(record)
                line = full[: len(full) // 2]
            elif kind == "log_noise":
                line = (
                    f"{ts.strftime('%Y-%m-%d %H:%M:%S')},{rng.randrange(1000):03d} WARNING llm-gateway: "
                    f"upstream connection reset by peer (retrying {rng.randint(1, 3)}/3) "
                    f"request_id=req_{_hex(rng, 12)}"
                )
            elif kind == "missing_timestamp":
                del record["timestamp"]
                line = _dumps(record)
            elif kind == "messages_not_list":
                record["request"]["messages"] = record["request"]["messages"][-1]["content"]
                line = _dumps(record)
            else:  # latency_not_numeric
                record["latency_ms"] = rng.choice(["n/a", "1.2s", "timeout", "NaNms"])
                line = _dumps(record)
            lines.insert(pos, line)
        return lines


def _dumps(record: dict) -> str:
    return json.dumps(record, ensure_ascii=False, separators=(",", ":"))


# --------------------------------------------------------------------------------------------------
# Public API
# --------------------------------------------------------------------------------------------------


def generate_traffic(days: int = 7, per_day: int = 500, seed: int = 7, start: date = DEFAULT_START) -> dict[str, bytes]:
    """file name -> file bytes. Deterministic: same args -> byte-identical output.

    One JSONL file per day (`traces-YYYY-MM-DD.jsonl`), the last one gzipped (`.jsonl.gz`, mtime 0).
    Each day holds `per_day` traces plus 2-4 malformed lines; about 1% of a day's traces carry a
    timestamp in the first minutes of the next day (logged late).
    """
    if days < 1 or per_day < 1:
        raise ValueError(f"days and per_day must be at least 1, got days={days}, per_day={per_day}")
    gen = _Generator(seed)
    files: dict[str, bytes] = {}
    for i in range(days):
        day = start + timedelta(days=i)
        data = ("\n".join(gen.day_lines(day, per_day)) + "\n").encode("utf-8")
        name = f"traces-{day.isoformat()}.jsonl"
        if i == days - 1:
            files[name + ".gz"] = gzip.compress(data, compresslevel=9, mtime=0)
        else:
            files[name] = data
    return files


def write_traffic(
    out_dir: Path,
    days: int = 7,
    per_day: int = 500,
    seed: int = 7,
    start: date = DEFAULT_START,
) -> list[Path]:
    """Write the files into out_dir (created if needed) and return their paths."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, data in generate_traffic(days=days, per_day=per_day, seed=seed, start=start).items():
        path = out_dir / name
        path.write_bytes(data)
        paths.append(path)
    return paths


FAMILY_SHARE = sum(f["share"] for f in FAILURE_FAMILIES.values())
"""Share of the default traffic that comes from failure families (about 0.1)."""


def write_bulk_day(
    out_dir: Path,
    traces: int,
    seed: int = 7,
    day: date = DEFAULT_START,
    family_share: float = 0.037,
    chunk: int = 20_000,
) -> Path:
    """One day of `traces` traces as one JSONL file, written in chunks so memory stays flat at any size.

    For benchmarks at production scale (`eval-loop bench`). Each chunk is a `generate_traffic` day of
    `chunk` traces (same apps, families, exact repeats, paraphrases, feedback, latency tail, late and
    malformed lines), so the file is in logging order within each chunk only. `family_share` is the
    share of traffic from failure families (default 0.037: with the healthy traffic's own slow and
    errored calls, about 5% of traces fail). Deterministic for the same arguments. This does not
    change `generate_traffic`, whose bytes the committed sample pins.
    """
    if traces < 1 or chunk < 1:
        raise ValueError(f"traces and chunk must be at least 1, got traces={traces}, chunk={chunk}")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    gen = _Generator(seed)
    gen.share_scale = family_share / FAMILY_SHARE
    path = out_dir / f"traces-{day.isoformat()}.jsonl"
    tmp = path.with_name(path.name + ".part")
    with tmp.open("w", encoding="utf-8") as handle:
        left = traces
        while left > 0:
            n = min(chunk, left)
            handle.write("\n".join(gen.day_lines(day, n)) + "\n")
            left -= n
    tmp.replace(path)
    return path


if __name__ == "__main__":  # pragma: no cover
    target = Path(sys.argv[1]) if len(sys.argv) > 1 else SAMPLE_DIR
    for written in write_traffic(target):
        print(f"{written}  {written.stat().st_size:,} bytes")
