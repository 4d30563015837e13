"""
Tests for L{securetcp.options}, the option table: it covers every field of
L{TLSPolicy} once, each option means the same from an endpoint string, a
TOML policy file and Python, its declared defaults are the policy's, and
unknown names are refused naming them and listing the valid ones.
"""

from __future__ import annotations

import inspect
import json
import os
from typing import Any, Iterator, List

import attrs
from hypothesis import given
from hypothesis import strategies as st
from twisted.internet.endpoints import _parse, clientFromString, serverFromString
from twisted.internet.testing import MemoryReactor
from twisted.trial.unittest import SynchronousTestCase

from securetcp import POLICY_OPTIONS
from securetcp._auditarguments import CHECKPOINT_ARGUMENTS
from securetcp._optionviews import defaultText, effectiveOptions, fieldValue, shownValue
from securetcp._parsers import CLIENT_ARGUMENTS, SERVER_ARGUMENTS, _policyFor
from securetcp._spelling import inUserSpelling, optionForField, spell
from securetcp.config import PROFILE_FIELDS, buildPolicy, loadPolicyFile, readPolicyFile
from securetcp.endpoints import Limits, clientEndpoint, serverEndpoint
from securetcp.errors import (
    CredentialError,
    EndpointArgumentError,
    PolicyError,
    PolicyFileError,
)
from securetcp.options import (
    DERIVED,
    ENDPOINT_ROWS,
    FROM_PROFILE,
    OPTIONS,
    POLICY_ROWS,
    Option,
    Role,
    checkValue,
    endpointArguments,
    ownArguments,
)
from securetcp.policy import Groups, TLSPolicy


def leafFields(cls: type = TLSPolicy, prefix: str = "") -> Iterator[str]:
    """
    The dotted path of every leaf field of C{cls}: the fields of its parts,
    and its fields that are not parts.
    """
    for f in attrs.fields(cls):  # type: ignore[arg-type]
        default = f.default.factory() if isinstance(f.default, attrs.Factory) else f.default
        if attrs.has(type(default)):  # a part: every part has a default
            yield from leafFields(type(default), prefix + f.name + ".")
        else:
            yield prefix + f.name


def settingOptions(field: str) -> List[Option]:
    """
    The policy options that set C{field} or the part it is in.
    """
    return [o for o in POLICY_ROWS
            if field == o.field or field.startswith(f"{o.field}.")]


