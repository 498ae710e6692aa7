"""Walking Django's ``parse_html`` trees in tests."""


def elements(node):
    """``node`` (parse_html returns the element itself when there is one) and every element inside it."""
    if node.name:
        yield node
    for child in node.children:
        if not isinstance(child, str):
            yield from elements(child)
