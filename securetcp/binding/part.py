# -*- test-case-name: tests.test_binding -*-
"""
L{IdentityBinding}, the part of a L{securetcp.policy.TLSPolicy} that binds
the identity an application protocol claims to the peer's certificate, and
L{judge}, the pure decision on one connection's claims::

    >>> part = IdentityBinding("mqtt", rules="cn:PUMP-*, mqttClientId={cn}")
    >>> judge(part.rules, PeerIdentity(commonName=("PUMP-7",)), {"mqttClientId": "PUMP-7"})
"""

from __future__ import annotations

from typing import Any, Iterable, Mapping, Optional, Sequence, Tuple

import attrs

import securetcp._fields as _fields
from securetcp.binding.interface import IIdentityBinding
from securetcp.binding.protocols import BINDINGS
from securetcp.binding.rules import BindingRule, bindingProtocol, bindingRules
from securetcp.errors import PolicyError
from securetcp.identity import PeerIdentity


def _timeout(value: Any) -> float:
    try:
        number = _fields.asciiNumber(value)
    except ValueError:
        number = -1.0
    if not 0 < number <= 600:
        raise PolicyError("binding.timeout", value, "must be more than 0 and at most 600 seconds",
                          "write e.g. 10")
    return number


@attrs.frozen
class IdentityBinding:
    """
    Which protocol's first message a server reads, and what each peer may
    claim in it.  Off (C{protocol} C{None}) by default.

    @ivar protocol: the L{IIdentityBinding} (C{binding=hl7}, C{dicom},
        C{mqtt}).
    @ivar rules: the C{[[bind]]} rules of the policy (C{bind=}).  Without
        C{protocol}, the protocol whose claims they name.
    @ivar file: a TOML file of C{[[bind]]} rules (C{bindings=}), read with
        the other files when an endpoint is built
        (L{securetcp.materials}); its rules come after C{rules}.
    @ivar timeout: seconds the first message may take after the handshake.
    @ivar hl7RejectAck: answer a refused HL7 sender with an application
        reject acknowledgement (MSA-1 C{AR}) before closing.
    """

    protocol: Optional[IIdentityBinding] = attrs.field(default=None,
                                                        converter=bindingProtocol)
    rules: Tuple[BindingRule, ...] = attrs.field(default=(), converter=bindingRules)
    file: Optional[str] = None
    timeout: float = attrs.field(default=10.0, converter=_timeout)
    hl7RejectAck: bool = False

    def __attrs_post_init__(self) -> None:
        if self.protocol is None and self.rules:
            object.__setattr__(self, "protocol", _inferred(self.rules))
        if self.protocol is None:
            return
        checkClaims(self.protocol, self.rules, "binding.rules")
        if self.rules and not self.file and not any(
                _applies(rule, self.protocol.claimKeys) for rule in self.rules):
            raise PolicyError("binding.rules", str(self.rules[0]),
                              f"no rule names a claim of binding={self.protocol.name}, so "
                              "every peer would be refused",
                              "name one of " + ", ".join(self.protocol.claimKeys))

    @property
    def enabled(self) -> bool:
        return self.protocol is not None


def _inferred(rules: Tuple[BindingRule, ...]) -> IIdentityBinding:
    """
    The one shipped binding whose claims C{rules} name.
    """
    keys = {key for rule in rules for key, _ in rule.claims}
    claims = "; ".join(", ".join(b.claimKeys) for b in BINDINGS.values())
    unknown = sorted(keys.difference(*(b.claimKeys for b in BINDINGS.values())))
    if unknown:
        raise PolicyError("binding.rules", str(rules[0]),
                          f"{unknown[0]} is not a claim of any protocol", "use " + claims)
    for binding in BINDINGS.values():
        if keys <= set(binding.claimKeys):
            return binding
    raise PolicyError("binding.rules", str(rules[0]),
                      "its claims are not all those of one protocol",
                      "name the protocol these rules are for with binding.protocol=hl7, "
                      "dicom or mqtt")


def checkClaims(protocol: IIdentityBinding, rules: Tuple[BindingRule, ...],
                field: str) -> None:
    """
    Refuse a rule that names a claim neither C{protocol} nor a shipped
    binding reads (a rule may name the claims of several protocols: each
    listener checks those of its own).

    @raise PolicyError: naming C{field}.
    """
    known = set(protocol.claimKeys).union(*(b.claimKeys for b in BINDINGS.values()))
    for rule in rules:
        for key, _ in rule.claims:
            if key not in known:
                raise PolicyError(field, str(rule),
                                  f"{key} is not a claim of binding={protocol.name} (nor of "
                                  "another protocol)", "use " + ", ".join(protocol.claimKeys))


def _applies(rule: BindingRule, keys: Iterable[str]) -> bool:
    """
    Whether C{rule} names one of C{keys}, the claims of the protocol read.
    """
    return any(key in keys for key, _ in rule.claims)


def judge(rules: Sequence[BindingRule], identity: Optional[PeerIdentity],
          claims: Mapping[str, Optional[str]]) -> Optional[Tuple[str, str]]:
    """
    Decide whether a peer of C{identity} may make C{claims} (every claim
    key of the protocol read, C{None} for one not made): the first of
    C{rules} that names one of those keys and whose peer matcher matches
    decides.  Rules about other protocols' claims do not apply.

    @return: C{None} when every claim the rule constrains matches one of
        its patterns, else C{(claim key, detail)}; the key is C{""} when no
        rule matches the peer.
    """
    if identity is not None:
        for rule in rules:
            if _applies(rule, claims) and rule.peer.matches(identity):
                return _judgeRule(rule, identity, claims)
    who = identity.subject if identity is not None and identity.subject else "(no certificate)"
    return "", f"no bind rule matches the peer {who}"


def _judgeRule(rule: BindingRule, identity: PeerIdentity,
               claims: Mapping[str, Optional[str]]) -> Optional[Tuple[str, str]]:
    for key, patterns in rule.claims:
        if key not in claims:
            continue  # another protocol's
        claimed = claims.get(key)
        if not any(p.matches(claimed, identity) for p in patterns):
            allowed = "|".join(str(p) for p in patterns)
            return key, (f"{key} {_shown(claimed)} is not one the rule for {rule.peer} "
                         f"allows ({allowed})")
    return None


#: The most characters of a claimed value an audit record keeps.
MAX_SHOWN = 128


def _shown(value: Optional[str]) -> str:
    if value is None:
        return "(none)"
    return repr(value if len(value) <= MAX_SHOWN else value[:MAX_SHOWN] + "...")
