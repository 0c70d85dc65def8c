"""Hostile checkout input is refused with OrderInvalid / CodesInvalid and a clear message — never another exception
(API.md: never a 500 for bad input)."""
from __future__ import annotations

import copy
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core.exceptions import InvalidInput
from coupons.discounts import (
    MAX_CODES,
    MAX_LINES,
    CodesInvalid,
    Order,
    OrderInvalid,
    OrderLine,
    validate_codes_payload,
    validate_order_payload,
)

GOOD = {"order_id": "o-77", "items": [{"sku": "S1", "spu": "P1", "category": "C1", "shop": "shop-9",
                                       "unit_price": 12000, "quantity": 2, "virtual": False}],
        "shipping_fee": 3000, "channel": "ios", "payment_method": "online"}


def with_item(**changes):
    data = copy.deepcopy(GOOD)
    data["items"][0].update(changes)
    return data


def without_item_field(name):
    data = copy.deepcopy(GOOD)
    del data["items"][0][name]
    return data


def with_order(**changes):
    data = copy.deepcopy(GOOD)
    data.update(changes)
    return data


def without(name):
    data = copy.deepcopy(GOOD)
    del data[name]
    return data


def test_the_api_example_order_is_accepted():
    assert validate_order_payload(GOOD) == Order(
        order_id="o-77", items=(OrderLine("S1", "P1", "C1", "shop-9", 12000, 2, False),), shipping_fee=3000,
        channel="ios", payment_method="online")


def test_channel_and_payment_method_may_be_left_out():
    order = validate_order_payload({k: v for k, v in GOOD.items() if k not in ("channel", "payment_method")})
    assert (order.channel, order.payment_method) == (None, None)
    assert validate_order_payload(with_order(channel=None)).channel is None


def test_a_line_needs_only_sku_unit_price_and_quantity():
    """#19: spu, category and shop default to empty, virtual to false; shipping_fee to 0; order_id may be left to
    the request's top level."""
    order = validate_order_payload({"items": [{"sku": "S1", "unit_price": 12000, "quantity": 2}]})
    assert order == Order(order_id="", items=(OrderLine("S1", "", "", "", 12000, 2, False),), shipping_fee=0,
                          channel=None, payment_method=None)


def test_optional_line_texts_may_be_null_or_empty_and_virtual_null():
    order = validate_order_payload(with_item(spu=None, category="", shop=None, virtual=None))
    assert order.items[0] == OrderLine("S1", "", "", "", 12000, 2, False)


def test_a_problem_is_described_in_the_requested_language():
    from django.utils import translation

    with translation.override("ko"), pytest.raises(OrderInvalid) as info:
        validate_order_payload(without_item_field("unit_price"))
    assert info.value.message == "주문이 올바르지 않습니다: items[0].unit_price 값이 필요합니다."
    assert info.value.details["fields"] == {"items[0].unit_price": "값이 필요합니다"}


def test_unknown_keys_are_ignored():
    assert validate_order_payload(with_order(note="gift wrap")).order_id == "o-77"


HOSTILE = [
    ("negative price", with_item(unit_price=-1), "items[0].unit_price", "at least 1"),
    ("zero price", with_item(unit_price=0), "items[0].unit_price", "at least 1"),
    ("zero quantity", with_item(quantity=0), "items[0].quantity", "at least 1"),
    ("negative quantity", with_item(quantity=-3), "items[0].quantity", "at least 1"),
    ("float price", with_item(unit_price=12000.5), "items[0].unit_price", "not a decimal number"),
    ("integral float price", with_item(unit_price=12000.0), "items[0].unit_price", "not a decimal number"),
    ("NaN price", with_item(unit_price=math.nan), "items[0].unit_price", "not a decimal number"),
    ("infinite price", with_item(unit_price=math.inf), "items[0].unit_price", "not a decimal number"),
    ("price as string", with_item(unit_price="12000"), "items[0].unit_price", "not a string"),
    ("NaN-like string", with_item(unit_price="NaN"), "items[0].unit_price", "not a string"),
    ("boolean quantity", with_item(quantity=True), "items[0].quantity", "not a boolean"),
    ("null price", with_item(unit_price=None), "items[0].unit_price", "not null"),
    ("huge price", with_item(unit_price=10**12 + 1), "items[0].unit_price", "at most"),
    ("huge line total", with_item(unit_price=10**9, quantity=1001), "items[0]", "at most 1000000000000"),
    ("astronomic integer", with_item(unit_price=10**400), "items[0].unit_price", "at most"),
    ("missing price", without_item_field("unit_price"), "items[0].unit_price", "is required"),
    ("missing quantity", without_item_field("quantity"), "items[0].quantity", "is required"),
    ("missing sku", without_item_field("sku"), "items[0].sku", "is required"),
    ("null sku", with_item(sku=None), "items[0].sku", "must be a string"),
    ("blank category", with_item(category="   "), "items[0].category", "must not be empty"),
    ("numeric shop", with_item(shop=9), "items[0].shop", "must be a string"),
    ("virtual as null string", with_item(virtual="null"), "items[0].virtual", "true or false"),
    ("virtual as string", with_item(virtual="false"), "items[0].virtual", "true or false"),
    ("empty sku", with_item(sku="  "), "items[0].sku", "must not be empty"),
    ("numeric sku", with_item(sku=123), "items[0].sku", "must be a string"),
    ("overlong shop", with_item(shop="x" * 65), "items[0].shop", "at most 64"),
    ("control characters", with_item(spu="P1\x00"), "items[0].spu", "control characters"),
    ("item not an object", with_order(items=["S1"]), "items[0]", "must be an object"),
    ("items not a list", with_order(items={"sku": "S1"}), "items", "must be a list"),
    ("no items", with_order(items=[]), "items", "at least one line"),
    ("missing items", without("items"), "items", "is required"),
    ("negative shipping fee", with_order(shipping_fee=-100), "shipping_fee", "at least 0"),
    ("float shipping fee", with_order(shipping_fee=2.5), "shipping_fee", "not a decimal number"),
    ("unknown channel", with_order(channel="fax"), "channel", "must be one of android, ios"),
    ("channel not a string", with_order(channel=["ios"]), "channel", "must be one of"),
    ("unknown payment method", with_order(payment_method="crypto"), "payment_method", "must be one of cod, online"),
]


