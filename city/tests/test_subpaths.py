from city.registry import Action, Registry, Service


def handler(call):  # pragma: no cover - never called here
    return {}


SERVICE = Service(
    id="shop",
    name="Shop",
    actions=(Action("items", handler, subpaths=True), Action("items/special", handler), Action("plain", handler)),
    aliases={"items": "items"},
)
REGISTRY = Registry(
    services={"shop": SERVICE},
    actions={("shop", a.name): a for a in SERVICE.actions},
    aliases={"items": ("shop", "items")},
)


def test_an_exact_action_wins_over_a_subpath() -> None:
    found = REGISTRY.resolve("shop/items/special")
    assert (found.action_name, found.subpath) == ("items/special", "")


def test_an_action_with_subpaths_takes_the_rest() -> None:
    found = REGISTRY.resolve("shop/items/blue-shoe.v2")
    assert (found.action_name, found.subpath) == ("items", "blue-shoe.v2")


def test_an_alias_with_subpaths_takes_the_rest() -> None:
    found = REGISTRY.resolve("items/blue/shoe")
    assert (found.service_id, found.action_name, found.subpath) == ("shop", "items", "blue/shoe")


def test_an_action_without_subpaths_does_not_match_longer_routes() -> None:
    assert REGISTRY.resolve("shop/plain/extra").action is None
