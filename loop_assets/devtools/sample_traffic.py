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

DEFAULT_START = date(2026, 11, 16)
SAMPLE_DIR = Path(__file__).resolve().parents[2] / "data" / "sample"

# --------------------------------------------------------------------------------------------------
# Apps
# --------------------------------------------------------------------------------------------------

SUPPORT_SYSTEM = (
    "You are Nimbus, support assistant of the Northwind Home & Outdoor shop. Be concise. Returns: unopened "
    "items 60 days, opened items 30 days from delivery, then only store credit or warranty repair. Never "
    "invent order details."
)
SQL_SYSTEM = (
    "Write DuckDB SQL for the Northwind warehouse. Tables: customers(customer_id,name,email,country,"
    "signup_date), orders(order_id,customer_id,order_date,status,total_amount), order_items(order_id,"
    "product_id,quantity,unit_price), products(product_id,name,category_id,price,stock), categories("
    "category_id,name,parent_id), payments(payment_id,order_id,method,amount,paid_at). "
    'Reply with only a JSON object {"sql": "...", "explanation": "..."}.'
)
SUMMARISER_SYSTEM = (
    "You summarise documents for busy readers. Write a faithful summary of at most five sentences and "
    "do not add facts that are not in the document."
)

APPS: dict[str, dict] = {
    "support_bot": {
        "model": "gpt-4o-mini",
        "response_model": "gpt-4o-mini-2024-07-18",
        "temperature": 0.3,
        "system": SUPPORT_SYSTEM,
        "latency_budget_ms": 8000,
        "latency_median_ms": 1400.0,
        "latency_sigma": 0.75,
        "share": 0.45,
    },
    "sql_assistant": {
        "model": "gpt-4o",
        "response_model": "gpt-4o-2024-08-06",
        "temperature": 0.0,
        "system": SQL_SYSTEM,
        "latency_budget_ms": 6000,
        "latency_median_ms": 1500.0,
        "latency_sigma": 0.6,
        "share": 0.30,
    },
    "summariser": {
        "model": "gpt-4o-mini",
        "response_model": "gpt-4o-mini-2024-07-18",
        "temperature": 0.2,
        "max_tokens": 256,
        "system": SUMMARISER_SYSTEM,
        "latency_budget_ms": 12000,
        "latency_median_ms": 3000.0,
        "latency_sigma": 0.6,
        "share": 0.25,
    },
}

# --------------------------------------------------------------------------------------------------
# Failure families: one app, one dominant signal, one underlying request each.
# `share` is the expected fraction of all traffic. Signal names match eval_loop.yaml severity_weights.
# --------------------------------------------------------------------------------------------------

FAILURE_FAMILIES: dict[str, dict] = {
    "refund_policy_hallucination": {
        "app": "support_bot",
        "signal": "feedback",
        "share": 0.010,
        "description": "Refund for an opened item after 30 days: the bot invents a 90-day policy; "
        "thumbs down, rating 1-2, sometimes a corrected answer.",
    },
    "order_tracking_international": {
        "app": "support_bot",
        "signal": "feedback",
        "share": 0.010,
        "description": "International order stuck in customs: the bot claims it was delivered or gives "
        "domestic timelines; thumbs down.",
    },
    "cancel_subscription_loop": {
        "app": "support_bot",
        "signal": "empty_output",
        "share": 0.010,
        "description": "Cancelling a subscription (some as 'yes please' after a confirmation turn): the "
        "answer is empty with finish_reason stop.",
    },
    "multilingual_support_outage": {
        "app": "support_bot",
        "signal": "provider_error",
        "share": 0.011,
        "description": "Double-charge billing questions in Spanish, German or French: the provider "
        "returns 500/503 and no response.",
    },
    "window_function_sql": {
        "app": "sql_assistant",
        "signal": "json_schema",
        "share": 0.010,
        "description": "Running total of spend per customer: the answer is markdown-fenced SQL or prose, "
        "not a JSON object.",
    },
    "date_bucketing_sql": {
        "app": "sql_assistant",
        "signal": "json_schema",
        "share": 0.010,
        "description": "Orders or revenue per week/month: valid JSON of the wrong shape (extra key, "
        "missing explanation, empty sql, wrong key).",
    },
    "category_hierarchy_sql": {
        "app": "sql_assistant",
        "signal": "latency",
        "share": 0.008,
        "description": "All subcategories under a category at any depth (recursive CTE): a correct "
        "answer that takes 9-30 s against a 6 s budget.",
    },
    "long_contract_summary": {
        "app": "summariser",
        "signal": "truncated_output",
        "share": 0.010,
        "description": "Summarise a services contract: the summary stops mid-sentence with finish_reason length.",
    },
    "medical_report_summary": {
        "app": "summariser",
        "signal": "latency",
        "share": 0.009,
        "description": "Summarise a lab report: a good summary that takes 15-40 s against a 12 s budget.",
    },
    "sales_call_action_items": {
        "app": "summariser",
        "signal": "feedback",
        "share": 0.009,
        "description": "Summarise a sales call with action items: the summary invents commitments "
        "(discounts, dates); thumbs down, sometimes a corrected answer.",
    },
}

REPEAT_RATE = 0.2  # share of failure-family inputs that repeat an earlier input of the family exactly
HEALTHY_FEEDBACK_RATE = 0.14
HEALTHY_TRANSIENT_ERROR_RATE = 0.003
LATE_RATE = 0.01  # records in a day's file whose timestamp is in the first minutes of the next day
MULTI_TURN_RATE = 0.22  # healthy support_bot conversations (on topics with follow-ups) with earlier turns

MALFORMED_KINDS = (
    "truncated_json",
    "log_noise",
    "missing_timestamp",
    "messages_not_list",
    "latency_not_numeric",
)

# --------------------------------------------------------------------------------------------------
# Slot values
# --------------------------------------------------------------------------------------------------