class CoverageTests(SynchronousTestCase):
    """
    The table and L{TLSPolicy} agree field by field.
    """

    def test_leafFields(self) -> None:
        """
        The walk of L{TLSPolicy}'s fields finds the leaves of its parts (so
        the coverage tests below cannot pass vacuously).
        """
        leaves = set(leafFields())
        for wanted in ("name", "versions.minimum", "groups.optional", "trust.caFile",
                       "credentials.passphrase", "peer.pins", "keys.minECBits",
                       "revocation.requireStaple", "legacy"):
            self.assertIn(wanted, leaves)
        self.assertNotIn("versions", leaves)

    def test_everyFieldOnce(self) -> None:
        """
        Every leaf field of L{TLSPolicy} is set by exactly one option, or is
        documented as derived (and then by none).
        """
        problems = []
        for field in leafFields():
            setters = [o.name for o in settingOptions(field)]
            if field in DERIVED:
                if setters:
                    problems.append(f"{field} is derived but set by {setters}")
            elif len(setters) != 1:
                problems.append(f"{field} is set by {setters}")
        self.assertEqual(problems, [])

    def test_optionFieldsExist(self) -> None:
        """
        Every option names a field (or a part) of L{TLSPolicy}, every
        derived field exists, and no two options set the same field.
        """
        policy = TLSPolicy()
        leaves = set(leafFields())
        for option in POLICY_ROWS:
            fieldValue(policy, option.field or "")
        self.assertLessEqual(set(DERIVED), leaves)
        fields = [o.field for o in POLICY_ROWS]
        self.assertEqual(len(fields), len(set(fields)))

    def test_optionForField(self) -> None:
        """
        L{optionForField} finds the option of a field, of a field inside
        the part an option sets, and nothing for a derived field.
        """
        self.assertEqual(optionForField("versions.minimum"), OPTIONS["minVersion"])
        self.assertEqual(optionForField("groups.optional"), OPTIONS["groups"])
        self.assertEqual(optionForField("peer.allow"), OPTIONS["allowPeers"])
        self.assertIsNone(optionForField("keys.minRSABits"))
        self.assertIsNone(optionForField("versions"))
        self.assertIsNone(optionForField("port"))

    def test_publicNamesDerived(self) -> None:
        """
        C{securetcp.POLICY_OPTIONS} and the parsers' own argument lists are
        the table's, in its order, with its descriptions.
        """
        self.assertEqual(list(POLICY_OPTIONS), [o.name for o in POLICY_ROWS])
        self.assertEqual(dict(POLICY_OPTIONS), {o.name: o.doc for o in POLICY_ROWS})
        self.assertEqual(list(SERVER_ARGUMENTS), list(ownArguments(Role.SERVER)))
        self.assertEqual(list(CLIENT_ARGUMENTS), list(ownArguments(Role.CLIENT)))
        for role in Role:
            own = set(ownArguments(role))
            self.assertEqual(own & set(OPTIONS), set())
            self.assertEqual(list(endpointArguments(role)), list(ownArguments(role))
                             + list(OPTIONS))

    def test_rowsWellFormed(self) -> None:
        """
        Every row has a description and an example; choices exactly for
        choice options that are policy options; bounds exactly for integers;
        endpoint-only rows have no field and apply to one role each.
        """
        for option in POLICY_ROWS + ENDPOINT_ROWS:
            self.assertTrue(option.doc and option.example, option)
            self.assertEqual(option.bounds is not None, option.kind.name == "integer", option)
            self.assertTrue(option.roles, option)
        for option in ENDPOINT_ROWS:
            self.assertTrue(option.endpointOnly)
            self.assertEqual(option.places, ("endpoint string",))
            self.assertEqual(len(option.roles), 1, option)
        for option in POLICY_ROWS:
            self.assertFalse(option.endpointOnly)
            self.assertIn("policy file", option.places)


#: Where L{serverEndpoint} and L{clientEndpoint} take the endpoint's own
#: arguments that are not keywords of the same name: the inner endpoint
#: (C{inner}), the policy (a L{TLSPolicy}, e.g. from L{loadPolicyFile}),
#: the audit sink (C{emitter}, e.g. an L{AuditLogObserver}'s) and
#: L{Limits} (C{limits}, by field).
PYTHON_HOMES = {
    Role.SERVER: {"port": "inner", "interface": "inner", "backlog": "inner",
                  "endpoint": "inner", "policy": "policy", "auditLog": "emitter",
                  "maxConnections": "limits", "maxHandshakes": "limits",
                  **dict.fromkeys(CHECKPOINT_ARGUMENTS, "emitter")},
    Role.CLIENT: {"host": "inner", "port": "inner", "timeout": "inner",
                  "bindAddress": "inner", "endpoint": "inner", "policy": "policy",
                  "auditLog": "emitter", **dict.fromkeys(CHECKPOINT_ARGUMENTS, "emitter")},
}


class PythonEndpointTests(SynchronousTestCase):
    """
    Every endpoint argument of the table reaches the public Python helpers
    too.
    """

    def test_everyArgument(self) -> None:
        """
        Each endpoint's own argument is a keyword of the same name of
        L{serverEndpoint} (or L{clientEndpoint}), or has a declared home
        there (L{PYTHON_HOMES}: the inner endpoint, the policy, the audit
        sink, a field of L{Limits}); so an option added to endpoint strings
        (as C{reload} and C{reloadPoll} were) without reaching Python fails
        here.
        """
        helpers = {Role.SERVER: serverEndpoint, Role.CLIENT: clientEndpoint}
        missing = []
        for role, helper in helpers.items():
            keywords = inspect.signature(helper).parameters
            homes = PYTHON_HOMES[role]
            self.assertLessEqual(set(homes), set(ownArguments(role)))
            for name in ownArguments(role):
                home = homes.get(name, name)
                if home not in keywords:
                    missing.append(f"{helper.__name__}: {name}")
                if home == "limits":
                    self.assertIn(name, attrs.fields_dict(Limits))
        self.assertEqual(missing, [])


