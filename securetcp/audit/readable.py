# -*- test-case-name: tests.test_auditreport -*-
"""
Distinguished names as a reader reads them: every attribute by its name,
never by a dotted OID.  An audit record carries a subject as
C{cryptography}'s RFC 4514 string, where attributes without a short name
(C{serialNumber}, C{organizationIdentifier}, ...) are dotted OIDs::

    >>> readableName("2.5.4.5=dev1,CN=dev1")
    'serialNumber=dev1, CN=dev1'

The names are C{cryptography}'s own: the short RFC 4514 name where there
is one, its OID name otherwise, and for the few attributes of its
C{NameOID} without an OID name, the constant's name in camel case.  Only identifiers are read: a name is a
certificate's subject or issuer, never a connection's data.
"""

from __future__ import annotations

import functools

from cryptography import x509
from cryptography.x509.oid import NameOID, ObjectIdentifier

#: What C{cryptography} calls an OID it has no name for.
_UNKNOWN = "Unknown OID"


def _attributeName(attribute: x509.NameAttribute) -> str:
    short = attribute.rfc4514_attribute_name
    if short != attribute.oid.dotted_string:
        return short
    name = _oidName(attribute.oid)
    return name if name != _UNKNOWN else short


def _camel(constant: str) -> str:
    first, *rest = constant.lower().split("_")
    return first + "".join(word.capitalize() for word in rest)


#: The name of each attribute C{cryptography} defines in L{NameOID} but
#: has no OID name for (C{organizationIdentifier}, C{initials}): its
#: constant's name, in camel case.
_NAMEOID_NAMES = {oid: _camel(constant) for constant, oid in vars(NameOID).items()
                  if isinstance(oid, ObjectIdentifier)}


def _oidName(oid: ObjectIdentifier) -> str:
    name = str(oid._name)
    return _NAMEOID_NAMES.get(oid, name) if name == _UNKNOWN else name


@functools.lru_cache(maxsize=4096)
def readableName(name: str) -> str:
    """
    C{name} (an RFC 4514 distinguished name) with every attribute named,
    the RDNs separated by C{", "}; C{name} itself when it cannot be read
    as a distinguished name.
    """
    try:
        parsed = x509.Name.from_rfc4514_string(name)
    except (ValueError, TypeError):
        return name
    if not parsed.rdns:
        return name
    return ", ".join(
        "+".join(attribute.rfc4514_string({attribute.oid: _attributeName(attribute)})
                 for attribute in rdn)
        for rdn in reversed(parsed.rdns))