FIRST_NAMES = [
    "Alice", "Bilal", "Chen", "Dana", "Emeka", "Fatima", "Greta", "Hiro", "Ines", "Jonas", "Kofi",
    "Leila", "Marco", "Nadia", "Oskar", "Priya", "Quentin", "Rosa", "Sven", "Tariq", "Uma", "Victor",
    "Wen", "Yusuf", "Zoe", "Aiko", "Bruno", "Clara", "Diego", "Elif",
]  # fmt: skip
SURNAMES = [
    "Okafor", "Lindqvist", "Moreau", "Tanaka", "Rossi", "Novak", "Haddad", "Schmidt", "Kowalski",
    "Fernandes", "Nguyen", "O'Brien", "Petrov", "Sato", "Mensah", "Larsen", "Ibrahim", "Costa",
]  # fmt: skip
COMPANIES = [
    "Acme Logistics", "Brightwave Media", "Cobalt Health", "Driftwood Analytics", "Evergreen Foods",
    "Fjord Robotics", "Granite Insurance", "Helios Energy", "Ivory Labs", "Juniper Retail",
    "Kestrel Software", "Lumen Bank", "Meridian Travel", "Northstar Freight", "Orchid Pharma",
    "Pinecone Systems", "Quartz Telecom", "Redwood Legal", "Solstice Hotels", "Tidal Payments",
]  # fmt: skip
PRODUCTS = [
    "blender", "espresso machine", "air fryer", "camping tent", "hiking backpack", "robot vacuum",
    "standing desk", "office chair", "rain jacket", "trail running shoes", "cast iron skillet",
    "electric kettle", "sleeping bag", "bike helmet", "garden hose", "cordless drill", "duvet set",
    "table lamp", "water filter jug", "kayak paddle", "smart thermostat", "knife set",
]  # fmt: skip
COUNTRIES = [
    ("Canada", "Toronto"), ("Australia", "Melbourne"), ("Japan", "Osaka"), ("Brazil", "São Paulo"),
    ("Norway", "Bergen"), ("South Africa", "Cape Town"), ("Mexico", "Guadalajara"), ("India", "Pune"),
    ("the UK", "Manchester"), ("Switzerland", "Zurich"), ("New Zealand", "Wellington"),
    ("Singapore", "Singapore"), ("Ireland", "Cork"), ("Chile", "Santiago"),
]  # fmt: skip
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

