"""What people read: the Slack text and Block Kit blocks of a notification, and its sparkline.

A thread's first message carries everything (severity, scope, value vs threshold, trend, chart
link, probable cause, next step); replies in the thread say what changed. Blocks are built with
slack_sdk's models, which enforce Slack's size limits.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from slack_sdk.models.blocks import ContextBlock, DividerBlock, HeaderBlock, MarkdownTextObject, SectionBlock

BARS = "▁▂▃▄▅▆▇█"
ICON = {"critical": "🔴", "warning": "🟠", "ok": "✅", "info": "ℹ️"}
VERB = {"opened": "Opened", "escalated": "⬆️ Escalated to", "downgraded": "⬇️ Down to", "resolved": "✅ Resolved",
        "renotified": "⏰ Still", "acknowledged": "👀 Acknowledged", "noted": "ℹ️ Noted"}


def sparkline(values: list[float]) -> str:
    """Unicode bars for a short series, scaled to its own min..max (flat series: middle bars).
    Eight lines of our own rather than a dependency for them."""
    points = [v for v in values if v is not None and v == v]
    if not points:
        return ""
    low, high = min(points), max(points)
    if high == low:
        return BARS[3] * len(points)
    return "".join(BARS[min(len(BARS) - 1, int((v - low) / (high - low) * (len(BARS) - 1) + 0.5))] for v in points)


def chart_url(dashboard_url: str | None, payload: dict[str, Any]) -> str | None:
    """The dashboard link of an alert: the signal, its scope and a window around it."""
    if not dashboard_url:
        return None
    query = {"signal": payload["signal"], **{f"scope.{k}": v for k, v in payload["scope"].items()},
             "at": payload["at"], "incident": payload["incident_id"]}
    return f"{dashboard_url.rstrip('/')}/alerts?{urlencode(query)}"


def _scope_text(scope: dict[str, str]) -> str:
    return "\n".join(f"{k}: `{v}`" for k, v in scope.items())


def members_text(members: list[dict], unit: str, limit: int = 8) -> str:
    """The scopes one incident groups, one per line with the worst value each reached (the
    attributes they all share left out)."""
    from alerts.rules.base import format_value

    names = [{k: v for k, v in m.items() if k not in ("value", "project")} for m in members]
    shared = {k for k in names[0] if all(n.get(k) == names[0][k] for n in names)} if names else set()
    lines = [" ".join(f"{k}=`{v}`" for k, v in n.items() if k not in shared) + f": {format_value(m.get('value'), unit)}"
             for m, n in zip(members[:limit], names[:limit], strict=False)]
    if len(members) > limit:
        lines.append(f"… and {len(members) - limit} more")
    return "\n".join(lines)


def _minutes_text(m: int) -> str:
    return f"{m // 60} h" if m % 60 == 0 else f"{m} min"


def backoff_text(gaps_min: list[int]) -> str:
    """The re-notification schedule of a standing CRITICAL for people: 'after 1 h, 4 h, 12 h, then
    every 24 h until acknowledged'."""
    if not gaps_min:
        return "none"

    head = ", ".join(_minutes_text(m) for m in gaps_min[:-1])
    last = _minutes_text(gaps_min[-1])
    return (f"after {head}, then every {last}" if head else f"every {last}") + " until acknowledged"


def _onset_text(payload: dict[str, Any]) -> str:
    onset = payload.get("onset")
    return f" (looked up around the onset, {onset[11:16]} UTC)" if isinstance(onset, str) and len(onset) >= 16 else ""


def fallback_text(payload: dict[str, Any]) -> str:
    """The notification text (what mobile notifications and the log show)."""
    state = payload["state"].upper() if payload["kind"] != "resolved" else "RESOLVED"
    count = len(payload.get("members") or [])
    grouped = f" [{count} scopes]" if count > 1 else ""
    # who it is about comes first (project, team), then the rest of the scope (route, model, period…)
    names = {"project": payload.get("project") or payload["scope"].get("project"),
             "team": payload.get("team") or payload["scope"].get("team")}
    parts = [f"{k}={v}" for k, v in names.items() if v]
    parts += [f"{k}={v}" for k, v in payload["scope"].items() if k not in names]
    return f"[{state}] {payload['title']} ({payload['signal']}) — {', '.join(parts)}{grouped}: {payload['summary']}"


