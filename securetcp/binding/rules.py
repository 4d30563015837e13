# -*- test-case-name: tests.test_binding -*-
"""
The identity-binding part of a policy (L{IdentityBinding}): which
protocol's first message to read, and the C{[[bind]]} rules that say, for
each peer (matched as C{allowPeers} matches it), which identities its
messages may claim::

    [[bind]]
    peer = "uri:spiffe://hospital.example/ward3/*"
    hl7SendingFacility = ["WARD3"]
    hl7SendingApplication = ["PUMP*", "{cn}"]

In a claim pattern C{*} matches any run of characters and C{{cn}} (also
C{{dns}}, C{{uri}}, C{{email}}, C{{ip}}, C{{serial}}) the peer
certificate's field, literally (a C{*} in a certificate is no wildcard).
The first rule whose C{peer} matches decides; a peer no rule matches is
refused.  Inline (endpoint strings, one string in Python), rules are
separated by C{;} and the parts of a rule by C{,}::

    bind=cn:PUMP-3*, hl7SendingFacility=WARD3|WARD3B; cn:LAB-*, hl7SendingFacility=LAB
"""

from __future__ import annotations

import re
from typing import Any, Iterable, Mapping, Optional, Tuple

import attrs

from securetcp.binding.installed import GROUP, installedBinding, installedNames
from securetcp.binding.interface import IIdentityBinding
from securetcp.binding.protocols import BINDINGS
from securetcp.errors import PolicyError
from securetcp.identity import IdentityPattern, PeerIdentity, parseIdentityPattern

#: The certificate fields a claim pattern may name, in braces.
CERTIFICATE_FIELDS: Mapping[str, str] = {
    "cn": "commonName", "dns": "dns", "uri": "uri", "email": "email", "ip": "ip",
    "serial": "serial"}

_PIECES = re.compile(r"\{([^{}]*)\}|\*|[^{}*]+|[{}]")
_RULES = "binding.rules"


def _pieces(text: str, field: str) -> Tuple[str, ...]:
    pieces = []
    for m in _PIECES.finditer(text):
        piece = m.group(0)
        if piece in "{}":
            raise PolicyError(field, text, "an unmatched brace in a claim pattern",
                              "write {cn}, {dns}, {uri}, {email}, {ip} or {serial}")
        if m.group(1) is not None and m.group(1) not in CERTIFICATE_FIELDS:
            raise PolicyError(field, text, f"unknown certificate field {piece}",
                              "use " + ", ".join("{" + f + "}" for f in CERTIFICATE_FIELDS))
        pieces.append(piece)
    return tuple(pieces)


@attrs.frozen
class ClaimPattern:
    """
    One pattern a claimed identity must match: C{*} and C{{field}}
    substitutions of the peer certificate's fields.
    """

    text: str
    pieces: Tuple[str, ...] = attrs.field(eq=False, repr=False)

    @classmethod
    def parse(cls, text: Any, field: str = _RULES) -> ClaimPattern:
        if not isinstance(text, str):
            raise PolicyError(field, text, "a claim pattern must be a string",
                              'write e.g. "WARD3", "PUMP*" or "{cn}"')
        return cls(text, _pieces(text, field))

    def __str__(self) -> str:
        return self.text

    def matches(self, claimed: Optional[str], identity: PeerIdentity) -> bool:
        """
        Does C{claimed} (C{None}: not claimed, taken as empty) match, for a
        peer of C{identity}?
        """
        regex = []
        for piece in self.pieces:
            if piece == "*":
                regex.append(".*")
            elif piece.startswith("{"):
                values = getattr(identity, CERTIFICATE_FIELDS[piece[1:-1]])
                values = (values,) if isinstance(values, str) else values
                if not values:
                    return False
                regex.append("(?:" + "|".join(re.escape(v) for v in values) + ")")
            else:
                regex.append(re.escape(piece))
        return re.fullmatch("".join(regex), claimed or "", re.DOTALL) is not None


