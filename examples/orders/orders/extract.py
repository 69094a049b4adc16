"""One LM step that turns a free-text order into a typed record (a pydantic model)."""

from pydantic import BaseModel, Field

import promptcast as pc


class Order(BaseModel):
    """One order, as the customer stated it."""

    item: str = Field(description="What was ordered, singular and lower case, e.g. `blue mug`.")
    quantity: int = Field(description="How many were ordered.")
    unit_price: float = Field(description="The price of one item in dollars.")
    express: bool = Field(description="Whether the customer asked for express shipping.")


@pc.predict
def read_order(message: str) -> Order:
    """Extract the order a customer placed from their message.

    Args:
        message: A customer's message, in English.
    """
