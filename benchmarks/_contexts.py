"""
The two OpenSSL contexts of an in-process handshake measurement
(C{ticket_cost.py}, C{openssl_memory.py}): securetcp's server context, as
an endpoint string would build it, and a client that offers one group, as
the harness's load generator does::

    server, client = contexts(paths, mutual=True, resumption="cache")
    s = SSL.Connection(server, None)
    s.set_app_data(Holder())      # where securetcp's callbacks look for facts
    handshake(server, client)     # one whole handshake, in memory (C{audit_records.py})
"""

from __future__ import annotations

import time
from typing import Any, Dict, List, Optional, Tuple


class Holder:
    """
    The app data of a server connection outside a TLS transport.
    """

    securetcpFacts: Any = None


def contexts(paths: Dict[str, str], mutual: bool, resumption: str = "cache",
             crl: bool = False, group: str = "P-256") -> Tuple[Any, Any]:
    """
    securetcp's server context (mTLS with the benchmark CA if C{mutual},
    and its CRL if C{crl}) and a client context offering only C{group}
    (with the client certificate if C{mutual}).
    """
    from OpenSSL import SSL

    from securetcp._tls._binding import setGroups
    from securetcp._tls.context import buildContext
    from securetcp.config import buildPolicy
    from securetcp.materials import loadMaterials
    from securetcp.policy import Role

    options: Dict[str, Any] = {"certKey": paths["serverCert"], "privateKey": paths["serverKey"],
                               "resumption": resumption}
    if mutual:
        options.update(clientAuth="required", caCerts=paths["ca"])
        if crl:
            options["crl"] = paths["crl"]
    policy = buildPolicy(**options)
    server = buildContext(policy, Role.SERVER, loadMaterials(policy, Role.SERVER))
    client = SSL.Context(SSL.TLS_METHOD)
    setGroups(client, group.encode("ascii"))
    if mutual:
        client.use_certificate_file(paths["clientCert"])
        client.use_privatekey_file(paths["clientKey"])
    return server, client


def handshake(server: Any, client: Any, rounds: int = 6,
              serverTime: Optional[List[float]] = None) -> Tuple[Any, Any]:
    """
    One full handshake between a connection of C{server} and one of
    C{client}, over memory BIOs: C{rounds} times each side steps its
    handshake and its output is handed to the other.

    @param serverTime: if given, the CPU seconds of the server's own steps
        (its C{do_handshake} and the read of what it wrote) are added to its
        first item.
    @return: the server's and the client's connection.
    @raise RuntimeError: if it did not complete.
    """
    from OpenSSL import SSL

    accepting = SSL.Connection(server, None)
    accepting.set_app_data(Holder())
    accepting.set_accept_state()
    connecting = SSL.Connection(client, None)
    connecting.set_connect_state()
    for _ in range(rounds):
        for source, sink in ((connecting, accepting), (accepting, connecting)):
            timed = serverTime is not None and source is accepting
            started = time.process_time() if timed else 0.0
            try:
                source.do_handshake()
            except SSL.WantReadError:
                pass
            try:
                flight = source.bio_read(65536)
            except SSL.WantReadError:
                flight = b""
            if timed:
                serverTime[0] += time.process_time() - started  # type: ignore[index]
            if flight:
                sink.bio_write(flight)
    if accepting.get_peer_finished() is None:  # the client's Finished never came
        raise RuntimeError("the in-memory handshake did not complete")
    return accepting, connecting