class DefaultTests(SynchronousTestCase):
    """
    The defaults the table declares (and the docs print) are the policy's.
    """

    def test_declaredDefaults(self) -> None:
        """
        A concrete default is the value C{TLSPolicy()} has, as the option
        shows it; C{None} means the field is empty.
        """
        policy = TLSPolicy()
        for option in POLICY_ROWS:
            if option.default is FROM_PROFILE:
                continue
            shown = shownValue(option, fieldValue(policy, option.field or ""))
            expected = list(option.default) if isinstance(option.default, tuple) \
                else option.default
            self.assertEqual(shown, expected, option.name)

    def test_fromProfile(self) -> None:
        """
        An option says its default comes from the profile exactly when its
        field is one a profile sets (other than the profile's name).
        """
        for option in POLICY_ROWS:
            part = (option.field or "").split(".")[0]
            self.assertEqual(option.default is FROM_PROFILE,
                             part in PROFILE_FIELDS and part != "profile", option.name)

    def test_defaultText(self) -> None:
        """
        The docs' default is the value in code style, then the note; the
        note alone when there is no value.
        """
        self.assertEqual(defaultText(OPTIONS["handshakeTimeout"]), "`10`")
        self.assertEqual(defaultText(OPTIONS["systemCAs"]),
                         "`false` (clients with no other trust: `true`)")
        self.assertEqual(defaultText(OPTIONS["minVersion"]), FROM_PROFILE)
        self.assertEqual(defaultText(OPTIONS["certKey"]), "the `privateKey` file")
        self.assertEqual(defaultText(OPTIONS["caCerts"]), "none")
        self.assertEqual(defaultText(OPTIONS["alpn"]), "empty")


def _value(option: Option) -> Any:
    """
    The table's example of C{option}, as the endpoint-string tokenizer
    gives it back.
    """
    return _parse(f"mtls:{option.name}={option.example}")[1][option.name]


class RoundTripTests(SynchronousTestCase):
    """
    Every option gives the same policy from an endpoint string, a TOML
    policy file and Python.
    """

    def test_everyOption(self) -> None:
        """
        The table's example of each option, written as an endpoint-string
        argument, a TOML key (relative paths taken from the file's
        directory) and a L{buildPolicy} keyword, gives one policy, in which
        the option's field differs from the default.
        """
        directory = os.path.abspath(self.mktemp())
        os.makedirs(directory)
        default = TLSPolicy()
        for option in POLICY_ROWS:
            written = _value(option)
            absolute = _absolute(option, written, directory)
            path = os.path.join(directory, f"{option.name}.toml")
            with open(path, "w", encoding="utf-8") as f:
                f.write(f"{option.name} = {json.dumps(written)}\n")
            fromPython = buildPolicy(**{option.name: absolute})
            fromFile = loadPolicyFile(path)
            args, kwargs = _parse(f"mtls:{option.name}={_escaped(absolute)}")
            fromString = _policyFor("mtls", kwargs, serverDefaults=False)
            self.assertEqual(fromFile, fromPython, option.name)
            self.assertEqual(fromString, fromPython, option.name)
            self.assertNotEqual(fieldValue(fromPython, option.field or ""),
                                fieldValue(default, option.field or ""), option.name)

    @given(st.lists(st.sampled_from(POLICY_ROWS), unique=True, max_size=6))
    def test_combinations(self, options: List[Option]) -> None:
        """
        Any combination of the table's examples gives, from an endpoint
        string, a policy file and Python, the same policy, or the same
        error naming the same option.
        """
        directory = os.path.abspath(self.mktemp())
        os.makedirs(directory)
        written = {o.name: _value(o) for o in options}
        absolute = {o.name: _absolute(o, written[o.name], directory) for o in options}
        path = os.path.join(directory, "policy.toml")
        with open(path, "w", encoding="utf-8") as f:
            f.write("".join(f"{k} = {json.dumps(v)}\n" for k, v in written.items()))
        kwargs = _parse("mtls:" + ":".join(f"{k}={_escaped(v)}"
                                           for k, v in absolute.items()))[1]
        outcomes = [_outcome(buildPolicy, **absolute), _outcome(loadPolicyFile, path),
                    _outcome(_policyFor, "mtls", kwargs, serverDefaults=False)]
        self.assertEqual(outcomes[1], outcomes[0])
        self.assertEqual(outcomes[2], outcomes[0])

    def test_listsEverywhere(self) -> None:
        """
        A list option takes a comma-separated string, a Python list and a
        TOML array alike; any other option given a TOML array is refused
        naming it.
        """
        directory = os.path.abspath(self.mktemp())
        os.makedirs(directory)
        for option in POLICY_ROWS:
            path = os.path.join(directory, f"{option.name}.toml")
            with open(path, "w", encoding="utf-8") as f:
                f.write(f"{option.name} = [\"a\", \"b\"]\n")
            if option.kind.many:
                readPolicyFile(path)
            else:
                error = self.assertRaises(PolicyFileError, readPolicyFile, path)
                self.assertEqual(error.key, option.name)
                self.assertIn("takes one value, not a list", str(error))
        self.assertEqual(buildPolicy(alpn=["h2", "http/1.1"]), buildPolicy(alpn="h2,http/1.1"))
        self.assertEqual(buildPolicy(groups=["?X25519MLKEM768", "P-256"]).groups,
                         Groups(["secp256r1"], ["X25519MLKEM768"]))