SUPPORT_TOPICS: list[dict] = [
    {
        "topic": "password_reset",
        "user": [
            "I forgot my password and the reset email never arrives.",
            "How do I reset my password? I'm locked out of my account.",
            "Can't log in, it says my password is wrong. How can I change it?",
            "The password reset link says it expired. What now?",
            "I need a new password for the account under {email}.",
        ],
        "answer": [
            "Sorry about that! Go to Sign in > Forgot password and enter {email}. The link is valid for "
            "30 minutes; if it doesn't show up within 5 minutes, check your spam folder or add "
            "support@northwind.example to your contacts and try again.",
            "You can reset it from the sign-in page: click 'Forgot password', enter your account email and "
            "follow the link we send. Links expire after 30 minutes, so request a fresh one if needed.",
        ],
        "followups": [
            (
                "still nothing",
                "I've just triggered a new reset email to {email}. If it's still missing "
                "in 10 minutes, reply here and I'll send you a one-time sign-in code instead.",
            ),
            ("ok got it, thanks", "Great, you're all set! Let me know if anything else comes up."),
        ],
    },
    {
        "topic": "change_delivery_address",
        "user": [
            "Can I change the delivery address on order {order}? I'm moving next week.",
            "I typed the wrong street on my order, can you fix the address before it ships?",
            "Is it possible to send order {order} to my office in {us_city} instead?",
            "I need to update the shipping address for my last order.",
        ],
        "answer": [
            "Yes, as long as the order hasn't shipped. Order {order} is still being packed, so you can "
            "change the address under Orders > {order} > Edit delivery. Would you like me to do it for you?",
            "If the parcel hasn't left our warehouse you can edit the address in Orders > Edit delivery. "
            "Once it has shipped, the carrier's redirect option is the way to go.",
        ],
        "followups": [
            ("yes please", "Done! Please reply with the new address and I'll update order {order} straight away."),
            (
                "what about the other one?",
                "Your other open order has already shipped, so it can't be edited "
                "here, but you can redirect it from the carrier's tracking page.",
            ),
        ],
    },
    {
        "topic": "update_payment_method",
        "user": [
            "How do I update the card on my account? My old one expired.",
            "I want to pay with PayPal instead of my credit card next time.",
            "Where can I change my saved payment method?",
            "my card expired, how do i add a new one",
        ],
        "answer": [
            "Go to Account > Payment methods, click 'Add card' and set the new card as default. You can "
            "remove the expired one from the same page.",
            "You can add PayPal or a new card under Account > Payment methods and mark it as default; it "
            "will be used for your next order.",
        ],
        "followups": [
            (
                "and for my subscription too?",
                "Yes: the default payment method is also used for your "
                "{plan} plan renewals, so nothing else to change.",
            ),
        ],
    },
    {
        "topic": "invoice_download",
        "user": [
            "Where can I download the invoice for order {order}?",
            "I need a VAT invoice for my company for my last purchase.",
            "Can you send me a PDF receipt for the {product} I bought on {date_long}?",
            "How do I get an invoice with my company name on it?",
        ],
        "answer": [
            "Open Orders, select {order} and click 'Download invoice' to get the PDF. To add a company name "
            "or VAT number, edit your billing details first and the invoice is regenerated.",
            "Invoices are under Orders > (your order) > Download invoice. If you need a company name on it, "
            "add it in Account > Billing details before downloading.",
        ],
        "followups": [
            ("can you email it to me?", "Of course, I've sent the invoice for order {order} to {email}."),
        ],
    },
    {
        "topic": "discount_code",
        "user": [
            "My discount code {code} isn't working at checkout.",
            "Why does it say the promo code {code} is invalid?",
            "I have a {pct}% off code but it doesn't apply to my cart.",
            "The code {code} from your newsletter gets rejected, can you help?",
        ],
        "answer": [
            "Codes like {code} apply to full-price items only and need a minimum basket of $50. If your "
            "cart has sale items, remove them and try again; the code is valid until {future_date}.",
            "That code is case-sensitive and can't be combined with other offers. If it still fails, tell "
            "me what's in your cart and I'll check eligibility.",
        ],
        "followups": [
            ("it worked, thanks!", "Brilliant, enjoy your order!"),
        ],
    },
    {
        "topic": "size_guide",
        "user": [
            "Does the {product} run true to size? I'm usually a {size}.",
            "What size should I get in the rain jacket if I'm between {size} and the next one up?",
            "Is there a size chart for your shoes?",
            "How big is the {product}? I need the dimensions.",
        ],
        "answer": [
            "Our size guide is on every product page under 'Size & fit'. Customers say it runs true to "
            "size; if you're between sizes, go up one for layering.",
            "You'll find exact measurements under 'Size & fit' on the product page. Exchanges for a "
            "different size are free within 60 days if unworn.",
        ],
        "followups": [
            (
                "what about the other one?",
                "The {colour} version uses the same pattern, so the same size advice applies.",
            ),
        ],
    },
    {
        "topic": "warranty_claim",
        "user": [
            "My {product} stopped working after {n} months. Is it under warranty?",
            "The {product} I bought last year broke, what does the warranty cover?",
            "How do I make a warranty claim for a faulty {product}?",
            "My {product} arrived with a defect. Can I get it repaired or replaced?",
        ],
        "answer": [
            "Most of our products have a 2-year warranty covering manufacturing defects. Start a claim "
            "under Orders > (your order) > Report a problem with a short video of the fault, and we'll "
            "arrange a repair or replacement.",
            "Yes, the {product} is covered for 24 months. Please submit a claim from your order page with "
            "a photo or video; repairs usually take 7-10 days.",
        ],
        "followups": [
            (
                "yes please",
                "I've opened warranty claim W-{n}88 for your {product}. You'll get a prepaid "
                "shipping label by email within a day.",
            ),
        ],
    },
    {
        "topic": "gift_card_balance",
        "user": [
            "How can I check the balance on my gift card?",
            "Can I use two gift cards on one order?",
            "I got a ${gift} gift card, does it expire?",
            "Gift card not accepted at checkout, what's wrong?",
        ],
        "answer": [
            "You can check the balance under Account > Gift cards by entering the 16-digit code. Gift "
            "cards never expire and up to two can be combined on one order.",
            "Gift cards can be combined (up to two per order) and don't expire. If one is rejected, make "
            "sure you entered the PIN from the back of the card.",
        ],
        "followups": [],
    },
    {
        "topic": "loyalty_points",
        "user": [
            "How many loyalty points do I have and how do I use them?",
            "I have {points} points, what are they worth?",
            "Why didn't I get points for order {order}?",
            "Do loyalty points expire?",
        ],
        "answer": [
            "Every 100 points is worth $1 off, and you can redeem them at checkout. Points are added 14 "
            "days after delivery and expire after 24 months of inactivity.",
            "Your balance is shown under Account > Rewards. Points for an order appear once the return "
            "window has passed, so order {order} will earn its points in a few days.",
        ],
        "followups": [
            ("can i use them on sale items?", "Yes, points can be used on any item, including sale items."),
        ],
    },
    {
        "topic": "two_factor_auth",
        "user": [
            "How do I turn on two-factor authentication?",
            "I got a new phone and lost my authenticator app, how do I log in?",
            "Can I use SMS instead of an authenticator app for 2FA?",
            "Is there a way to secure my account with a second factor?",
        ],
        "answer": [
            "Go to Account > Security > Two-factor authentication and choose an authenticator app or SMS. "
            "Save your backup codes somewhere safe.",
            "If you lost your authenticator, sign in with one of your backup codes and re-enrol the new "
            "phone under Account > Security. No backup codes? Reply here and we'll verify your identity.",
        ],
        "followups": [
            (
                "and if I don't have backup codes?",
                "Then we'll verify your identity by email and the last "
                "four digits of your card; it takes about one business day.",
            ),
        ],
    },
    {
        "topic": "store_hours",
        "user": [
            "What time does your {us_city} store open on {weekday}?",
            "Is the {us_city} shop open on public holidays?",
            "Can I pick up my online order at the {us_city} store?",
            "Where is your nearest store to {us_city}?",
        ],
        "answer": [
            "Our {us_city} store is open Monday to Saturday 9am-8pm and Sunday 10am-6pm. Click & collect "
            "orders are ready about 2 hours after you get the confirmation email.",
            "The {us_city} store opens at {hour}am on weekdays. Holiday hours are listed on the store page "
            "a week in advance.",
        ],
        "followups": [],
    },
    {
        "topic": "change_email",
        "user": [
            "How do I change the email address on my account?",
            "I want to use {email} for my account instead of my old address.",
            "Can I merge two accounts with different emails?",
        ],
        "answer": [
            "Go to Account > Profile > Email, enter the new address and confirm it with the link we send. "
            "Your order history stays with the account.",
            "Accounts can't be merged automatically, but we can move your order history to one of them. "
            "Tell me which email you'd like to keep.",
        ],
        "followups": [
            (
                "the first one",
                "Got it. I'll keep the first account and move the order history across "
                "within 24 hours; you'll get a confirmation email.",
            ),
        ],
    },
    {
        "topic": "domestic_delivery_time",
        "user": [
            "How long does standard delivery to {us_city} take?",
            "If I order today, will the {product} arrive by {weekday}?",
            "Do you offer next-day delivery?",
            "What are your shipping costs within the US?",
        ],
        "answer": [
            "Standard delivery within the US takes 3-5 business days and is free over $50. Express (1-2 "
            "days) is $9.95 if you order before 2pm.",
            "Orders placed before 2pm ship the same day; with express delivery the {product} would arrive "
            "the next business day in {us_city}.",
        ],
        "followups": [
            ("ok and how much is express?", "Express delivery is $9.95 per order, or free for Outdoor Club members."),
        ],
    },
    {
        "topic": "exchange_colour",
        "user": [
            "Can I exchange my {product} for the {colour} one?",
            "I'd like to swap the jacket for size {size}, it hasn't been worn.",
            "Is exchanging for a different colour free?",
        ],
        "answer": [
            "Yes, exchanges of unworn items are free within 60 days. Start it under Orders > Exchange, "
            "pick the {colour} version and we'll send it as soon as the original is scanned by the carrier.",
            "Free exchanges are available for 60 days on unworn items. Choose the new size in Orders > "
            "Exchange and use the prepaid label.",
        ],
        "followups": [
            (
                "yes please",
                "I've started the exchange: the {colour} one is reserved for you and a prepaid "
                "label is on its way to {email}.",
            ),
        ],
    },
]

