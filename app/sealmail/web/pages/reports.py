"""Reports: what other mail servers report about the hosted domains — the DMARC aggregate reports
(who sent as each domain, and how much passed SPF, DKIM and DMARC) and the SMTP TLS reports (how
their TLS sessions to this host went), summed over a window of days with a chart per day
(``services.reports``), and who reported, per domain: each receiver's or sending organisation's
reports with their numbers, the largest failing share first. The source addresses get their PTR
names when DNS answers within two seconds (the page does not wait longer for them)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from sealmail.errors import InvalidInput, NotFound
from sealmail.services import domains
from sealmail.services import reports as summed
from sealmail.services.dnsrecords import report_uri
from sealmail.web.state import Admin, render, web

router = APIRouter()
DAY_CHOICES = (7, 30, 90, 365)
PTR_SECONDS = 2.0


@router.get("/admin/reports")
async def reports_page(request: Request, admin: Admin, domain: str = "", days: int = 30) -> Response:
    from sealmail.web.charts import DMARC_STYLES, TLS_STYLES, dmarc_svg, styled_legend, tls_svg

    state = web(request)
    store = state.ctx.config
    hosted = await state.call(domains.list_domains, store)
    if days not in DAY_CHOICES:
        days = 30
    try:
        chosen = domain.strip() or None
        if chosen is not None:
            chosen = (await state.call(domains.get_domain, store, chosen)).name
    except (InvalidInput, NotFound):
        return render(
            request, "message.html", 404, admin=admin, title="Not found", text=f"{domain} is not hosted here."
        )
    dmarc = await state.call(summed.dmarc_summary, store, chosen, days)
    tls = await state.call(summed.tls_summary, store, chosen, days)
    names = await summed.ptr_names(state.lookup, [s.source_ip for s in dmarc.sources], PTR_SECONDS)
    for source in dmarc.sources:
        source.name = names.get(source.source_ip)
    addresses = sorted({report_uri(state.settings, d.name).removeprefix("mailto:") for d in hosted})
    return render(
        request,
        "reports.html",
        admin=admin,
        hosted=hosted,
        chosen=chosen,
        days=days,
        day_choices=DAY_CHOICES,
        dmarc=dmarc,
        tls=tls,
        dmarc_chart=dmarc_svg(dmarc.days),
        tls_chart=tls_svg(tls.days),
        dmarc_legend=styled_legend(DMARC_STYLES),
        tls_legend=styled_legend(TLS_STYLES),
        addresses=addresses,
        names={d.name: d.unicode_name for d in hosted},
    )
