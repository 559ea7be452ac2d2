"""Alerts: the open incidents, the history of the range with each incident's peak severity, cause
and next step (a resolved incident still says why it fired), the silences in force; and, with
`?incident=ID` (the link in every Slack message and report), one incident: its timeline of
transitions, scope, value against threshold, cause and next step, links to the chart and to the
calls of its window, and the controls to acknowledge it or silence its signal and scope."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import polars as pl
import streamlit as st

from common import formatting as fmt
from common import links
from dashboards import controls, figures, layout, tables
from dashboards.client import ApiError, scope_pairs

BADGE = {"critical": "red", "warning": "orange", "ok": "green", "resolved": "green"}
SILENCE_FOR = {60: "1 hour", 240: "4 hours", 1440: "1 day", 10_080: "7 days"}
HISTORY_COLUMNS = ("peak_severity", "state", "signal", "summary", "scope", "opened_at", "resolved_at", "cause",
                   "next_step", "url")

api = layout.api_for("alerts")
view = controls.view(api)
st.title("Alerts")


def _instant(text: object) -> datetime | None:
    if not text:
        return None
    value = datetime.fromisoformat(str(text).replace("Z", "+00:00"))
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _value(number: object, unit: str) -> str:
    """An alert's value or threshold in its unit."""
    if number is None:
        return fmt.MISSING
    if unit in ("ratio", "share", "fraction"):
        return fmt.percent(number)
    if unit in ("usd", "$"):
        return fmt.money(number)
    if unit == "ms":
        return fmt.duration_ms(number)
    if unit == "x":
        return f"{fmt.number(number)}×"
    if unit == "tokens":
        return f"{fmt.count(number)} tokens"
    return f"{fmt.number(number, places=2)} {unit}".strip()


def _act(what: str, method: str, path: str, payload: dict | None = None) -> None:
    """Run an action; its outcome as a message (a refused key is a message here, not a sign-in form)."""
    try:
        api.act(method, path, payload)
    except ApiError as err:
        hint = " Acting on alerts needs a key with the admin scope." if err.status in (401, 403) else ""
        st.session_state["alert_action"] = ("error", f"{what} failed: {err}.{hint}")
    else:
        st.session_state["alert_action"] = ("success", f"{what}: done.")


def incident_view(incident_id: str) -> None:
    incident, events = api.incident(incident_id)
    state, signal = str(incident.get("state")), str(incident.get("signal"))
    levels = [figures.SEVERITY_LEVEL.get(str(s), 0) for s in (events["severity"].to_list() if events.height else [])]
    peak = ("critical", "warning", "ok")[2 - max(levels, default=figures.SEVERITY_LEVEL.get(str(incident.get("severity")), 0))]
    opened, resolved = _instant(incident.get("opened_at")), _instant(incident.get("resolved_at"))
    pairs = scope_pairs(incident.get("scope"))
    fired = events.filter(pl.col("kind").is_in(["opened", "escalated", "renotified"])) if events.height else events
    last = fired.row(fired.height - 1, named=True) if fired.height else incident  # why it fired, even once resolved
    st.markdown(f":{BADGE.get(peak, 'gray')}-badge[{peak} at its peak] :{BADGE.get(state, 'gray')}-badge[{state} now] "
                f":gray-badge[{signal}]")
    st.header(str(last.get("summary") or signal.replace("_", " ")))
    st.caption(f"Incident {incident_id} · {', '.join(f'{k} = {v}' for k, v in pairs) or 'whole project'}")
    row = st.columns(4)
    layout.metric(row[0], "Peak severity", peak, "highest reached")
    layout.metric(row[1], "State now", "resolved" if state == "resolved" else state,
                  f"acknowledged by {incident['acked_by']}" if incident.get("acked_by") else "not acknowledged")
    unit = str(incident.get("unit") or "")
    layout.metric(row[2], "Value at last change", _value(incident.get("value"), unit),
                  f"threshold {_value(incident.get('threshold'), unit)}")
    lasted = (resolved or datetime.now(UTC)) - opened if opened else None
    layout.metric(row[3], "Opened (UTC)", fmt.moment(opened),
                  (f"resolved after {fmt.duration_ms(lasted.total_seconds() * 1000)}" if resolved else
                   f"open for {fmt.duration_ms(lasted.total_seconds() * 1000)}") if lasted else None)
    if last.get("cause"):
        st.info(f"**Probable cause:** {last['cause']}", icon=":material/search:")
    if last.get("next_step"):
        st.success(f"**Next step:** {last['next_step']}", icon=":material/build:")

    window_start = (opened or view.start) - timedelta(hours=1)
    window_end = min((resolved or datetime.now(UTC)) + timedelta(hours=1), controls.now_minute())
    dims = [f"{k}:{v}" for k, v in pairs if k in links.DIMENSIONS]
    page, extra = links.chart_page(signal)
    chart_start = (window_start - timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)
    chart_end = min(window_end + timedelta(days=1), controls.now_minute())
    left, right = st.columns(2)
    layout.link("Open the chart →", controls.link(page, start=chart_start, end=chart_end, where=dims, **extra),
                where=left)
    layout.link("The calls of the incident's window →", controls.link("calls", start=window_start, end=window_end,
                                                                       where=dims), where=right)

    st.plotly_chart(figures.incident_timeline(events, until=resolved or datetime.now(UTC)), key="timeline")
    if events.height:
        in_unit = events.with_columns(
            *(pl.Series(c, [_value(v, str(u or "")) for v, u in zip(events[c].to_list(), events["unit"].to_list(),
                                                                      strict=True)], pl.String)
              for c in ("value", "threshold")))
        tables.show_table(in_unit.select("at", "kind", "from_state", "to_state", "severity", "value", "threshold",
                                         "summary", "actor"), kinds={"value": "text", "threshold": "text"},
                          titles={"from_state": "from", "to_state": "to", "actor": "by"}, key="events")

    if "alert_action" in st.session_state:
        kind, message = st.session_state.pop("alert_action")
        (st.error if kind == "error" else st.success)(message)
    left, right = st.columns(2)
    with left, st.form("ack"):
        st.markdown("**Acknowledge** — no more re-notifications until the state changes")
        who = st.text_input("Your name", key="ack_by", max_chars=200)
        if st.form_submit_button("Acknowledge", disabled=state == "resolved" or bool(incident.get("acked_by"))):
            if who.strip():
                _act("Acknowledge", "POST", f"/v1/alerts/{incident_id}/ack", {"by": who.strip()})
                st.rerun()
            st.warning("Say who takes it.")
    with right, st.form("silence"):
        st.markdown(f"**Silence** {signal.replace('_', ' ')} for this scope — still recorded, nobody is notified")
        minutes = st.selectbox("For", list(SILENCE_FOR), format_func=SILENCE_FOR.get, key="silence_for")
        keep = st.multiselect("Scope to match", [f"{k}={v}" for k, v in pairs],
                              default=[f"{k}={v}" for k, v in pairs], key="silence_scope")
        by = st.text_input("Your name", key="silence_by", max_chars=200)
        reason = st.text_input("Why", key="silence_reason", max_chars=500)
        if st.form_submit_button("Silence"):
            if by.strip():
                scope = dict(item.split("=", 1) for item in keep)
                _act("Silence", "POST", "/v1/silences", {"minutes": int(minutes), "by": by.strip(), "signal": signal,
                                                          "scope": scope, "reason": reason.strip()})
                st.rerun()
            st.warning("Say who silences it.")
    st.divider()


