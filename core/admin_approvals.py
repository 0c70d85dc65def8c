"""The decide page of a request waiting for an approver (issue #20), shared by distributions and grants: the terms
in context, approve, or reject with a required reason; every refusal is a message in the reader's language."""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django import forms
from django.contrib import messages
from django.http import HttpRequest, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from core.approvals import ReasonRequired
from core.exceptions import DomainError

INBOX_URL_NAME = "admin:coupons_couponpolicy_approvals"


class RejectReasonForm(forms.Form):
    reason = forms.CharField(label=_("Reason"), widget=forms.Textarea(attrs={"rows": 3}), max_length=2000,
                             help_text=_("Shown to whoever asked, in the audit trail and on this page."))


def decide_page(request: HttpRequest, model_admin: Any, *, kind: str, object_label: str, change_url: str,
                terms: list[tuple[Any, Any]], terms_heading: Any, status_label: Any, requester: str, waiting: bool,
                rejection_reason: str, may_decide: bool, is_requester: bool, approve: Callable[[], Any],
                reject: Callable[[str], Any], approve_help: Any, approved_message: str,
                rejected_message: str) -> Any:
    inbox = reverse(INBOX_URL_NAME)
    next_url = inbox if request.POST.get("next", request.GET.get("next")) == inbox else None
    reject_form = RejectReasonForm(request.POST or None)
    if request.method == "POST":
        decision = request.POST.get("decision")
        try:
            if decision == "approve":
                approve()
                model_admin.message_user(request, approved_message, messages.SUCCESS)
            elif decision == "reject":
                if not reject_form.is_valid():
                    raise ReasonRequired()
                reject(reject_form.cleaned_data["reason"])
                model_admin.message_user(request, rejected_message, messages.SUCCESS)
            else:
                raise DomainError(gettext("Choose approve or reject."), code="invalid_decision")
        except DomainError as exc:
            model_admin.message_user(request, exc.message, messages.ERROR)
            return HttpResponseRedirect(request.path + (f"?next={inbox}" if next_url else ""))
        return HttpResponseRedirect(next_url or change_url)
    context = {**model_admin.admin_site.each_context(request), "opts": model_admin.opts, "kind": kind,
               "title": gettext("Decide on %(object)s") % {"object": object_label}, "object_label": object_label,
               "change_url": change_url, "inbox_url": inbox, "next": next_url or "", "terms": terms,
               "terms_heading": terms_heading, "status_label": status_label, "requester": requester,
               "waiting": waiting, "rejection_reason": rejection_reason, "reject_form": reject_form,
               "can_decide": may_decide and not is_requester, "is_requester": is_requester,
               "approve_help": approve_help}
    return TemplateResponse(request, "admin/approvals/decide.html", context)
