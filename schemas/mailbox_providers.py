"""Mailbox providers: which company runs a recipient's mailbox, from the recipient's domain. Pure.

One maintained table, provider -> the consumer domains it hosts (docs/mailbox-providers.md gives the
sources). Every other domain is ``other``: company domains hosted on Google Workspace or Microsoft 365
are not recognised, since only an MX lookup could tell, and the bulk-sender rules this dimension serves
(Gmail's and Yahoo's) concern personal mailboxes.

The mapping is applied when a figure is read (``sql_mailbox_provider`` generates the ClickHouse
expression from this table), not stored with each event: history gets the current table, and
changing it needs no migration and no reload.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from types import MappingProxyType

OTHER = "other"

# provider -> (label for people, domains). Domains lower-case, as canonical events name them.
PROVIDERS: Mapping[str, tuple[str, tuple[str, ...]]] = MappingProxyType({
    "google": ("Google (Gmail)", ("gmail.com", "googlemail.com")),
    "microsoft": ("Microsoft (Outlook.com)", (
        "outlook.com", "hotmail.com", "live.com", "msn.com", "passport.com",
        "outlook.fr", "outlook.de", "outlook.es", "outlook.it", "outlook.jp", "outlook.com.br",
        "hotmail.co.uk", "hotmail.fr", "hotmail.de", "hotmail.it", "hotmail.es", "hotmail.nl", "hotmail.be",
        "hotmail.ca", "hotmail.com.br", "hotmail.com.ar", "hotmail.com.mx", "hotmail.co.jp",
        "live.co.uk", "live.fr", "live.de", "live.it", "live.nl", "live.be", "live.ca", "live.com.au",
        "live.com.mx", "live.se", "live.dk", "live.no",
    )),
    "yahoo": ("Yahoo / AOL", (
        "yahoo.com", "yahoo.co.uk", "yahoo.fr", "yahoo.de", "yahoo.it", "yahoo.es", "yahoo.ca",
        "yahoo.com.au", "yahoo.co.in", "yahoo.com.br", "yahoo.com.mx", "yahoo.com.ar", "yahoo.com.sg",
        "yahoo.com.tw", "yahoo.com.hk", "yahoo.co.id", "yahoo.gr", "yahoo.se", "yahoo.ie",
        "ymail.com", "rocketmail.com", "aol.com", "aol.co.uk", "aol.fr", "aol.de", "aim.com",
        "verizon.net", "att.net", "sbcglobal.net", "bellsouth.net", "pacbell.net",
    )),
    "apple": ("Apple (iCloud)", ("icloud.com", "me.com", "mac.com")),
    "gmx": ("GMX / WEB.DE", (
        "gmx.de", "gmx.net", "gmx.at", "gmx.ch", "gmx.com", "gmx.fr", "gmx.co.uk", "gmx.us", "web.de",
        "mail.com",
    )),
    "mailru": ("Mail.ru", ("mail.ru", "bk.ru", "inbox.ru", "list.ru", "internet.ru")),
    "yandex": ("Yandex", ("yandex.ru", "yandex.com", "ya.ru", "yandex.ua", "yandex.by", "yandex.kz")),
    "orange": ("Orange", ("orange.fr", "wanadoo.fr")),
    "comcast": ("Comcast (Xfinity)", ("comcast.net",)),
    "tencent": ("Tencent (QQ Mail)", ("qq.com", "foxmail.com")),
    "netease": ("NetEase (163)", ("163.com", "126.com", "yeah.net")),
    "naver": ("Naver", ("naver.com",)),
    "kakao": ("Kakao (Daum)", ("daum.net", "hanmail.net", "kakao.com")),
    "t-online": ("Telekom (T-Online)", ("t-online.de", "magenta.de")),
    "libero": ("Italiaonline (Libero)", ("libero.it", "virgilio.it", "inwind.it", "iol.it")),
    "proton": ("Proton Mail", ("proton.me", "protonmail.com", "protonmail.ch", "pm.me")),
    "zoho": ("Zoho Mail", ("zoho.com", "zohomail.com")),
    "seznam": ("Seznam", ("seznam.cz", "email.cz", "post.cz")),
    "wp": ("Wirtualna Polska / Onet / Interia", (
        "wp.pl", "o2.pl", "onet.pl", "op.pl", "interia.pl", "poczta.fm",
    )),
})  # fmt: skip

DOMAINS: Mapping[str, str] = MappingProxyType(
    {domain: provider for provider, (_, domains) in PROVIDERS.items() for domain in domains}
)
NAMES: tuple[str, ...] = (*PROVIDERS, OTHER)
_DOMAIN = re.compile(r"^[a-z0-9]([a-z0-9.-]*[a-z0-9])?$")  # safe to write into SQL as a literal


def mailbox_provider(domain: str | None) -> str:
    """The provider hosting mailboxes at ``domain`` (case-insensitive), else ``OTHER``."""
    return DOMAINS.get((domain or "").strip().lower(), OTHER)


def label(provider: str) -> str:
    """The provider's name for people (``Other`` for ``OTHER`` and unknown names)."""
    return PROVIDERS[provider][0] if provider in PROVIDERS else "Other"


def sql_mailbox_provider(column: str) -> str:
    """A ClickHouse expression: the provider of the domain in the String column ``column`` (lower-case,
    as stored), ``'other'`` for the rest; the table is written into the expression."""
    domains = sorted(DOMAINS)
    for domain in domains:
        if not _DOMAIN.match(domain):  # a typo in the table must not become SQL
            raise ValueError(f"not a domain: {domain!r}")
    keys = ", ".join(f"'{d}'" for d in domains)
    values = ", ".join(f"'{DOMAINS[d]}'" for d in domains)
    return f"transform({column}, [{keys}], [{values}], '{OTHER}')"
