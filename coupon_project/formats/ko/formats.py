"""Korean formats of the console (issue #20): Django's own ``ko`` formats show times as "12:00 오전" (12-hour, the
meridiem after the time); a Korean back office reads 24-hour times. Everything not set here comes from Django's."""
from django.conf.locale.ko.formats import *  # noqa: F401,F403 - the rest of Django's Korean formats

TIME_FORMAT = "H:i"
DATETIME_FORMAT = "Y년 n월 j일 H:i"
SHORT_DATE_FORMAT = "Y-m-d"
SHORT_DATETIME_FORMAT = "Y-m-d H:i"