def _absolute(option: Option, written: str, directory: str) -> Any:
    """
    An example as Python gives it: paths from C{directory}.
    """
    if option.kind.paths == "one":
        return os.path.join(directory, written)
    if option.kind.paths == "many":
        return [os.path.join(directory, p) for p in written.split(",")]
    return written


def _outcome(build: Any, *args: Any, **kwargs: Any) -> Any:
    """
    The policy C{build} gives, or the option its error names.
    """
    try:
        return build(*args, **kwargs)
    except PolicyError as e:
        return ("error", e.key if isinstance(e, PolicyFileError) else e.field, e.problem)


def _escaped(value: Any) -> str:
    """
    C{value} (a string or a list) as an endpoint-string value.
    """
    text = ",".join(value) if isinstance(value, list) else str(value)
    return "".join("\\" + c if c in "\\:=" else c for c in text)


class UnknownNameTests(SynchronousTestCase):
    """
    An unknown option or argument is refused naming it and listing the
    valid ones, in every front end.
    """

    def test_python(self) -> None:
        """
        L{buildPolicy} names the unknown keyword and lists every option.
        """
        error = self.assertRaises(PolicyError, buildPolicy, minversion="TLSv1.3")
        self.assertEqual((error.field, error.value), ("minversion", "TLSv1.3"))
        self.assertEqual(error.fix, "valid options: " + ", ".join(OPTIONS))

    def test_policyFile(self) -> None:
        """
        A policy file's unknown key is refused naming the file and the key,
        listing every option.
        """
        path = os.path.abspath(self.mktemp())
        with open(path, "w", encoding="utf-8") as f:
            f.write('minversion = "TLSv1.3"\n')
        error = self.assertRaises(PolicyFileError, loadPolicyFile, path)
        self.assertEqual((error.path, error.key), (path, "minversion"))
        self.assertEqual(error.fix, "valid options: " + ", ".join(OPTIONS))

    def test_endpointStrings(self) -> None:
        """
        Server and client strings name the unknown argument and list their
        own arguments and every policy option.
        """
        for parse, role, text in [(serverFromString, Role.SERVER, "mtls:0:minversion=1"),
                                  (clientFromString, Role.CLIENT, "mtls:h:1:minversion=1")]:
            error = self.assertRaises(EndpointArgumentError, parse, MemoryReactor(), text)
            self.assertEqual(error.argument, "minversion")
            self.assertEqual(error.valid, tuple(endpointArguments(role)))
            self.assertIn(", ".join(endpointArguments(role)), error.fix)


