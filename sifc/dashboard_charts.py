"""Dashboards drawn: a PNG of the figures of :func:`sifc.dashboards.get`, and a PDF.

matplotlib's object API (``Figure``, the Agg canvas, no pyplot state), so that concurrent
requests never share a figure; the PDF is laid out with reportlab (title, date, the figures in
tables, then the charts). Labels are French by default, English on request.
"""

from __future__ import annotations

import io
from datetime import UTC, datetime
from typing import Any
from xml.sax.saxutils import escape

from sifc.i18n import known, translate


def label(key: str, lang: str, **params: Any) -> str:
    """The label ``key`` (msgid ``chart.<key>``) in ``lang`` (French when the language is unknown).

    Unknown keys as themselves.
    """
    full = f"chart.{key}"
    if not known(full):
        return key
    return translate(full, "en" if lang == "en" else "fr", **params)


def title(dashboard: dict[str, Any], lang: str) -> str:
    """The dashboard's title: its level and the unit's name."""
    return label("title", lang, level=label(f"level.{dashboard['level']}", lang), name=dashboard["name"])


MAX_BARS = 15
"""Bars per panel at most: beyond, the smallest are summed into one "others" bar (the PDF lists them all)."""


def _number(value: float, lang: str, digits: int = 1) -> str:
    shown = f"{value:.{digits}f}"
    return shown.replace(".", ",") if lang == "fr" else shown


def _percent(share: float | None, lang: str) -> str:
    return "—" if share is None else f"{_number(share * 100, lang)} %"


def _bars(ax: Any, names: list[str], values: list[float], heading: str, unit: str, lang: str,
          color: str = "#2f6f8f") -> None:
    ax.set_title(heading, fontsize=10, fontweight="bold")
    if not names:
        ax.text(0.5, 0.5, label("none", lang), ha="center", va="center", transform=ax.transAxes, color="#777777")
        ax.set_xticks([])
        ax.set_yticks([])
        return
    if len(names) > MAX_BARS:
        rest = len(names) - MAX_BARS + 1
        names = [*names[:MAX_BARS - 1], label("others", lang, count=rest)]
        values = [*values[:MAX_BARS - 1], sum(values[MAX_BARS - 1:])]
    positions = list(range(len(names)))
    bars = ax.barh(positions, values, color=color)
    ax.set_yticks(positions, labels=names, fontsize=8)
    ax.invert_yaxis()
    ax.bar_label(bars, labels=[f"{v:g}" for v in values], fontsize=7, padding=2)
    ax.set_xlabel(unit, fontsize=8)
    ax.tick_params(axis="x", labelsize=7)
    ax.margins(x=0.15)


def _value_name(value: str | None, lang: str) -> str:
    return value if value else label("unknown", lang)


def figure(dashboard: dict[str, Any], lang: str = "fr") -> Any:
    """The dashboard as a matplotlib ``Figure`` of 3×2 panels.

    Land use, tenure regime, NICAD status, procedures by state, imports per month, and the
    parcels per commune for a pole (a summary table for a commune).
    """
    from matplotlib.figure import Figure

    fig = Figure(figsize=(12, 12), dpi=100, layout="constrained")
    fig.suptitle(title(dashboard, lang), fontsize=14, fontweight="bold")
    axes = fig.subplots(3, 2)
    parcels = label("parcels", lang)
    by_use = dashboard["by_land_use"]
    _bars(axes[0][0], [_value_name(v["value"], lang) for v in by_use], [v["parcels"] for v in by_use],
          label("land_use", lang), parcels, lang)
    by_regime = dashboard["by_tenure_regime"]
    _bars(axes[0][1], [_value_name(v["value"], lang) for v in by_regime], [v["parcels"] for v in by_regime],
          label("tenure_regime", lang), parcels, lang, color="#8a4b08")
    nicad = dashboard["nicad"]
    _bars(axes[1][0], [label(f"status.{v['value']}", lang) for v in nicad["by_status"]],
          [v["parcels"] for v in nicad["by_status"]], label("nicad", lang, share=_percent(nicad["coverage"], lang)),
          parcels, lang, color="#3c8d2f")
    states = dashboard["procedures"]["by_state"]
    _bars(axes[1][1], [label(f"state.{s['state']}", lang) for s in states] if dashboard["procedures"]["total"] else [],
          [s["procedures"] for s in states], label("procedures", lang), label("procedures_unit", lang), lang,
          color="#7b3f8f")
    _imports(axes[2][0], dashboard["imports"], lang)
    communes = sorted(dashboard.get("communes") or [], key=lambda c: -c["parcels"])
    if "communes" in dashboard:
        _bars(axes[2][1], [c["name"] for c in communes], [c["parcels"] for c in communes], label("communes", lang),
              parcels, lang, color="#555555")
    else:
        _summary_panel(axes[2][1], dashboard, lang)
    return fig


