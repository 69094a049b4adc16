"""Writes the orders dataset: customer messages with the order they state (seeded, stdlib).

The messages are generated from templates so the expected values are known exactly; the
phrasings vary the way real order messages do (number words, prices with or without cents or
"each", express asked for in several ways, greetings and noise around the order).
Run: python data/make_orders.py  (rewrites train/dev/test.jsonl in this folder)
"""

from __future__ import annotations

import json
import random
from pathlib import Path

ITEMS = [
    "blue mug", "notebook", "desk lamp", "usb cable", "water bottle", "phone case",
    "yoga mat", "coffee grinder", "wool scarf", "paperback", "pair of socks", "tea kettle",
    "backpack", "stapler", "candle", "plant pot", "rain jacket", "mouse pad",
]  # fmt: skip
NUMBER_WORDS = ["one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten"]
OPENERS = ["", "Hi there! ", "Hello, ", "Good morning. ", "Hey, quick one: ", "Dear shop, "]
EXPRESS_YES = [
    " Please ship express.", " I need it fast, express shipping please.",
    " Express delivery, please.", " Can you send it by express?",
]  # fmt: skip
EXPRESS_NO = ["", " Standard shipping is fine.", " No rush.", " Regular post is ok."]
CLOSERS = ["", " Thanks!", " Cheers, Sam", " Best regards, Ana.", " Thank you."]


def plural(item: str, n: int) -> str:
    if n == 1 or item.startswith("pair of"):
        return item.replace("pair of", "pairs of") if n > 1 else item
    return item + ("es" if item.endswith(("sh", "ch", "s")) else "s")


def price_text(rng: random.Random, price: float) -> str:
    whole = price == int(price)
    style = rng.randrange(4)
    if style == 0:
        return f"${price:.2f} each"
    if style == 1:
        return f"${int(price)} a piece" if whole else f"${price:.2f} a piece"
    if style == 2:
        return f"{price:.2f} dollars each"
    return f"at ${price:,.2f} per unit"


def message(rng: random.Random) -> dict[str, object]:
    item = rng.choice(ITEMS)
    quantity = rng.choice([1, 1, 2, 3, 4, 5, 6, 10, 12, 20, 150, 1200])
    price = rng.choice([3, 4.5, 9.99, 12, 15.25, 19.9, 24, 49.95, 120, 1250])
    express = rng.random() < 0.4
    amount = (
        NUMBER_WORDS[quantity - 1] if quantity <= 10 and rng.random() < 0.5 else f"{quantity:,}"
    )
    body = rng.choice(
        [
            f"I'd like to order {amount} {plural(item, quantity)}, {price_text(rng, price)}.",
            f"Please send {amount} {plural(item, quantity)} ({price_text(rng, price)}).",
            f"Could I get {amount} {plural(item, quantity)}? Your site says {price_text(rng, price)}.",
            f"Order: {amount} x {item}, {price_text(rng, price)}.",
        ]
    )
    shipping = rng.choice(EXPRESS_YES if express else EXPRESS_NO)
    text = rng.choice(OPENERS) + body + shipping + rng.choice(CLOSERS)
    total = quantity * price
    tier = "freight" if total >= 1000 else "express" if express else "standard"
    return {
        "message": text,
        "item": item,
        "quantity": quantity,
        "unit_price": float(price),
        "express": express,
        "tier": tier,
    }


def main() -> None:
    rng = random.Random(20261125)
    rows = [message(rng) for _ in range(80)]
    here = Path(__file__).parent
    for name, part in (("train", rows[:20]), ("dev", rows[20:40]), ("test", rows[40:])):
        lines = (json.dumps(r, ensure_ascii=False) for r in part)
        (here / f"{name}.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
