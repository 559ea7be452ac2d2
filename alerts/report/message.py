"""A rendered report as one MIME message: multipart/mixed holding multipart/alternative (text,
then HTML inside multipart/related with its PNG charts, each with the Content-ID the HTML's
`cid:` refers to) and the CSV attachment. The Message-ID is derived from the report period and
audience, so a re-send after an interrupted run carries the same id and clients can fold it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from datetime import datetime
from email.message import EmailMessage
from email.utils import format_datetime

from alerts.report.render import Rendered, content_id


def message_id(report: str, period: str, audience: str, sender: str) -> str:
    """`<weekly.2025-W45.3f2a9c1b7d4e@example.com>`: stable for a report, period and audience."""
    digest = hashlib.sha256(f"{report}\0{period}\0{audience}".encode()).hexdigest()[:12]
    domain = sender.rsplit("@", 1)[-1] or "llmledger"
    return f"<{report}.{period}.{digest}@{domain}>"


def build_message(
    rendered: Rendered, *, sender: str, recipients: Sequence[str], msg_id: str, date: datetime
) -> EmailMessage:
    """The e-mail: From `sender`, To every recipient, the rendered parts, images and CSV."""
    msg = EmailMessage()
    msg["Subject"] = rendered.subject
    msg["From"] = sender
    msg["To"] = ", ".join(recipients)
    msg["Date"] = format_datetime(date)
    msg["Message-ID"] = msg_id
    msg["Auto-Submitted"] = "auto-generated"  # RFC 3834: no vacation auto-replies
    msg.set_content(rendered.text, subtype="plain", charset="utf-8")
    msg.add_alternative(rendered.html, subtype="html", charset="utf-8")
    if rendered.charts:
        html_part = msg.get_payload()[1]  # type: ignore[index]
        for chart in rendered.charts:
            html_part.add_related(chart.png, maintype="image", subtype="png", cid=f"<{content_id(chart)}>",
                                  filename=f"{chart.name}.png", disposition="inline")
    msg.add_attachment(rendered.csv.encode("utf-8"), maintype="text", subtype="csv", filename=rendered.csv_name)
    return msg