@pytest.mark.parametrize("label,payload,path,phrase", HOSTILE, ids=[h[0] for h in HOSTILE])
def test_a_hostile_order_is_refused_with_the_path_and_the_problem(label, payload, path, phrase):
    with pytest.raises(OrderInvalid) as info:
        validate_order_payload(payload)
    error = info.value
    assert path in error.details["fields"] and phrase in error.details["fields"][path]
    assert error.message.startswith(f"The order is not valid: {path} ")
    assert (error.code, error.status) == ("invalid_order", 400)
    assert isinstance(error, ValueError) and isinstance(error, InvalidInput)


@pytest.mark.parametrize("payload", [None, [], "order", 42, 1.5, True])
def test_an_order_that_is_not_an_object_is_refused(payload):
    with pytest.raises(OrderInvalid, match="must be an object"):
        validate_order_payload(payload)


def test_ten_thousand_lines_are_refused_by_their_count_alone():
    data = with_order(items=[copy.deepcopy(GOOD["items"][0]) for _ in range(10_000)])
    with pytest.raises(OrderInvalid) as info:
        validate_order_payload(data)
    assert info.value.details["fields"] == {"items": f"has 10000 lines; an order may have at most {MAX_LINES}"}


def test_the_line_limit_itself_is_accepted():
    data = with_order(items=[copy.deepcopy(GOOD["items"][0]) for _ in range(MAX_LINES)])
    assert len(validate_order_payload(data).items) == MAX_LINES


def test_every_problem_is_reported_up_to_a_limit_and_the_message_counts_them():
    data = with_order(items=[{"sku": "S", "spu": "P", "category": "C", "shop": "s", "unit_price": -1, "quantity": 0,
                              "virtual": False} for _ in range(30)])
    with pytest.raises(OrderInvalid) as info:
        validate_order_payload(data)
    assert len(info.value.details["fields"]) == 20
    assert info.value.message == ("The order is not valid: items[0].unit_price must be at least 1 "
                                  "(and 59 more problems).")


def test_codes_are_normalised_and_duplicates_refused():
    assert validate_codes_payload(["k7wq-3mzp", "AB CD 23"]) == ("K7WQ3MZP", "ABCD23")
    with pytest.raises(CodesInvalid) as info:
        validate_codes_payload(["K7WQ3MZP", "k7wq-3mzp"])
    assert info.value.details["fields"] == {"codes[1]": "repeats codes[0] (K7WQ3MZP)"}
    assert info.value.code == "invalid_codes"


@pytest.mark.parametrize("payload,phrase", [
    ("K7WQ3MZP", "must be a list"),
    (None, "must be a list"),
    ([], "at least one code"),
    (["A"] * (MAX_CODES + 1), f"at most {MAX_CODES} codes"),
    ([7], "must be a string"),
    (["--"], "must not be empty"),
    (["X" * 49], "at most 48"),
    (["K7WQ3MZP;DROP"], "letters and digits"),
    (["ÄÖÜ"], "letters and digits"),
])
def test_a_bad_codes_list_is_refused(payload, phrase):
    with pytest.raises(CodesInvalid) as info:
        validate_codes_payload(payload)
    assert phrase in info.value.message or phrase in str(info.value.details)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=70),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=5),
    max_leaves=30)
fields = ("sku", "spu", "category", "shop", "unit_price", "quantity", "virtual")
items_like = st.fixed_dictionaries({}, optional={name: json_values | st.integers(-5, 10**13) for name in fields})
orders_like = st.fixed_dictionaries({}, optional={
    "order_id": json_values, "items": st.lists(items_like | json_values, max_size=5) | json_values,
    "shipping_fee": json_values, "channel": json_values | st.sampled_from(["ios", "fax"]),
    "payment_method": json_values | st.sampled_from(["cod", "online"])})


@settings(max_examples=300, deadline=None)
@given(payload=orders_like | json_values)
def test_any_json_value_gives_an_order_or_order_invalid_and_nothing_else(payload):
    try:
        order = validate_order_payload(payload)
    except OrderInvalid as error:
        assert error.message and error.details["fields"]
    else:
        assert order.items and all(line.unit_price > 0 and line.quantity > 0 for line in order.items)


@settings(max_examples=150, deadline=None)
@given(payload=st.lists(json_values, max_size=25) | json_values)
def test_any_json_value_gives_codes_or_codes_invalid_and_nothing_else(payload):
    try:
        codes = validate_codes_payload(payload)
    except CodesInvalid as error:
        assert error.message and error.details["fields"]
    else:
        assert len(codes) == len(set(codes)) >= 1