def render(payload: dict[str, Any], *, reply: bool) -> tuple[str, list[dict[str, Any]]]:
    """(text, blocks) of a notification: the full first message, or a reply in its thread."""
    text = fallback_text(payload)
    severity = payload["severity"]
    icon = ICON.get(severity, "")
    value = f"{payload['value_text']} (threshold {payload['threshold_text']})"
    trend = sparkline(payload.get("series") or [])
    link = payload.get("chart_url")
    if reply:
        kind = payload["kind"]
        head = {
            "escalated": f"{VERB[kind]} *{payload['state'].upper()}* {icon}",
            "downgraded": f"{VERB[kind]} *{payload['state'].upper()}* {icon}",
            "resolved": f"{VERB[kind]} at {payload['at'][11:16]} UTC",
            "renotified": f"{VERB[kind]} *{payload['state'].upper()}* since {payload['opened_at'][11:16]} UTC "
                          "(not acknowledged)",
            "acknowledged": f"{VERB[kind]} by {payload.get('actor') or 'someone'}",
            "opened": f"{icon} *{payload['state'].upper()}*",
            "noted": f"{VERB[kind]}",
        }[kind]
        lines = [head, f"{payload['summary']}", f"Value: {value}" + (f"  `{trend}`" if trend else "")]
        if kind == "escalated" and payload.get("cause"):
            lines.append(f"*Probable cause{_onset_text(payload)}:* {payload['cause']}")
        if len(payload.get("members") or []) > 1 and kind in ("escalated", "renotified"):
            lines.append(f"*{len(payload['members'])} scopes:*\n" + members_text(payload["members"], payload["unit"]))
        if payload.get("next_renotify_min"):
            lines.append(f"Next reminder in {_minutes_text(int(payload['next_renotify_min']))} unless acknowledged")
        blocks = [SectionBlock(text=MarkdownTextObject(text="\n".join(lines)[:3000]))]
        return text, [b.to_dict() for b in blocks]
    state = "RESOLVED" if payload["kind"] == "resolved" else payload["state"].upper()
    blocks: list[Any] = [
        HeaderBlock(text=f"{icon} {state} · {payload['title']}"[:150]),
        SectionBlock(
            text=MarkdownTextObject(text=payload["summary"][:3000]),
            fields=[
                MarkdownTextObject(text=f"*Scope*\n{_scope_text(payload['scope'])}"[:2000]),
                MarkdownTextObject(text=f"*Value*\n{value}"),
                MarkdownTextObject(text=f"*Since*\n{payload['opened_at'][:16].replace('T', ' ')} UTC"),
                MarkdownTextObject(text=f"*Trend*\n`{trend}`" if trend else "*Trend*\n—"),
            ],
        ),
    ]
    members = payload.get("members") or []
    if len(members) > 1:
        blocks.append(SectionBlock(text=MarkdownTextObject(
            text=f"*One cause, {len(members)} scopes*\n{members_text(members, payload['unit'])}"[:3000])))
    if payload.get("cause"):
        blocks.append(SectionBlock(text=MarkdownTextObject(
            text=f"*Probable cause{_onset_text(payload)}*\n{payload['cause']}"[:3000])))
    if payload.get("next_step"):
        blocks.append(SectionBlock(text=MarkdownTextObject(text=f"*Next step*\n{payload['next_step']}"[:3000])))
    if payload.get("renotify_backoff_min") and payload.get("severity") == "critical":
        blocks.append(ContextBlock(elements=[MarkdownTextObject(
            text=f"Re-notified {backoff_text(list(payload['renotify_backoff_min']))}")]))
    context = [MarkdownTextObject(text=f"incident `{payload['incident_id']}` · signal `{payload['signal']}`")]
    if link:
        context.append(MarkdownTextObject(text=f"<{link}|Open the chart>"))
    blocks += [ContextBlock(elements=context), DividerBlock()]
    return text, [b.to_dict() for b in blocks]
