"""Every URL pattern of the project, for the walkers that must cover each route (SEC-2, SEC-5)."""

from collections.abc import Iterator
from dataclasses import dataclass

from django.urls import URLPattern, URLResolver, get_resolver


@dataclass(frozen=True)
class Route:
    name: str  # namespaced ("exchanges:detail"); "" for an unnamed pattern
    pattern: str  # the full path pattern, e.g. "exchanges/<int:account_id>/"
    kwargs: tuple[str, ...]


def _walk(resolver: URLResolver, prefix: str, namespace: str) -> Iterator[Route]:
    for entry in resolver.url_patterns:
        pattern = prefix + str(entry.pattern)
        if isinstance(entry, URLResolver):
            ns = namespace
            if entry.namespace:
                ns = f"{namespace}:{entry.namespace}" if namespace else entry.namespace
            yield from _walk(entry, pattern, ns)
        elif isinstance(entry, URLPattern):
            name = entry.name or ""
            full_name = f"{namespace}:{name}" if namespace and name else name
            yield Route(full_name, pattern, tuple(entry.pattern.regex.groupindex))


def url_routes() -> list[Route]:
    return list(_walk(get_resolver(), "", ""))