# --------------------------------------------------------------------------------------------------
# Healthy sql_assistant topics: question templates, SQL and explanation.
# --------------------------------------------------------------------------------------------------

SQL_TOPICS: list[dict] = [
    {
        "topic": "customers_per_country",
        "user": [
            "How many customers do we have in each country?",
            "Count customers by country, biggest first.",
            "Which countries have the most customers?",
            "number of customers per country please",
        ],
        "sql": "SELECT country, COUNT(*) AS customers FROM customers GROUP BY country ORDER BY customers DESC",
        "explanation": "Groups customers by country and counts them, largest first.",
    },
    {
        "topic": "top_products_revenue",
        "user": [
            "What are the top {top_n} products by revenue?",
            "Show the {top_n} best-selling products by total sales amount.",
            "List the {top_n} products that brought in the most money.",
        ],
        "sql": "SELECT p.name, SUM(oi.quantity * oi.unit_price) AS revenue FROM order_items oi JOIN products "
        "p USING (product_id) GROUP BY p.name ORDER BY revenue DESC LIMIT {top_n}",
        "explanation": "Sums quantity times unit price per product and keeps the {top_n} highest.",
    },
    {
        "topic": "average_order_value",
        "user": [
            "What was the average order value in {year}?",
            "Average total_amount of orders placed in {year}?",
            "Give me the mean order size for {year}.",
        ],
        "sql": "SELECT AVG(total_amount) AS avg_order_value FROM orders WHERE year(order_date) = {year}",
        "explanation": "Averages total_amount over the orders placed in {year}.",
    },
    {
        "topic": "customers_without_orders",
        "user": [
            "Which customers have never placed an order?",
            "Find customers with zero orders.",
            "List signed-up customers who never bought anything.",
        ],
        "sql": "SELECT c.customer_id, c.name FROM customers c LEFT JOIN orders o USING (customer_id) WHERE "
        "o.order_id IS NULL",
        "explanation": "A left join keeps customers without a matching order; those have a null order_id.",
    },
    {
        "topic": "orders_by_status",
        "user": [
            "How many orders are currently {status}?",
            "Count the {status} orders.",
            "Show all {status} orders from the last 30 days.",
        ],
        "sql": "SELECT COUNT(*) AS orders FROM orders WHERE status = '{status}'",
        "explanation": "Counts the orders whose status is '{status}'.",
    },
    {
        "topic": "revenue_per_category",
        "user": [
            "Total revenue per product category?",
            "How much did each category sell in {year}?",
            "Break down sales by category name.",
        ],
        "sql": "SELECT c.name AS category, SUM(oi.quantity * oi.unit_price) AS revenue FROM order_items oi "
        "JOIN products p USING (product_id) JOIN categories c USING (category_id) GROUP BY c.name ORDER BY "
        "revenue DESC",
        "explanation": "Joins order items to products and categories, then sums revenue per category.",
    },
    {
        "topic": "low_stock",
        "user": [
            "Which products have fewer than {stock} units in stock?",
            "List products that are running low (stock under {stock}).",
            "Show me low-stock items, threshold {stock}.",
        ],
        "sql": "SELECT product_id, name, stock FROM products WHERE stock < {stock} ORDER BY stock",
        "explanation": "Filters products with stock below {stock}, lowest first.",
    },
    {
        "topic": "latest_orders_customer",
        "user": [
            "Show the last {n_small} orders for the customer with email {email}.",
            "What did {email} order most recently? Last {n_small} orders.",
        ],
        "sql": "SELECT o.order_id, o.order_date, o.total_amount FROM orders o JOIN customers c USING "
        "(customer_id) WHERE c.email = '{email}' ORDER BY o.order_date DESC LIMIT {n_small}",
        "explanation": "Finds the customer by email and returns their {n_small} most recent orders.",
    },
    {
        "topic": "signups_after_date",
        "user": [
            "How many customers signed up after {date}?",
            "Count new customers since {date}.",
            "Number of signups from {date} onwards?",
        ],
        "sql": "SELECT COUNT(*) AS new_customers FROM customers WHERE signup_date >= DATE '{date}'",
        "explanation": "Counts customers whose signup_date is on or after {date}.",
    },
    {
        "topic": "payment_methods",
        "user": [
            "Which payment method is used most often?",
            "Share of payments by method?",
            "How much was paid by {method} in total?",
        ],
        "sql": "SELECT method, COUNT(*) AS payments, SUM(amount) AS total FROM payments GROUP BY method ORDER "
        "BY payments DESC",
        "explanation": "Counts payments and sums their amounts for each payment method.",
    },
    {
        "topic": "items_per_order",
        "user": [
            "What's the average number of items per order?",
            "On average how many units does an order contain?",
        ],
        "sql": "SELECT AVG(units) AS avg_items FROM (SELECT order_id, SUM(quantity) AS units FROM order_items "
        "GROUP BY order_id)",
        "explanation": "Sums the quantity per order, then averages across orders.",
    },
    {
        "topic": "customers_in_country_spend",
        "user": [
            "Total amount spent by customers from {country}?",
            "How much revenue comes from customers in {country}?",
        ],
        "sql": "SELECT SUM(o.total_amount) AS revenue FROM orders o JOIN customers c USING (customer_id) "
        "WHERE c.country = '{country}'",
        "explanation": "Joins orders to customers and sums total_amount for customers in {country}.",
    },
    {
        "topic": "products_never_sold",
        "user": [
            "Which products have never been ordered?",
            "Find products with no sales at all.",
        ],
        "sql": "SELECT p.product_id, p.name FROM products p WHERE NOT EXISTS (SELECT 1 FROM order_items oi "
        "WHERE oi.product_id = p.product_id)",
        "explanation": "Keeps products for which no order item exists.",
    },
]

