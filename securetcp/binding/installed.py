# -*- test-case-name: tests.test_bindingplugins -*-
"""
Bindings that other installed distributions offer, by name, through the
C{securetcp.bindings} entry-point group, so that endpoint strings and
policy files can name them as they name the shipped ones (C{binding=hello}).
A distribution declares one in its C{pyproject.toml}::

    [project.entry-points."securetcp.bindings"]
    hello = "hospital_bindings.hello:HelloBinding"

The object named is an L{IIdentityBinding} provider, or a class whose
instances provide it (made with no arguments); its C{name} is the entry
point's.  Only what is installed can be named: a policy file cannot make
securetcp import anything else.  Each is loaded once, when a policy first
names it, and checked then: a binding that cannot be loaded, does not
provide the interface or is offered by two distributions is refused with
a L{PolicyError} naming it and the distribution.
"""

from __future__ import annotations

from importlib.metadata import EntryPoint, entry_points
from typing import Dict, List, Optional, Tuple

from zope.interface.exceptions import Invalid
from zope.interface.verify import verifyObject

from securetcp.binding.interface import IIdentityBinding
from securetcp.errors import PolicyError

#: the entry-point group
GROUP = "securetcp.bindings"

#: the bindings loaded so far, by name
_loaded: Dict[str, IIdentityBinding] = {}


def installedNames() -> Tuple[str, ...]:
    """
    The names of the bindings installed distributions offer.
    """
    return tuple(sorted({ep.name for ep in entry_points(group=GROUP)}))


def installedBinding(name: str) -> Optional[IIdentityBinding]:
    """
    The installed binding called C{name}, loaded and checked, or C{None}
    if no installed distribution offers one.

    @raise PolicyError: it cannot be used (see the module docstring).
    """
    if name in _loaded:
        return _loaded[name]
    offers: List[EntryPoint] = [ep for ep in entry_points(group=GROUP) if ep.name == name]
    if not offers:
        return None
    if len({ep.value for ep in offers}) > 1:
        raise PolicyError("binding.protocol", name,
                          "two installed distributions offer a binding of this name: "
                          + ", ".join(f"{ep.value} ({_distribution(ep)})" for ep in offers),
                          "uninstall one of them")
    binding = _check(offers[0], name)
    _loaded[name] = binding
    return binding


def _check(ep: EntryPoint, name: str) -> IIdentityBinding:
    where = f"{ep.value} ({_distribution(ep)})"
    try:
        found = ep.load()
        binding = found() if isinstance(found, type) else found
    except Exception as e:
        raise PolicyError("binding.protocol", name,
                          f"the installed binding {where} cannot be loaded: {e!r}",
                          "fix or reinstall the distribution that offers it") from e
    try:
        verifyObject(IIdentityBinding, binding)
    except Invalid as e:
        raise PolicyError("binding.protocol", name,
                          f"the installed binding {where} does not provide IIdentityBinding: "
                          + " ".join(str(e).split()),
                          "see docs/bindings.md, Writing your own binding") from None
    if binding.name != name:
        raise PolicyError("binding.protocol", name,
                          f"the installed binding {where} is called {binding.name!r}",
                          "name the entry point as the binding calls itself")
    return binding


def _distribution(ep: EntryPoint) -> str:
    dist = getattr(ep, "dist", None)
    if dist is None:
        return "an unknown distribution"
    return f"{dist.metadata['Name']} {dist.version}"
