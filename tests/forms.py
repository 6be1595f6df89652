"""Helpers that use the HTML pages as a browser would: read hidden fields, post forms."""

from __future__ import annotations

from typing import Any

from bs4 import BeautifulSoup


def hidden_fields(html: str) -> dict[str, str]:
    soup = BeautifulSoup(html, "html.parser")
    form = soup.find("main").find("form", method="post") if soup.find("main") else None
    form = form or soup.find("form", method="post")
    assert form is not None, "no form on the page"
    return {i["name"]: i.get("value", "") for i in form.find_all("input", type="hidden")}


def form_values(html: str) -> dict[str, str]:
    """What the page's main form would send as it stands (text inputs, selects, checked boxes)."""
    soup = BeautifulSoup(html, "html.parser")
    form = soup.find("main").find("form", method="post")
    values: dict[str, str] = {}
    for item in form.find_all("input"):
        kind = item.get("type", "text")
        if kind in {"checkbox", "radio"}:
            if item.has_attr("checked"):
                values[item["name"]] = item.get("value", "on")
        elif item.get("name"):
            values[item["name"]] = item.get("value", "")
    for select in form.find_all("select"):
        chosen = select.find("option", selected=True)
        values[select["name"]] = chosen["value"] if chosen else ""
    return values


def error_summary(html: str) -> dict[str, str]:
    """{field: message} from the error summary's links."""
    soup = BeautifulSoup(html, "html.parser")
    box = soup.find(class_="error-summary")
    if box is None:
        return {}
    return {a["href"].lstrip("#"): a.get_text(strip=True) for a in box.find_all("a")}


def field_errors(html: str) -> dict[str, str]:
    soup = BeautifulSoup(html, "html.parser")
    return {
        p["id"].removesuffix("-error"): p.get_text(" ", strip=True)
        for p in soup.find_all(class_="field-error")
    }


def text_of(html: str, element_id: str) -> str:
    found = BeautifulSoup(html, "html.parser").find(id=element_id)
    assert found is not None, f"no element #{element_id}"
    return found.get_text(strip=True)


def post_form(client: Any, url: str, data: dict[str, Any], **kwargs: Any) -> Any:
    """GET the page, then POST its hidden fields plus `data`, like a browser submitting it."""
    page = client.get(url)
    assert page.status_code == 200, (url, page.status_code)
    return client.post(url, data={**hidden_fields(page.text), **data}, **kwargs)
