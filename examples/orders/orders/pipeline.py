"""Two LM steps joined by plain Python: read the order, then pick its shipping tier.

Only the final tier is labeled; `promptcast compile` optimizes both steps from that metric
alone (bootstrapping keeps each step's part of the runs whose tier came out right).
"""

from typing import Literal

import promptcast as pc

from .extract import Order, read_order

Tier = Literal["standard", "express", "freight"]


@pc.predict
def shipping_tier(order: Order) -> Tier:
    """Pick the shipping tier for an order: `freight` when quantity times unit price is
    1000 dollars or more; otherwise `express` if the customer asked for express shipping;
    otherwise `standard`."""


@pc.program
def route(message: str) -> Tier:
    return shipping_tier(read_order(message))