def _imports(ax: Any, imports: list[dict[str, Any]], lang: str) -> None:
    ax.set_title(label("imports", lang), fontsize=10, fontweight="bold")
    if not imports:
        ax.text(0.5, 0.5, label("none", lang), ha="center", va="center", transform=ax.transAxes, color="#777777")
        ax.set_xticks([])
        ax.set_yticks([])
        return
    months = [i["month"] for i in imports]
    bars = ax.bar(months, [i["parcel_versions"] for i in imports], color="#c0612b", width=0.6)
    ax.set_xlim(-0.8, max(len(months), 3) - 0.2)
    ax.bar_label(bars, fontsize=7, padding=2)
    ax.set_xlabel(label("month", lang), fontsize=8)
    ax.tick_params(labelsize=7)
    ax.margins(y=0.15)


def _summary_rows(dashboard: dict[str, Any], lang: str) -> list[tuple[str, str]]:
    nicad, procedures, conflicts = dashboard["nicad"], dashboard["procedures"], dashboard["conflicts"]
    pairs = str(conflicts["pairs"]) + ("+" if conflicts["truncated"] else "") if conflicts["computed"] \
        else label("not_computed", lang)
    return [
        (label("total_parcels", lang), str(dashboard["parcels"]["count"])),
        (label("total_area", lang), _number(dashboard['parcels']['area_m2'] / 10_000, lang, 2)),
        (label("with_nicad", lang), str(nicad["with_nicad"])),
        (label("coverage", lang), _percent(nicad["coverage"], lang)),
        (label("procedures_total", lang), f"{procedures['total']} ({procedures['in_progress']})"),
        (label("overdue", lang), str(procedures.get("overdue", 0))),
        (label("conflicts", lang, tolerance=_number(conflicts["tolerance_m2"], lang, 2)), pairs),
        *([(label("women_share", lang), _percent(dashboard["gender"]["total"]["women_share"], lang))]
          if "gender" in dashboard else []),
    ]


def _summary_panel(ax: Any, dashboard: dict[str, Any], lang: str) -> None:
    ax.set_title(label("summary", lang), fontsize=10, fontweight="bold")
    ax.axis("off")
    rows = _summary_rows(dashboard, lang)
    table = ax.table(cellText=[list(r) for r in rows], loc="center", cellLoc="left", colWidths=[0.7, 0.3])
    table.auto_set_font_size(False)
    table.set_fontsize(9)
    table.scale(1, 1.6)


def png(dashboard: dict[str, Any], lang: str = "fr") -> bytes:
    """The dashboard's chart as PNG bytes."""
    out = io.BytesIO()
    figure(dashboard, lang).savefig(out, format="png")
    return out.getvalue()


def _table(rows: list[list[Any]], widths: list[float]) -> Any:
    from reportlab.lib import colors
    from reportlab.platypus import Table, TableStyle

    table = Table(rows, colWidths=widths, repeatRows=1)
    table.setStyle(TableStyle([
        ("FONTNAME", (0, 0), (-1, 0), "Helvetica-Bold"), ("FONTNAME", (0, 1), (-1, -1), "Helvetica"),
        ("FONTSIZE", (0, 0), (-1, -1), 8), ("GRID", (0, 0), (-1, -1), 0.4, colors.grey),
        ("BACKGROUND", (0, 0), (-1, 0), colors.HexColor("#e8eef2")), ("ALIGN", (1, 1), (-1, -1), "RIGHT"),
    ]))
    return table