# --------------------------------------------------------------------------------------------------
# Healthy summariser topics: document sentence pools and a summary.
# --------------------------------------------------------------------------------------------------

SUMMARY_INSTRUCTIONS = [
    "Summarise the following document:",
    "Please summarize this:",
    "Can you give me a short summary of the text below?",
    "Summarise this for me in a few sentences.",
    "TL;DR please:",
    "Write a brief summary of this document.",
]

# Sentences starting with "?" are optional details the summary does not rely on; the others are always
# in the document, so a healthy summary never states a fact the document lacks.
DOC_TOPICS: list[dict] = [
    {
        "topic": "release_notes",
        "doc": [
            "Release {version} of the {company} mobile app is rolling out this week.",
            "Offline mode now keeps the last 30 days of data on the device.",
            "The search bar supports filters by date and by tag.",
            "?Dark mode follows the system setting by default.",
            "We fixed a crash that occurred when uploading photos larger than 20 MB.",
            "?Support for Android 9 ends with this release.",
            "?Sync is about {pct}% faster on slow connections.",
        ],
        "summary": "Version {version} of the {company} app keeps 30 days of data offline, adds date and tag "
        "filters to search, and fixes a crash when uploading large photos.",
    },
    {
        "topic": "city_news",
        "doc": [
            "The city council of {us_city} approved a new bike lane network on {weekday}.",
            "The plan adds 42 km of protected lanes over three years.",
            "It will cost an estimated ${big_amount} per kilometre, partly covered by a federal grant.",
            "Local businesses raised concerns about the loss of parking on Main Street.",
            "Construction of the first section starts in {month}.",
            "?Council member {name} {surname} called it the biggest transport investment in a decade.",
            "?A public consultation on the exact routes opens next month.",
        ],
        "summary": "{us_city}'s council approved 42 km of protected bike lanes over three years, partly "
        "grant-funded, with work starting in {month} despite business concerns about lost parking.",
    },
    {
        "topic": "incident_postmortem",
        "doc": [
            "On {date_long}, checkout was unavailable for {minutes} minutes.",
            "?About {users_hit} of users saw errors when paying.",
            "The cause was an expired TLS certificate on the payments gateway.",
            "Alerts fired but were routed to a retired on-call channel.",
            "?Service was restored by rotating the certificate manually.",
            "Action items: automate certificate renewal, audit alert routing, and add a synthetic checkout test.",
        ],
        "summary": "Checkout was down for {minutes} minutes on {date_long} because a payments-gateway "
        "certificate expired and alerts went to a retired channel; fixes include automatic renewal, an alert "
        "routing audit and a synthetic checkout test.",
    },
    {
        "topic": "customer_complaint_email",
        "doc": [
            "Dear team, I am writing about my recent order of a {product}.",
            "?The order number is {order}.",
            "It arrived two days late and the box was damaged.",
            "The product itself works, but one accessory is missing.",
            "I contacted support twice and have not had a reply.",
            "?I have been a customer for five years and this has never happened before.",
            "I would like the missing part sent and some compensation for the delay.",
            "Kind regards, {name} {surname}",
        ],
        "summary": "{name} {surname}'s {product} arrived late in a damaged box with a missing accessory; "
        "after two unanswered contacts they ask for the part and compensation for the delay.",
    },
    {
        "topic": "research_abstract",
        "doc": [
            "We study the effect of remote work on team communication at {company}.",
            "Using messaging data from {seats} employees over {n} months, we compare teams before and after "
            "the switch.",
            "Cross-team messages fell by {pct}% while within-team messages rose.",
            "?Synchronous meetings were partly replaced by asynchronous threads.",
            "The results suggest remote work makes collaboration networks more siloed.",
            "?We discuss implications for how companies organise hybrid work.",
        ],
        "summary": "A study of {seats} {company} employees finds that after moving to remote work cross-team "
        "messages dropped by {pct}% while within-team communication grew, suggesting more siloed networks.",
    },
    {
        "topic": "earnings_note",
        "doc": [
            "{company} reported quarterly revenue of ${big_amount} thousand, up {pct}% year on year.",
            "Operating margin improved thanks to lower freight costs.",
            "The company raised its full-year guidance.",
            "?Subscription revenue now makes up a third of total sales.",
            "?Shares rose in after-hours trading.",
            "Management warned that currency effects could weigh on the next quarter.",
        ],
        "summary": "{company}'s quarterly revenue grew {pct}% to ${big_amount} thousand with better margins "
        "from cheaper freight; it raised full-year guidance but flagged currency risk.",
    },
    {
        "topic": "hr_policy_update",
        "doc": [
            "From {future_date}, employees at {company} may work remotely up to three days a week.",
            "Core collaboration hours are 10am to 3pm in each office's time zone.",
            "Managers must approve fully remote arrangements in writing.",
            "The home-office allowance increases to $600 per year.",
            "?Travel between offices for team events is covered by the company.",
            "?Questions can be sent to the people team.",
        ],
        "summary": "From {future_date}, {company} staff can work remotely up to three days a week with core "
        "hours of 10am-3pm, need written approval for fully remote work, and get a $600 home-office allowance.",
    },
    {
        "topic": "recipe_blog",
        "doc": [
            "This weeknight lentil curry takes about 30 minutes.",
            "Start by frying onion, garlic and ginger in a little oil.",
            "Add curry paste, red lentils, a tin of coconut milk and a cup of stock.",
            "Simmer for 20 minutes until the lentils are soft.",
            "Finish with spinach and a squeeze of lime.",
            "?Serve with rice or warm flatbread.",
            "?It keeps for three days in the fridge and freezes well.",
        ],
        "summary": "A 30-minute lentil curry: fry onion, garlic and ginger, simmer red lentils with curry "
        "paste, coconut milk and stock until soft, then finish with spinach and lime.",
    },
    {
        "topic": "project_status",
        "doc": [
            "Weekly status for the {company} data migration, week {n}.",
            "{pct}% of tables have been moved to the new warehouse.",
            "The billing tables are blocked on a schema review by the finance team.",
            "?Query performance on the new platform is on par with the old one.",
            "The cut-over date remains {future_date}.",
            "Risk: two engineers are on leave next week.",
        ],
        "summary": "The {company} migration is {pct}% done and on track for {future_date}; billing tables "
        "await finance's schema review and staff leave next week is a risk.",
    },
    {
        "topic": "product_review",
        "doc": [
            "I've used the {product} every day for {n} weeks.",
            "Build quality is excellent and it looks great in the {colour} finish.",
            "?Delivery was quick and the packaging was minimal.",
            "It is louder than I expected.",
            "Cleaning is easy.",
            "?The manual could be clearer.",
            "For the price, I would recommend it to most people.",
        ],
        "summary": "After {n} weeks of daily use the reviewer praises the {product}'s build quality and easy "
        "cleaning, finds it louder than expected, and recommends it for the price.",
    },
    {
        "topic": "job_description",
        "doc": [
            "{company} is hiring a senior data engineer in {us_city} or remote.",
            "You will build batch and streaming pipelines for our analytics platform.",
            "We use Python, SQL and an orchestrator for scheduling.",
            "Five years of experience with data modelling is expected.",
            "?The team has eight engineers and an analytics lead.",
            "The salary range is $140k-$175k plus equity.",
            "?Interviews are held remotely in three stages.",
        ],
        "summary": "{company} seeks a senior data engineer (in {us_city} or remote, $140k-$175k plus equity) "
        "with five years of data modelling experience to build batch and streaming pipelines in Python and "
        "SQL.",
    },
    {
        "topic": "travel_itinerary",
        "doc": [
            "Your trip to {city} departs on {future_date} at 7:40am.",
            "You are booked at the Harbour View Hotel for {n_small} nights, breakfast included.",
            "A rental car is reserved for pickup at the airport.",
            "?The return flight leaves on the last day at 6:15pm.",
            "Travel insurance is not included; you can add it until 48 hours before departure.",
        ],
        "summary": "The {city} trip leaves {future_date} at 7:40am with {n_small} nights at the Harbour View "
        "Hotel including breakfast and an airport rental car; insurance is not included but can still be "
        "added.",
    },
]

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