class CheckValueTests(SynchronousTestCase):
    """
    L{checkValue} refuses a value of the wrong type for its option's kind,
    naming the option.
    """

    def test_kinds(self) -> None:
        """
        Each kind takes its types and refuses others with its own message.
        """
        cases = [("ciphers", 7, "expected a string or a list of strings"),
                 ("handshakeTimeout", True, "expected a number of seconds"),
                 ("handshakeTimeout", [1], "expected a number of seconds"),
                 ("systemCAs", 1, "expected true or false"),
                 ("minVersion", False, "expected a string"),
                 ("caCerts", 3, "expected a string")]
        for name, value, problem in cases:
            error = self.assertRaises(PolicyError, checkValue, OPTIONS[name], value)
            self.assertEqual((error.field, error.problem), (name, problem))
        for name, value in [("minVersion", 1.3), ("handshakeTimeout", 5), ("systemCAs", True),
                            ("allowPeers", ["cn:a"]), ("pinSPKI", [b"x" * 32]),
                            ("caCerts", None)]:
            checkValue(OPTIONS[name], value)

    def test_secretHidden(self) -> None:
        """
        A passphrase of the wrong type is refused without showing it.
        """
        error = self.assertRaises(PolicyError, checkValue, OPTIONS["passphrase"], 1234)
        self.assertEqual(error.value, "(hidden)")
        self.assertNotIn("1234", str(error))


class SpellingTests(SynchronousTestCase):
    """
    The policy parts speak in field paths; L{inUserSpelling} turns their
    errors into option names.
    """

    def test_spell(self) -> None:
        """
        Field paths in text become option names; other words, and paths
        no option sets, stay.
        """
        self.assertEqual(spell("give trust.caFile=CA.pem (or trust.caDir=DIR)"),
                         "give caCerts=CA.pem (or caCertsDir=DIR)")
        self.assertEqual(spell("credentials.certificate/credentials.privateKey."),
                         "certKey/privateKey.")
        self.assertEqual(spell("keys.minRSABits and versions.minimumX"),
                         "keys.minRSABits and versions.minimumX")

    def test_inUserSpelling(self) -> None:
        """
        A part's error comes back with the option's name in its field,
        problem, fix and message, and the same value.
        """
        error = PolicyError("versions.minimum", "TLSv1.3", "is above versions.maximum TLSv1.2",
                            "lower versions.minimum or raise versions.maximum")
        spelled = inUserSpelling(error)
        self.assertIsInstance(spelled, PolicyError)
        self.assertEqual((spelled.field, spelled.value), ("minVersion", "TLSv1.3"))
        self.assertEqual(str(spelled), "minVersion='TLSv1.3': is above maxVersion TLSv1.2 "
                                       "(fix: lower minVersion or raise maxVersion)")
        self.assertEqual(error.field, "versions.minimum")

    def test_alreadySpelled(self) -> None:
        """
        An error already in option names is returned as it is; a subclass
        keeps its kind and data when translated.
        """
        error = PolicyError("caCerts", None, "missing", "give caCerts=CA.pem")
        self.assertIs(inUserSpelling(error), error)
        credential = CredentialError("trust.caFile", "/x.pem", "does not exist",
                                     "check trust.caFile")
        spelled = inUserSpelling(credential)
        self.assertIsInstance(spelled, CredentialError)
        self.assertEqual((spelled.field, spelled.path, spelled.fix),  # type: ignore[attr-defined]
                         ("caCerts", "/x.pem", "check caCerts"))


class EffectiveTests(SynchronousTestCase):
    """
    L{effectiveOptions} shows a policy by option, as the options are written.
    """

    def test_shown(self) -> None:
        """
        Every option appears, enumerations by value, optional groups with
        their C{?}, pins as C{sha256/BASE64}, a C{pass:} passphrase hidden.
        """
        policy = buildPolicy(clientAuth="required", groups="?X25519MLKEM768,P-256",
                             pinSPKI="sha256/" + "A" * 43 + "=", passphrase="pass:secret",
                             certKey="c.pem", allowPeers="cn:PUMP-1")
        shown = effectiveOptions(policy)
        self.assertEqual(list(shown), list(OPTIONS))
        self.assertEqual(shown["clientAuth"], "required")
        self.assertEqual(shown["minVersion"], "TLSv1.2")
        self.assertEqual(shown["groups"], ["?X25519MLKEM768", "secp256r1"])
        self.assertEqual(shown["pinSPKI"], ["sha256/" + "A" * 43 + "="])
        self.assertEqual(shown["passphrase"], "pass:(hidden)")
        self.assertEqual(shown["allowPeers"], ["cn:PUMP-1"])
        self.assertEqual(shown["handshakeTimeout"], 10.0)
        json.dumps(shown)
        self.assertEqual(effectiveOptions(buildPolicy(passphrase="env:X"))["passphrase"],
                         "env:X")