def _breakdown_rows(values: list[dict[str, Any]], heading: str, lang: str) -> list[list[Any]]:
    return [[heading, label("count", lang), label("area", lang)]] + [
        [_value_name(v["value"], lang), v["parcels"], _number(v['area_m2'] / 10_000, lang, 2)] for v in values]


def pdf(dashboard: dict[str, Any], lang: str = "fr", *, now: datetime | None = None) -> bytes:
    """The dashboard as an A4 PDF: title, date, the figures in tables, then the chart (two pages)."""
    from reportlab.lib.pagesizes import A4
    from reportlab.lib.styles import ParagraphStyle, getSampleStyleSheet
    from reportlab.lib.units import cm
    from reportlab.platypus import Image, PageBreak, Paragraph, SimpleDocTemplate, Spacer

    styles = getSampleStyleSheet()
    head = ParagraphStyle("head", parent=styles["Heading3"], fontSize=10, leading=12, spaceBefore=6, spaceAfter=3)
    when = (now or datetime.now(UTC)).strftime("%Y-%m-%d %H:%M")
    story: list[Any] = [Paragraph(escape(title(dashboard, lang)), styles["Title"]),
                        Paragraph(label("generated", lang, date=when), styles["Normal"]), Spacer(1, 0.4 * cm)]
    half = 8.4 * cm
    summary = [[label("figure", lang), label("value", lang)]] + [list(r) for r in _summary_rows(dashboard, lang)]
    story += [Paragraph(label("summary", lang), head), _table(summary, [11 * cm, 5 * cm])]
    story += [Paragraph(label("land_use", lang), head),
              _table(_breakdown_rows(dashboard["by_land_use"], label("value", lang), lang), [half, 3.8 * cm, 3.8 * cm]),
              Paragraph(label("tenure_regime", lang), head),
              _table(_breakdown_rows(dashboard["by_tenure_regime"], label("value", lang), lang),
                     [half, 3.8 * cm, 3.8 * cm])]
    procedures = [[label("state", lang), label("procedures_unit", lang).capitalize()]] + [
        [label(f"state.{s['state']}", lang), s["procedures"]] for s in dashboard["procedures"]["by_state"]]
    story += [Paragraph(label("procedures", lang), head), _table(procedures, [half, 3.8 * cm])]
    if dashboard["procedures"].get("median_days"):  # ADR 0005 §8: the median time of each step
        medians = [[label("step", lang), label("days", lang), label("transitions", lang)]] + [
            [label(f"state.{m['step']}", lang), _number(m["median_days"], lang), m["transitions"]]
            for m in dashboard["procedures"]["median_days"]]
        story += [Paragraph(label("median_days", lang), head), _table(medians, [half, 3.8 * cm, 3.8 * cm])]
    if dashboard["imports"]:
        imports = [[label("month", lang), label("batches", lang), label("versions", lang)]] + [
            [i["month"], i["batches"], i["parcel_versions"]] for i in dashboard["imports"]]
        story += [Paragraph(label("imports", lang), head), _table(imports, [half, 3.8 * cm, 3.8 * cm])]
    if dashboard.get("communes"):
        rows = [[label("commune", lang), label("count", lang), label("coverage", lang)]] + [
            [c["name"], c["parcels"], _percent(c["nicad_coverage"], lang)] for c in dashboard["communes"]]
        story += [Paragraph(label("communes", lang), head), _table(rows, [half, 3.8 * cm, 3.8 * cm])]
    chart = io.BytesIO(png(dashboard, lang))
    story += [PageBreak(), Paragraph(label("charts", lang), styles["Heading2"]),
              Image(chart, width=17 * cm, height=17 * cm)]
    out = io.BytesIO()
    document = SimpleDocTemplate(out, pagesize=A4, title=title(dashboard, lang), author="SIFC",
                                 leftMargin=2 * cm, rightMargin=2 * cm, topMargin=1.8 * cm, bottomMargin=1.8 * cm)
    document.build(story)
    return out.getvalue()