def history(found: pl.DataFrame, signal: str | None) -> None:
    st.subheader("Incidents in this range")
    if signal and found.height:
        found = found.filter(pl.col("signal") == signal)
    if found.is_empty():
        st.caption("no incidents in this range" + (f" for {signal}" if signal else ""))
        return
    shown = found.sort("opened_at", descending=True)
    shown = shown.with_columns(pl.Series("url", controls.drill_urls(shown["incident_id"].to_list(), "alerts",
                                                                    param="incident")))
    tables.show_table(shown.select([c for c in HISTORY_COLUMNS if c in shown.columns]), links={"summary": "url"},
                      titles={"state": "state now"}, key="history", height=380)
    worst = found.filter(pl.col("peak_severity") == "critical").height
    st.caption(f"{fmt.count(found.height)} incidents, {fmt.count(worst)} of them critical at their peak. "
               "Click a summary for its timeline, cause and controls.")


with layout.guard(api):
    incident_id = st.query_params.get("incident")
    if incident_id:
        with st.spinner("Loading the incident…"):
            try:
                incident_view(incident_id)
            except ApiError as err:
                if err.status != 404:
                    raise
                st.warning(f"No incident {incident_id!r} (it may belong to a project your key cannot read).")
    with st.spinner("Loading alerts…"):
        (engine, detail, open_alerts), found, silences = api.together(
            lambda: api.alerts(state="open"), lambda: api.incidents(view), api.silences)
    if not engine:
        layout.empty("No alert engine configured.", "This llmledger evaluates no signals yet: incidents (cache "
                     "collapse, latency tail, stale routing, spend spikes, budgets, …) appear here, with their cause "
                     "and next step, once the signal engine runs.")
        st.stop()
    st.subheader("Open now")
    if open_alerts.is_empty():
        st.success("No open alerts.", icon=":material/check_circle:")
    else:
        shown = open_alerts.with_columns(
            pl.Series("url", controls.drill_urls(open_alerts["incident_id"].to_list(), "alerts", param="incident")))
        tables.show_table(shown.select("severity", "signal", "summary", "scope", "opened_at", "changed_at", "acked_by",
                                       "url"), links={"summary": "url"}, titles={"acked_by": "acknowledged by"},
                          key="open_incidents")
    history(found, st.query_params.get("signal"))

    st.subheader("Silences in force")
    if silences.is_empty():
        st.caption("none")
    else:
        for row in silences.iter_rows(named=True):
            matchers = ", ".join(f"{k}={v}" for k, v in scope_pairs(row.get("matchers"))) or "every scope"
            left, right = st.columns([5, 1])
            left.markdown(f"**{row.get('signal') or 'every signal'}** · {matchers} · until "
                          f"{fmt.timestamp(row.get('ends_at'))} · by {row.get('created_by') or row.get('by') or '—'}"
                          + (f" — {row['reason']}" if row.get("reason") else ""))
            if right.button("Lift", key=f"lift_{row['silence_id']}"):
                _act("Lift the silence", "DELETE", f"/v1/silences/{row['silence_id']}")
                st.rerun()
    st.caption(f"Range {fmt.timestamp(view.start)} → {fmt.timestamp(view.end)}. "
               + ("" if not detail else detail))
