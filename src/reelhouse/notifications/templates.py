"""Every mail's subject, plain-text and HTML body, rendered from its template name and context."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from html import escape
from typing import Any

REMINDER_TEMPLATE = "subscription_reminder"
NEW_RELEASES_TEMPLATE = "new_releases"


@dataclass(frozen=True, slots=True)
class RenderedMail:
    subject: str
    text: str
    html: str


class UnknownTemplate(Exception):
    pass


def _day(iso: str) -> str:
    return datetime.fromisoformat(iso).strftime("%d %B %Y").lstrip("0")


def _days(count: int) -> str:
    return "tomorrow" if count == 1 else f"in {count} days"


def _year(item: dict[str, Any]) -> str:
    """`` (1999)`` after a title, or nothing for a title without a release year."""
    return f" ({item['release_year']})" if item.get("release_year") else ""


def subject_for(template: str, context: dict[str, Any]) -> str:
    if template == REMINDER_TEMPLATE:
        return f"Your {context['plan_name']} subscription ends {_days(int(context['days']))}"
    if template == NEW_RELEASES_TEMPLATE:
        titles = context["titles"]
        if len(titles) == 1:
            return f"New on Reelhouse: {titles[0]['title']}"
        return f"{len(titles)} new titles on Reelhouse"
    raise UnknownTemplate(template)


def _page(body_html: str, unsubscribe_url: str, what: str) -> str:
    return (
        '<!DOCTYPE html><html><body style="font-family: sans-serif; line-height: 1.5">'
        f"{body_html}"
        '<hr><p style="font-size: small; color: #666">'
        f'You get this mail because {escape(what)} are on. <a href="{escape(unsubscribe_url)}">Unsubscribe</a>.'
        "</p></body></html>"
    )


def render(template: str, context: dict[str, Any], unsubscribe_url: str) -> RenderedMail:
    subject = subject_for(template, context)
    name = str(context.get("name") or "there")
    footer = f"\n\n--\nTo stop these mails, open: {unsubscribe_url}\n"
    if template == REMINDER_TEMPLATE:
        end = _day(context["end_date"])
        plan = str(context["plan_name"])
        text = (
            f"Hi {name},\n\nyour {plan} subscription ends on {end} and will not renew. "
            "Renew it before then to keep watching without a break." + footer
        )
        html = _page(
            f"<p>Hi {escape(name)},</p><p>your <strong>{escape(plan)}</strong> subscription ends on "
            f"<strong>{escape(end)}</strong> and will not renew. Renew it before then to keep watching "
            "without a break.</p>",
            unsubscribe_url,
            "subscription reminders",
        )
        return RenderedMail(subject, text, html)
    titles: list[dict[str, Any]] = context["titles"]
    lines = "\n".join(f"- {item['title']}{_year(item)}" for item in titles)
    items = "".join(f"<li><strong>{escape(item['title'])}</strong>{_year(item)}</li>" for item in titles)
    text = f"Hi {name},\n\nnew in the genres you follow:\n\n{lines}" + footer
    html = _page(
        f"<p>Hi {escape(name)},</p><p>new in the genres you follow:</p><ul>{items}</ul>",
        unsubscribe_url,
        "new-release mails",
    )
    return RenderedMail(subject, text, html)
