"""Django's own Korean text that reads wrong in the console, corrected in the project's catalogue (issue #20).

This module is the msgids' source, so ``make messages`` keeps them.
Design: docs/design/console-and-i18n.md#coupon-project-django-overrides.
"""
from django.utils.translation import gettext_noop

OVERRIDES = (
    # Django: "보기위한 1%s 를(을) 선택" (a stray "1", a particle left for the reader to pick)
    gettext_noop("Select %s to view"),
    # Django: "뷰 %s" ("view" transliterated, as in a "view" of a program)
    gettext_noop("View %s"),
    # Django: "독자는 뷰 및 수정 권한이 없습니다." ("the reader has no view… permission")
    gettext_noop("You don’t have permission to view or edit anything."),
    # Django: "Single Sign-On" left in English in the Korean sentence
    gettext_noop("Whether the user will be able to authenticate using a password or not. If disabled, they may "
                 "still be able to authenticate using other backends, such as Single Sign-On or LDAP."),
    # django-axes (login lockouts) ships no Korean: its models' names, shown in the permissions pickers
    gettext_noop("access attempt"),
    gettext_noop("access attempt expiration"),
    gettext_noop("access failure"),
    gettext_noop("access log"),
    # django-import-export's Korean lacks the export page's sentences
    gettext_noop("This exporter will export the following fields: "),
    gettext_noop("Select all"),
    gettext_noop("queue"),
    # django-rq's one permission and its model
    gettext_noop("Access admin page"),
    gettext_noop("Queue"),
)