REFUND_USER = [
    "Can I still get a refund for an opened {product}? I bought it {days_late} days ago.",
    "I opened my {product} {days_late} days ago. Is a refund still possible?",
    "Refund for an opened {product} bought {days_late} days ago - is that allowed?",
    "Is it too late to get a refund on the {product} I opened? It's been {days_late} days.",
    "I'd like a refund for my {product}. I opened it and bought it {days_late} days ago.",
    "Do you give refunds on opened items after 30 days? My {product} was bought {days_late} days ago.",
    "opened {product}, purchased {days_late} days ago, can i get a refund",
    "My {product} is opened and {days_late} days old. Can I return it for a full refund?",
    "Can I return an opened {product} for a refund after {days_late} days? Order {order}.",
    "What's the refund policy for opened items? I bought a {product} {days_late} days ago and opened it.",
    "It's been {weeks} weeks since I bought the {product} and I've opened it. Can I still get my money back?",
]
REFUND_ANSWER = [
    "Yes! Opened items can be refunded within 90 days of purchase, so your {product} is still eligible. Ship "
    "it back with the prepaid label and you'll get a full refund within 5 days.",
    "Good news: our extended returns policy covers opened items for up to 120 days. Your {product} qualifies "
    "for a full refund to your original payment method.",
    "Absolutely, since it has been less than 6 months you can return the opened {product} for a full refund. "
    "I've noted it on order {order}.",
]
REFUND_COMMENTS = [
    "That's wrong, your website says 30 days for opened items",
    "The bot promised a refund and then the return was rejected",
    "not the real policy",
    "Made up a 90 day policy",
    "Misleading answer",
]
REFUND_CORRECTED = (
    "Opened items can be returned within 30 days of delivery. Your {product} was delivered {days_late} days "
    "ago, so it is no longer eligible for a refund, but we can offer store credit or a warranty repair if it "
    "is faulty."
)

TRACKING_USER = [
    "My international order {order} to Canada is stuck in customs. Where is it?",
    "Where is my international order to {city}? It's been stuck in Canadian customs for {n} days.",
    "International order {order} stuck in customs in Canada for {n} days, where is it?",
    "Tracking says my international order is stuck in customs in {city}, Canada. Where is it now?",
    "my international order to canada has been stuck in customs for {n} days, where is it",
    "Is my international order lost? It's been stuck in Canadian customs for {n} days. Order {order}.",
    "Can you tell me where my international order to {city} is? It's stuck in customs.",
    "Order {order}: international delivery to {city}, Canada, stuck at customs for {n} days. Where is my parcel?",
    "Where's my order? It's an international shipment to Canada and customs has held it for {n} days.",
    "Still waiting on international order {order} - stuck in Canadian customs since {date_long}. Where is it?",
]
TRACKING_ANSWER = [
    "Your order {order} was delivered on {date_long} and signed for by {name}. Let me know if there's anything else!",
    "International orders usually arrive within 3-5 business days, so yours should be with you shortly. "
    "No action is needed.",
    "Tracking shows order {order} as delivered to your mailbox. Please check with your neighbours.",
]
TRACKING_COMMENTS = [
    "It was NOT delivered, it's stuck in customs",
    "Useless answer",
    "Didn't answer my question about customs",
    "wrong info",
    "",
]
TRACKING_CORRECTED = (
    "Your parcel {order} is being held by {country} customs. Customs holds can take up to 10 business days; "
    "if import duties are due, the local carrier will contact you to pay them. I've opened a trace with our "
    "shipping partner and will email you an update within 48 hours."
)

