"""The web app's own page and script bundle, as the site serves them to browsers.

Role: what a client that reads the signing constants from the live site fetches: `GET /`
answers the app's HTML page, whose `<script>` tags name a vendor chunk (no constants)
and the main bundle; the main bundle holds the x-signature salt (in the template literal
of the `x-signature` header), the yy suffix (after `hasSearchParamsPath`'s hash) and
`version_code`, minified the way a Webpack/Rspack build writes them. Both are built from
the live drift knobs (`web_drift`), and the bundle's file name carries a hash of its
constants, so a rotation looks like a new build. Requests are counted under
INDEX_ROUTE and BUNDLE_COUNTER (a test checks that nothing is fetched when the gateway's
refresh is off).
"""

from __future__ import annotations

import hashlib

from flask import Flask, Response

from tests.simulator.state import SimState
from tests.simulator.web_drift import WebDrift

INDEX_ROUTE: str = "/"
SCRIPT_ROUTE: str = "/static/js/<name>"
BUNDLE_COUNTER: str = "/static/js/*"
VENDOR_SCRIPT: str = "vendor.3f9a1c.js"
JS_MIMETYPE: str = "application/javascript; charset=utf-8"
HTML_MIMETYPE: str = "text/html; charset=utf-8"
BUILD_NAME: str = "mavis-chat/prod-web-sh-0.1.20"  # the captured build's name


def bundle_name(drift: WebDrift) -> str:
    digest = hashlib.sha256(f"{drift.bundle_salt}|{drift.bundle_yy_suffix}|"
                            f"{drift.bundle_version_code}".encode()).hexdigest()[:8]
    return f"main.{digest}.js"


def index_page(drift: WebDrift) -> str:
    return ("<!DOCTYPE html><html lang=\"zh\"><head><meta charset=\"utf-8\">"
            f"<meta name=\"build\" content=\"{BUILD_NAME}\"><title>MiniMax Agent</title>"
            f"<script defer=\"defer\" src=\"/static/js/{VENDOR_SCRIPT}\"></script>"
            f"<script defer=\"defer\" src=\"/static/js/{bundle_name(drift)}\"></script>"
            "</head><body><div id=\"root\"></div></body></html>")


VENDOR_JS: str = ("(self.webpackChunk=self.webpackChunk||[]).push([[121],{4411:function(e,t,n){"
                  "\"use strict\";var r=n(6540);e.exports=function(e){return r.md5(`${e}`)}}}]);")


def bundle_script(drift: WebDrift) -> str:
    """A minified main chunk with the three constants where the real build keeps them."""
    return (
        "\"use strict\";(self.webpackChunk=self.webpackChunk||[]).push([[792],{51063:function(e,t,n){"
        "var r=n(4411),o=n.n(r);"
        f"let c={{device_platform:\"web\",biz_id:\"3\",app_id:\"3001\",version_code:\"{drift.bundle_version_code}\","
        "timezone_offset:String(-60*new Date().getTimezoneOffset())};"
        "function s(e){let{url:t,body:n,headers:r}=e,a=Math.floor(Date.parse(new Date)/1e3);"
        f"return r[\"x-timestamp\"]=a,r[\"x-signature\"]=o()(`${{a}}{drift.bundle_salt}${{n||\"\"}}`),r}}"
        "function r0(e){let{hasSearchParamsPath:t,bodyToYY:r,method:n,time:a,body:l}=e,u=\"{}\";"
        "return\"post\"===n.toLowerCase()&&(u=JSON.stringify(l||{})),r&&(u=r),"
        f"o()(`${{encodeURIComponent(t)}}_${{u}}${{o()(a.toString())}}{drift.bundle_yy_suffix}`)}}"
        "t.Z={sign:s,yy:r0,common:c}}}]);")


def register_bundle_routes(app: Flask, state: SimState) -> None:
    """`GET /` (the page) and `GET /static/js/<name>` (its scripts; others 404)."""
    def index() -> Response:
        state.count_request(INDEX_ROUTE)
        return Response(index_page(state.drift), status=200, content_type=HTML_MIMETYPE)

    def script(name: str) -> Response:
        state.count_request(BUNDLE_COUNTER)
        drift = state.drift
        if name == VENDOR_SCRIPT:
            return Response(VENDOR_JS, status=200, content_type=JS_MIMETYPE)
        if name == bundle_name(drift):
            return Response(bundle_script(drift), status=200, content_type=JS_MIMETYPE)
        return Response("Not Found", status=404, content_type="text/plain")

    app.add_url_rule(INDEX_ROUTE, endpoint="web_index", view_func=index, methods=["GET"])
    app.add_url_rule(SCRIPT_ROUTE, endpoint="web_script", view_func=script, methods=["GET"])