@attrs.frozen
class BindingRule:
    """
    What a peer matching C{peer} may claim: for each claim key, the
    patterns one of which its claim must match.  Keys not listed are not
    checked.
    """

    peer: IdentityPattern
    claims: Tuple[Tuple[str, Tuple[ClaimPattern, ...]], ...]

    def __str__(self) -> str:
        return ", ".join([str(self.peer)] + [
            f"{key}={'|'.join(str(p) for p in patterns)}" for key, patterns in self.claims])


def ruleFromMapping(table: Mapping[str, Any], field: str = _RULES) -> BindingRule:
    """
    A rule from a C{[[bind]]} table: C{peer} and claim keys, each a pattern
    or a list of patterns.
    """
    if "peer" not in table:
        raise PolicyError(field, dict(table), "a [[bind]] rule needs a peer",
                          'write peer = "uri:spiffe://..." (a matcher as in allowPeers)')
    peer = table["peer"]
    if isinstance(peer, IdentityPattern):
        pattern = peer
    else:
        pattern = parseIdentityPattern(peer if isinstance(peer, str) else repr(peer), field)
    claims = []
    for key, value in table.items():
        if key == "peer":
            continue
        values = [value] if isinstance(value, str) else value
        if not isinstance(values, (list, tuple)) or not values:
            raise PolicyError(field, value, f"{key} needs one pattern or a list of them",
                              f'write {key} = ["PATTERN", ...]')
        claims.append((str(key), tuple(ClaimPattern.parse(v, field) for v in values)))
    if not claims:
        raise PolicyError(field, str(pattern), "the rule constrains no claim",
                          "name at least one claim, e.g. hl7SendingFacility = [\"WARD3\"]")
    return BindingRule(pattern, tuple(claims))


def ruleFromText(text: str, field: str = _RULES) -> BindingRule:
    """
    A rule written inline: C{PEER, CLAIM=PATTERN|PATTERN, ...}.
    """
    parts = [p.strip() for p in text.split(",")]
    table: dict[str, Any] = {"peer": parts[0]}
    for part in parts[1:]:
        key, equals, patterns = part.partition("=")
        if not equals or not key.strip():
            raise PolicyError(field, text, f"{part!r} is not CLAIM=PATTERN",
                              "write e.g. cn:PUMP-*, hl7SendingFacility=WARD3|WARD4")
        table[key.strip()] = [p.strip() for p in patterns.split("|")]
    return ruleFromMapping(table, field)


def bindingRules(value: Any, field: str = _RULES) -> Tuple[BindingRule, ...]:
    """
    Rules from what a user wrote: L{BindingRule}s, C{[[bind]]} tables
    (mappings), inline rules, or one string of inline rules separated by
    C{;}.
    """
    if value is None:
        return ()
    if isinstance(value, (str, Mapping, BindingRule)):
        value = [value]  # one string of rules, one table, one rule
    items: Iterable[Any] = value
    rules = []
    for item in items:
        if isinstance(item, BindingRule):
            rules.append(item)
        elif isinstance(item, Mapping):
            rules.append(ruleFromMapping(item, field))
        elif isinstance(item, str):
            rules.extend(ruleFromText(t, field) for t in item.split(";") if t.strip())
        else:
            raise PolicyError(field, item, "not a binding rule",
                              "write a [[bind]] table or PEER, CLAIM=PATTERN")
    return tuple(rules)


def bindingProtocol(value: Any) -> Optional[IIdentityBinding]:
    """
    The binding named C{value} (C{hl7}, C{dicom}, C{mqtt}, or one an
    installed distribution offers: L{securetcp.binding.installed}), or an
    L{IIdentityBinding} provider as it is.
    """
    if value is None or value == "":
        return None
    if IIdentityBinding.providedBy(value):
        return value  # type: ignore[no-any-return]
    name = str(value).strip().lower()
    binding = BINDINGS.get(name) or installedBinding(name)
    if binding is None:
        raise PolicyError("binding.protocol", value, "unknown protocol binding",
                          "use one of " + ", ".join(list(BINDINGS) + list(installedNames()))
                          + " (or install a distribution that offers it in the "
                          f"{GROUP} entry-point group; from Python, an IIdentityBinding "
                          "provider)")
    return binding
