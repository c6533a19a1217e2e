"""The columns of the Criteo Sponsored Search Conversion Log (`CriteoSearchData`).

23 tab-separated columns, no header. Five are outcomes or leak the label and are never
features: Sale, SalesAmountInEuro, time_delay_for_conversion, click_timestamp, and
product_price (non-zero exactly when Sale == 1 in the real file).

>>> len(COLUMNS), len(FEATURE_FIELDS)
(23, 18)
>>> set(FEATURE_FIELDS) & set(LEAK_COLUMNS)
set()
"""

from __future__ import annotations

COLUMNS: tuple[str, ...] = (
    "Sale",
    "SalesAmountInEuro",
    "time_delay_for_conversion",
    "click_timestamp",
    "nb_clicks_1week",
    "product_price",
    "product_age_group",
    "device_type",
    "audience_id",
    "product_gender",
    "product_brand",
    "product_category1",
    "product_category2",
    "product_category3",
    "product_category4",
    "product_category5",
    "product_category6",
    "product_category7",
    "product_country",
    "product_id",
    "product_title",
    "partner_id",
    "user_id",
)

LEAK_COLUMNS: tuple[str, ...] = (
    "Sale",
    "SalesAmountInEuro",
    "time_delay_for_conversion",
    "click_timestamp",
    "product_price",
)

FEATURE_FIELDS: tuple[str, ...] = tuple(c for c in COLUMNS if c not in LEAK_COLUMNS)

INDEX: dict[str, int] = {name: i for i, name in enumerate(COLUMNS)}