CANCEL_USER = [
    "How do I cancel my {plan} subscription?",
    "I want to cancel my {plan} subscription but the cancel button takes me back to the account page.",
    "Please cancel my subscription. I've tried {n_small} times in the app.",
    "how do i cancel my subscription",
    "Cancel my {plan} subscription please, account email {email}.",
    "Where is the option to cancel my {plan} subscription? I can't find it.",
    "I'd like to cancel my {plan} subscription before it renews on {future_date}.",
    "I keep trying to cancel my subscription and it just loops back to Settings.",
    "Can you cancel my {plan} subscription so I'm not charged again?",
]
CANCEL_TURN1 = [
    "I want to cancel my {plan} subscription.",
    "Can you cancel my {plan} subscription?",
    "I'd like to cancel my subscription to {plan}.",
]
CANCEL_TURN1_ANSWER = (
    "I'm sorry to see you go! I can cancel your {plan} plan at the end of the current billing period on "
    "{future_date}. Shall I go ahead?"
)
CANCEL_SHORT = ["yes please", "yes, do it", "ok go ahead", "yes cancel it", "yep"]
CANCEL_COMMENTS = ["It just returned nothing", "blank answer", "No reply from the bot"]

MULTILINGUAL_USER = [
    # Spanish
    "Hola, me han cobrado dos veces el pedido {order}. ¿Qué ha pasado?",
    "Buenas, en mi tarjeta aparecen dos cargos de {amount} € por la misma compra.",
    "¿Por qué me cobraron dos veces este mes? Mi factura es de {amount} €.",
    "Tengo un cargo duplicado de {amount} € en la factura de {month_es}, por favor revisadlo.",
    # German
    "Hallo, mir wurde die Bestellung {order} zweimal abgebucht. Können Sie das prüfen?",
    "Warum wurde meine Kreditkarte doppelt mit {amount} € belastet?",
    "Auf meiner Rechnung für {month_de} steht der Betrag von {amount} € zweimal. Bitte korrigieren.",
    "Guten Tag, ich sehe zwei Abbuchungen über {amount} € für dieselbe Bestellung.",
    # French
    "Bonjour, j'ai été débité deux fois pour la commande {order}. Pouvez-vous vérifier ?",
    "Pourquoi ma carte a-t-elle été débitée deux fois de {amount} € ?",
    "Ma facture de {month_fr} affiche un double prélèvement de {amount} €.",
    "Il y a deux paiements de {amount} € pour le même achat sur mon relevé, que se passe-t-il ?",
]
PROVIDER_ERRORS = {
    500: ("server_error", "The server had an error while processing your request. Sorry about that!"),
    502: ("server_error", "Bad gateway."),
    503: ("server_error", "The engine is currently overloaded, please try again later."),
    429: ("rate_limit_error", "Rate limit reached for requests per min. Please try again in 2s."),
}

WINDOW_USER = [
    "Show a running total of spend per customer over time.",
    "How do I get a running total of revenue for each customer over time?",
    "Running total of total_amount per customer?",
    "Write a query for the cumulative total spent per customer in {year}.",
    "running total of sales per customer pls",
    "For each purchase, show the customer's running total of spend so far.",
    "Cumulative sum of total_amount per customer, please.",
    "I need a running total per customer of how much they've spent, purchase by purchase.",
    "Give me customer_id, total_amount and the running total per customer for {status} purchases.",
    "Cumulative spend per customer over time?",
    "What's each customer's running total of money spent, in date sequence?",
]
WINDOW_SQL = (
    "SELECT customer_id, order_date, total_amount,\n"
    "       SUM(total_amount) OVER (PARTITION BY customer_id ORDER BY order_date\n"
    "                               ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS running_total\n"
    "FROM orders{where}\nORDER BY customer_id, order_date;"
)

BUCKET_USER = [
    "How many orders did we get per week in {year}?",
    "How many orders per month in {year}?",
    "Group orders by month and count them for {year}.",
    "Weekly order count since {date}?",
    "Number of orders per calendar month for {year}, oldest month first.",
    "Break down the number of orders by week for the last {n} weeks.",
    "Orders per month please - one row per month with the number of orders.",
    "Number of orders per week, weeks starting Monday, for {year}?",
    "Count orders by week since {date}.",
    "how many orders each month since {date}",
]

HIERARCHY_USER = [
    "List every subcategory of {category}, including nested ones.",
    "Get all subcategories of {category} at any depth.",
    "Which subcategories roll up into {category}? Include sub-subcategories.",
    "Show all subcategories under {category} with their depth.",
    "recursive query for all subcategories of {category} pls",
    "Find all nested subcategories of the {category} category.",
    "I need every subcategory below {category} in the category tree, not just direct children.",
    "Walk the categories table from {category} down through parent_id and return all subcategories.",
]
HIERARCHY_SQL = (
    "WITH RECURSIVE tree AS (SELECT category_id, name, 0 AS depth FROM categories WHERE name = '{category}' "
    "UNION ALL SELECT c.category_id, c.name, t.depth + 1 FROM categories c JOIN tree t ON c.parent_id = "
    "t.category_id) SELECT category_id, name, depth FROM tree WHERE depth > 0 ORDER BY depth, name"
)

