"""Which pages exist and which roles see them. A page a role may not see is not
registered with st.navigation, so its URL does not open either."""

from __future__ import annotations

from dataclasses import dataclass

ROLES = ("support", "finance", "engineer", "admin")


@dataclass(frozen=True)
class PageDef:
    name: str  # the module under views/ and the URL path
    title: str
    icon: str
    roles: frozenset[str]


PAGES: tuple[PageDef, ...] = (
    PageDef("overview", "Overview", ":material/monitoring:", frozenset(ROLES)),
    PageDef("alerts", "Alerts", ":material/notifications_active:", frozenset(ROLES)),
    PageDef("failures", "Failed payments", ":material/search:", frozenset({"support", "engineer", "admin"})),
    PageDef("finance", "Finance", ":material/payments:", frozenset({"finance", "admin"})),
    PageDef("gateway_errors", "Gateway errors", ":material/error:", frozenset({"engineer", "admin"})),
    PageDef("webhooks", "Webhooks", ":material/webhook:", frozenset({"engineer", "admin"})),
)


def pages_for(role: str) -> list[PageDef]:
    return [page for page in PAGES if role in page.roles]


def may_open(name: str, role: str) -> bool:
    return any(page.name == name and role in page.roles for page in PAGES)


def page_path(name: str) -> str:
    """The page's file relative to app.py (what st.switch_page and st.page_link take)."""
    return f"views/{name}.py"
