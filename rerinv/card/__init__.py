"""The calibrated parameter card: its JSON schema, validation, an example and its docs.

A parameter card is the JSON file ``rerinv calibrate`` writes and ``rerinv export`` reads. The
schema dict :data:`CARD_SCHEMA` (JSON-Schema draft 2020-12 style) is the single source of truth:
:func:`validate_card` checks a card against it with a small validator for the keywords used here
(``type``, ``enum``, ``required``, ``properties``, ``additionalProperties``, ``items``,
``minimum``, ``maximum``, ``exclusiveMinimum``, ``format: date-time``), and
:func:`card_schema_markdown` renders it as the table in ``docs/parameter-card.md``.

Every numeric field states its unit twice: in the name suffix (``_s``, ``_j``, ``_w``, ``_hz``,
``_v``, ``_ohm``, ``_siemens``, ``_bits``, ``_frac``) and in the schema, as the annotation
keyword ``unit`` and at the end of the ``description``. Measured values may be ``null`` where
the models do not allow an estimate.

Modules: :mod:`~rerinv.card.schema` (the schema, summary fields, :func:`lookup`),
:mod:`~rerinv.card.validate`, :mod:`~rerinv.card.build` (new, example and loaded cards) and
:mod:`~rerinv.card.docs`. This layer sits below :mod:`rerinv.studies` and :mod:`rerinv.export`.
"""

from rerinv.card.build import example_card, load_card, new_card
from rerinv.card.docs import card_schema_markdown, update_card_docs
from rerinv.card.schema import (
    CARD_FORMAT,
    CARD_SCHEMA,
    CARD_VERSION,
    SCHEME_FIELDS,
    SETTLE_MODEL,
    SUMMARY_FIELDS,
    lookup,
)
from rerinv.card.validate import validate_card

__all__ = [
    "CARD_FORMAT",
    "CARD_SCHEMA",
    "CARD_VERSION",
    "SCHEME_FIELDS",
    "SETTLE_MODEL",
    "SUMMARY_FIELDS",
    "card_schema_markdown",
    "example_card",
    "load_card",
    "lookup",
    "new_card",
    "update_card_docs",
    "validate_card",
]