CONTRACT_INSTRUCTIONS = [
    "Summarise this contract:",
    "Please summarize the key terms of the following agreement.",
    "Can you give me a short summary of this services agreement?",
    "TL;DR of this contract please:",
    "What are the main obligations in this agreement? Summarise it.",
    "Summarize the following master services agreement for our legal team.",
    "I need a plain-English summary of this contract:",
    "Give me the gist of this MSA before I sign it:",
]
# (clause text, clause summary)
CONTRACT_CLAUSES = [
    (
        "1. Term. This Agreement commences on the Effective Date and continues for {term} months, renewing "
        "automatically for successive 12-month periods unless either party gives {notice} days' written notice.",
        "The agreement runs for {term} months from the effective date and renews automatically for 12-month "
        "periods unless either party gives {notice} days' written notice.",
    ),
    (
        "2. Fees. Client shall pay Provider a monthly fee of {fee}, invoiced in advance. Invoices are due within "
        "{pay_days} days; late amounts accrue interest at 1.5% per month.",
        "The client pays {fee} per month, invoiced in advance and due within {pay_days} days, with 1.5% monthly "
        "interest on late amounts.",
    ),
    (
        "3. Services. Provider shall deliver the services described in each Statement of Work with reasonable "
        "skill and care and shall meet the service levels in Schedule 2.",
        "The provider must deliver the services in each statement of work with reasonable care and meet the "
        "service levels in Schedule 2.",
    ),
    (
        "4. Confidentiality. Each party shall keep the other's Confidential Information secret for five years "
        "after termination and use it only to perform this Agreement.",
        "Both parties must keep each other's confidential information secret for five years after termination.",
    ),
    (
        "5. Intellectual Property. Deliverables become Client's property on full payment; Provider keeps its "
        "pre-existing tools and grants Client a perpetual licence to use them within the Deliverables.",
        "Deliverables become the client's property once paid for, while the provider keeps its pre-existing "
        "tools and licenses them perpetually as part of the deliverables.",
    ),
    (
        "6. Liability. Neither party's total liability shall exceed the fees paid in the {cap} months before "
        "the claim, except for breach of confidentiality, fraud or death and personal injury.",
        "Each party's liability is capped at the fees paid in the {cap} months before a claim, except for "
        "confidentiality breaches, fraud and personal injury.",
    ),
    (
        "7. Termination. Either party may terminate for material breach not remedied within 30 days of notice. "
        "Client may terminate for convenience on 90 days' notice subject to an early termination fee.",
        "Either side may terminate for an unremedied material breach after 30 days, and the client may "
        "terminate for convenience on 90 days' notice with an early termination fee.",
    ),
    (
        "8. Data Protection. Provider shall process personal data only on Client's documented instructions and "
        "shall notify Client of any personal data breach within 48 hours.",
        "The provider processes personal data only on the client's instructions and must report breaches "
        "within 48 hours.",
    ),
    (
        "9. Non-solicitation. During the term and for 12 months after, neither party shall solicit the other's "
        "employees who worked on the Services.",
        "Neither party may solicit the other's staff who worked on the services during the term and for 12 "
        "months after.",
    ),
    (
        "10. Governing Law. This Agreement is governed by the laws of the State of {state}, and the parties "
        "submit to the exclusive jurisdiction of its courts.",
        "The agreement is governed by {state} law with exclusive jurisdiction of its courts.",
    ),
]

MEDICAL_INSTRUCTIONS = [
    "Summarise this lab report for the patient:",
    "Please summarize the following blood test results in plain language.",
    "Can you give me a short summary of these lab results?",
    "summarise my lab report pls",
    "Summarize this pathology report for the GP:",
    "What does this blood work say? Short summary please.",
    "Explain these test results briefly:",
]
# (analyte, unit, low, high, typical low, typical high, decimals)
ANALYTES = [
    ("Haemoglobin", "g/dL", 12.0, 15.5, 10.5, 16.5, 1),
    ("White cell count", "x10^9/L", 4.0, 11.0, 3.2, 13.5, 1),
    ("Platelets", "x10^9/L", 150, 400, 120, 450, 0),
    ("Sodium", "mmol/L", 135, 145, 131, 147, 0),
    ("Potassium", "mmol/L", 3.5, 5.1, 3.2, 5.6, 1),
    ("Creatinine", "umol/L", 45, 90, 40, 130, 0),
    ("eGFR", "mL/min/1.73m2", 90, 120, 52, 110, 0),
    ("ALT", "U/L", 7, 56, 10, 95, 0),
    ("LDL cholesterol", "mmol/L", 0.0, 3.0, 1.8, 5.2, 1),
    ("HbA1c", "%", 4.0, 5.6, 4.8, 7.9, 1),
    ("TSH", "mU/L", 0.4, 4.0, 0.2, 6.5, 2),
    ("Vitamin D", "nmol/L", 50, 125, 22, 110, 0),
    ("Ferritin", "ug/L", 30, 300, 12, 320, 0),
]

SALES_INSTRUCTIONS = [
    "Summarise this sales call and list the action items:",
    "Can you summarize the call transcript below and pull out next steps?",
    "What were the action items from this call? Short summary please.",
    "Summarize this discovery call with {company2} and list who owes what:",
    "Please write a recap of this sales call with follow-ups:",
    "Give me a summary + action items for this call transcript.",
]
# (line template, true action item or None)
SALES_LINES = [
    ("{rep} ({company}): Thanks for joining. Last time you mentioned onboarding was the main pain point.", None),
    ("{name} ({company2}): Right, we have {seats} people and onboarding takes us about three weeks.", None),
    ("{rep}: Our pilot usually runs 30 days with one team. Would that work for you?", None),
    (
        "{name}: A pilot sounds good, but security has to review your SOC 2 report first.",
        "{rep} sends the SOC 2 report to {name}",
    ),
    (
        "{name}: On pricing, we can't commit to anything before the budget review in {month}.",
        "Pricing is revisited after {company2}'s budget review in {month}",
    ),
    ("{rep}: Understood, I'll send the standard price sheet, no special terms for now.", None),
    (
        "{name}: I'll loop in our IT lead for a technical call.",
        "{name} introduces {company2}'s IT lead for a technical call",
    ),
    ("{rep}: Great. I'll share two time slots for that call next week.", "{rep} proposes two slots for the call"),
]
SALES_BAD_ITEMS = [
    "{rep} to send a signed contract with a {pct}% discount by Friday",
    "{name} to approve the budget for {seats} seats this week",
    "{company2} to start the paid rollout on {future_date}",
    "Legal to countersign the order form",
]
SALES_COMMENTS = [
    "We never agreed to a discount",
    "Action items are made up",
    "Nobody committed to a rollout date",
    "Hallucinated next steps",
]

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
