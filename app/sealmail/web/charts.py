"""The dashboard's 30-day charts (traffic, spam) as server-rendered SVG (no script, no external resource).

Lines differ by colour *and* dash pattern (readable without colour vision); the same numbers are
in a table beside the chart for screen readers.
"""

from __future__ import annotations

from collections.abc import Sequence

from markupsafe import Markup, escape

from sealmail.services.dashboard import SERIES, SPAM_SERIES, Day

WIDTH, HEIGHT = 640, 240
LEFT, RIGHT, TOP, BOTTOM = 40, 10, 10, 30
STYLES = {  # series -> (colour, dash pattern); colours with >= 3:1 contrast on white
    "accepted": ("#1f5fbf", ""),
    "delivered": ("#1b7a3a", "6 3"),
    "deferred": ("#9a5b00", "2 3"),
    "bounced": ("#b3261e", "10 3 2 3"),
}
SPAM_STYLES = {
    "scanned": ("#1f5fbf", ""),
    "rejected": ("#b3261e", "10 3 2 3"),
    "deferred": ("#9a5b00", "2 3"),
    "junk": ("#6b3fa0", "6 3"),
    "unchecked": ("#4d4d4d", "1 3"),
}


def _nice_max(value: int) -> int:
    for step in (4, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10_000, 20_000, 50_000, 100_000):
        if value <= step:
            return step
    return value


def traffic_svg(
    days: list[Day],
    series: Sequence[str] = tuple(SERIES),
    styles: dict[str, tuple[str, str]] = STYLES,
    what: str = "Messages",
    chart_id: str = "chart-title",
) -> Markup:
    top = _nice_max(max([1] + [max(d.counts.values(), default=0) for d in days]))
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    step = plot_w / max(1, len(days) - 1)

    def x(i: int) -> float:
        return LEFT + i * step

    def y(v: int) -> float:
        return TOP + plot_h - plot_h * v / top

    total = {name: sum(d.counts[name] for d in days) for name in series}
    label = f"{what} per day over the last {len(days)} days: " + ", ".join(f"{n} {total[n]}" for n in series)
    parts = [
        f'<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" aria-labelledby="{escape(chart_id)}" '
        'xmlns="http://www.w3.org/2000/svg">',
        f'<title id="{escape(chart_id)}">{escape(label)}</title>',
    ]
    for fraction in (0, 0.5, 1):
        value = round(top * fraction)
        parts.append(
            f'<line x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y(value):.1f}" y2="{y(value):.1f}" stroke="#d0d4da" />'
        )
        parts.append(
            f'<text x="{LEFT - 6}" y="{y(value) + 4:.1f}" text-anchor="end" font-size="11" fill="#333">{value}</text>'
        )
    last = len(days) - 1
    for i, d in enumerate(days):
        if (last - i) % 7 == 0:  # weekly labels counted back from today, so the last one is today
            anchor = "end" if i == last else "start" if i == 0 else "middle"
            parts.append(
                f'<text x="{x(i):.1f}" y="{HEIGHT - 10}" text-anchor="{anchor}" font-size="11" fill="#333">'
                f"{d.day:%d %b}</text>"
            )
    for name in series:
        colour, dash = styles[name]
        points = " ".join(f"{x(i):.1f},{y(d.counts[name]):.1f}" for i, d in enumerate(days))
        dash_attr = f' stroke-dasharray="{dash}"' if dash else ""
        parts.append(
            f'<polyline fill="none" stroke="{colour}" stroke-width="2"{dash_attr} points="{points}">'
            f"<title>{name}</title></polyline>"
        )
    parts.append("</svg>")
    return Markup("".join(parts))  # noqa: S704 - every interpolated value is a number, a date or escaped


def legend() -> list[tuple[str, str, str]]:
    return [(name, *STYLES[name]) for name in SERIES]


def spam_svg(days: list[Day]) -> Markup:
    return traffic_svg(days, SPAM_SERIES, SPAM_STYLES, "Messages scanned for spam", "spam-chart-title")


def spam_legend() -> list[tuple[str, str, str]]:
    return [(name, *SPAM_STYLES[name]) for name in SPAM_SERIES]


# The Reports page (``services.reports``): messages that passed and failed DMARC, TLS sessions that
# were fine and that failed, per day.
DMARC_STYLES = {"passed": ("#1b7a3a", ""), "failed": ("#b3261e", "10 3 2 3")}
TLS_STYLES = {"successful": ("#1f5fbf", ""), "failed": ("#b3261e", "10 3 2 3")}


def dmarc_svg(days: list[Day]) -> Markup:
    return traffic_svg(days, tuple(DMARC_STYLES), DMARC_STYLES, "Messages reported by DMARC", "dmarc-chart-title")


def tls_svg(days: list[Day]) -> Markup:
    return traffic_svg(days, tuple(TLS_STYLES), TLS_STYLES, "TLS sessions reported", "tls-chart-title")


def styled_legend(styles: dict[str, tuple[str, str]]) -> list[tuple[str, str, str]]:
    return [(name, *style) for name, style in styles.items()]
