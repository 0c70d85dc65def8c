"""Issue #17: security headers. A Content-Security-Policy on the console and the API docs that allows no inline
script without the page's nonce; Cache-Control: no-store on every API answer (errors and 404s included); the docs'
Swagger UI needs no inline script; the console's own inline scripts carry the nonce."""
from __future__ import annotations

import re

from rest_framework.test import APIClient

from tests import factories


def csp(response) -> dict[str, str]:
    header = response["Content-Security-Policy"]
    return {part.split()[0]: part for part in (p.strip() for p in header.split(";")) if part}


def test_the_console_has_a_strict_script_policy_and_its_inline_scripts_carry_the_nonce(client, tenant):
    client.force_login(factories.make_operator(tenant))
    response = client.get("/admin/")
    policy = csp(response)
    nonce = re.search(r"'nonce-([^']+)'", policy["script-src"]).group(1)
    assert "'unsafe-inline'" not in policy["script-src"]
    assert policy["frame-ancestors"] == "frame-ancestors 'none'"
    assert policy["object-src"] == "object-src 'none'"
    html = response.content.decode()
    inline = re.findall(r"<script(?![^>]*\bsrc=)([^>]*)>", html)
    assert inline, "the language switcher's script"
    assert all(f'nonce="{nonce}"' in attrs for attrs in inline)
    assert not re.search(r"\son[a-z]+=\"", html), "inline event handlers would be blocked by the policy"


def test_the_login_page_and_the_api_docs_have_the_policy_and_the_docs_no_inline_script(client, db):
    assert "script-src 'self'" in client.get("/admin/login/")["Content-Security-Policy"]
    docs = client.get("/api/docs/")
    assert docs.status_code == 200
    assert "script-src 'self'" in docs["Content-Security-Policy"]
    html = docs.content.decode()
    assert not re.findall(r"<script(?![^>]*\bsrc=)[^>]*>", html)
    script_url = re.search(r'<script src="([^"]*\?script[^"]*)"', html).group(1).replace("&amp;", "&")
    script = client.get(script_url)
    assert script.status_code == 200 and "SwaggerUIBundle" in script.content.decode()


def test_every_api_answer_is_no_store(api, db):
    assert api.get("/api/v1/client")["Cache-Control"] == "no-store"
    assert api.get("/api/v1/coupons/NOSUCHCODE1")["Cache-Control"] == "no-store"
    assert api.get("/api/v1/no-such-endpoint")["Cache-Control"] == "no-store"
    assert APIClient().get("/api/v1/client")["Cache-Control"] == "no-store"  # 401
    assert api.post("/api/v1/claims", {}, format="json")["Cache-Control"] == "no-store"  # 400
